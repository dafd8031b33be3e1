"""One settings vocabulary for every transport: TLS, reconnect, timeouts, in-flight bounds.

Every transport's settings model derives from ``TransportSettings``, so the same word means the same
thing everywhere: ``drain_timeout`` (seconds ``stop`` waits for in-flight messages to settle),
``send_timeout`` (seconds one publish may take), ``connect_timeout``, ``max_in_flight`` (messages handed
to the bus and not yet settled), ``max_message_bytes``, ``[tls]`` and ``[reconnect]``. A protocol's own
word for one of them is accepted as a documented alias (``prefetch`` on AMQP, ``receive_maximum`` on
MQTT 5, ``max_ack_pending`` on JetStream all mean ``max_in_flight``); the keys of the previous release
(``stop_timeout``, ``reconnect_initial_delay``...) keep working for one release with a deprecation warning
that names the new key.
"""

from __future__ import annotations

import logging
import ssl
import warnings
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

__all__ = ["ReconnectSettings", "TLSSettings", "TransportSettings"]

log = logging.getLogger(__name__)


class TLSSettings(BaseModel):
    """``[transports.tls]``: TLS towards the broker (or, for a server transport, of the listener).

    Attributes:
        ca_file: PEM file of the CA(s) to trust; ``None`` uses the system store.
        cert_file: PEM client certificate, for mutual TLS (with ``key_file``).
        key_file: PEM private key of ``cert_file``.
        key_password: password of ``key_file`` if it is encrypted.
        verify_hostname: check the server certificate's name against the host (leave on).
    """

    model_config = ConfigDict(extra="forbid")
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    verify_hostname: bool = True

    @model_validator(mode="after")
    def _key_with_cert(self) -> TLSSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        return self

    def client_context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for a client connection with these settings (TLS 1.2 at least).

        Raises:
            OSError, ssl.SSLError: a file cannot be read or is not valid PEM (the message names it).
        """
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file) if self.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = self.verify_hostname
        if self.cert_file is not None:
            password = self.key_password.get_secret_value() if self.key_password else None
            ctx.load_cert_chain(str(self.cert_file), str(self.key_file), password)
        return ctx


class ReconnectSettings(BaseModel):
    """``[transports.reconnect]``: how a transport retries a lost or refused connection (on tenacity:
    exponential backoff with jitter, see ``pywats_events.transports.reconnect``).

    Attributes:
        initial_delay: seconds before the first retry.
        max_delay: cap on one delay, seconds.
        multiplier: growth factor of the delay between attempts.
        jitter: largest random extra delay, seconds (spreads the reconnects of many workers).
        give_up_after: stop retrying after this many seconds without a connection and go to ERROR
            (``None``: retry for ever; ``run --exit-on-connect-failure`` sets it for supervisors).
    """

    model_config = ConfigDict(extra="forbid")
    initial_delay: float = Field(default=0.5, gt=0)
    max_delay: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.25, ge=0)
    give_up_after: float | None = Field(default=None, gt=0)


class TransportSettings(BaseModel):
    """The settings every transport shares; a transport's own model adds its protocol's keys.

    Attributes:
        decoder: name of the registered decoder for message bodies (``auto``, ``cfx``, ``event-json``...).
        tls: TLS settings, or ``None`` for plain connections.
        reconnect: backoff of reconnection attempts.
        connect_timeout: seconds one connection attempt may take.
        send_timeout: seconds one ``send`` (publish) may take before it fails.
        drain_timeout: seconds ``stop`` waits for in-flight messages to settle; what is left is given
            back to the protocol (the broker redelivers it).
        max_in_flight: messages handed to the bus and not yet settled, at most (backpressure beyond it).
        max_message_bytes: largest message body accepted, in bytes; a larger one is dead-lettered with
            reason ``too_large`` (a bounded prefix kept) and settled.

    Subclasses list their protocol's words in ``aliases`` (documented, no warning) and the keys of the
    previous release in ``deprecated`` (accepted with a ``DeprecationWarning`` naming the new key). A
    dotted target (``reconnect.initial_delay``) moves the value into a nested table.
    """

    model_config = ConfigDict(extra="forbid")

    #: Protocol words accepted for a shared key: ``{"prefetch": "max_in_flight"}``.
    aliases: ClassVar[dict[str, str]] = {}
    #: Keys of the previous release and their new name: ``{"stop_timeout": "drain_timeout"}``.
    deprecated: ClassVar[dict[str, str]] = {}

    decoder: str = "auto"
    tls: TLSSettings | None = None
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)
    connect_timeout: float = Field(default=10.0, gt=0)
    send_timeout: float = Field(default=10.0, gt=0)
    drain_timeout: float = Field(default=10.0, ge=0)
    max_in_flight: int = Field(default=256, ge=1, le=65_535)
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)

    @model_validator(mode="before")
    @classmethod
    def _rename_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not (cls.aliases or cls.deprecated):
            return data
        out = dict(data)
        for old, new in (*cls.aliases.items(), *cls.deprecated.items()):
            if old not in out:
                continue
            value = out.pop(old)
            if old in cls.deprecated:
                message = f"{cls.__name__}: {old!r} is deprecated, use {new!r} (the old key goes in the next release)"
                warnings.warn(message, DeprecationWarning, stacklevel=2)
                log.warning("%s", message)
            head, _, tail = new.partition(".")
            if tail:
                nested = out.get(head)
                nested = dict(nested) if isinstance(nested, dict) else {}
                if tail in nested:
                    raise ValueError(f"both {old!r} and {new!r} are set; keep {new!r}")
                nested[tail] = value
                out[head] = nested
            elif new in out:
                raise ValueError(f"both {old!r} and {new!r} are set; keep {new!r}")
            else:
                out[new] = value
        return out

    @classmethod
    def from_table(cls, options: dict[str, Any], where: str, error: type[Exception]) -> Self:
        """Validate one ``[[transports]]`` table; a failure raises ``error`` naming the first bad key by
        its path as the user wrote it (``transports[l1].rules[0].topic``; an alias or deprecated key is
        named as given, not by its new name).

        Args:
            options: the table's keys, without ``kind`` and ``name``.
            where: prefix naming the table (``transports[l1]``).
            error: the exception class to raise (the transport's ``ConfigError`` subclass).

        Raises:
            error: the first invalid key and what is wrong with it (secrets are never echoed).
        """
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc: list[Any] = list(first["loc"])
            given = {new: old for old, new in (*cls.aliases.items(), *cls.deprecated.items()) if old in options}
            if loc and len(loc) > 1 and f"{loc[0]}.{loc[1]}" in given:
                loc[:2] = [given[f"{loc[0]}.{loc[1]}"]]
            elif loc and str(loc[0]) in given:
                loc[0] = given[str(loc[0])]
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
            raise error(f"{where}{path}: {first['msg']}") from None
