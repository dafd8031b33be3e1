"""Settings of the IPC-CFX AMQP transport (``[[transports]] kind = "cfx"``).

One pydantic model, validated from the configuration file's options table. The broker URL and password are
``SecretStr``: they never appear in logs, ``repr`` or ``describe()``; ``redacted_url`` is what is shown.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pywats_events.errors import ConfigError
from pywats_events.transports.settings import TLSSettings, TransportSettings

__all__ = ["CFXSettings"]

#: Keys of the previous release and their place in the shared vocabulary (``TransportSettings``).
_DEPRECATED: dict[str, str] = {
    "stop_timeout": "drain_timeout",
    "publish_timeout": "send_timeout",
    "max_message_size": "max_message_bytes",
    "reconnect_initial_delay": "reconnect.initial_delay",
    "reconnect_max_delay": "reconnect.max_delay",
    "ca_file": "tls.ca_file",
    "cert_file": "tls.cert_file",
    "key_file": "tls.key_file",
    "key_password": "tls.key_password",
    "tls_verify_hostname": "tls.verify_hostname",
}


class CFXSettings(TransportSettings):
    """How ``CFXTransport`` reaches RabbitMQ, what it declares and consumes, and how it publishes.

    The shared keys (``TransportSettings``) mean what they mean for every transport; the AMQP word
    ``prefetch`` is a documented alias of ``max_in_flight``. Keys of the previous release (right column)
    keep working for one release with a ``DeprecationWarning`` naming the new key:

    ======================= =========================== ==================================================
    key                     previous key                meaning
    ======================= =========================== ==================================================
    ``max_in_flight``       ``prefetch`` (alias)        unacknowledged messages at once (``basic.qos``)
    ``drain_timeout``       ``stop_timeout``            seconds ``stop`` waits for in-flight messages
    ``send_timeout``        ``publish_timeout``         seconds a publish waits for connection + confirm
    ``max_message_bytes``   ``max_message_size``        largest body accepted, bytes
    ``reconnect.*``         ``reconnect_initial_delay``, backoff between reconnect attempts, seconds
                            ``reconnect_max_delay``
    ``tls.*``               ``ca_file``, ``cert_file``, TLS files and host-name check
                            ``key_file``, ``key_password``,
                            ``tls_verify_hostname``
    ======================= =========================== ==================================================

    Attributes:
        url: broker URL, ``amqp://user:password@host:5672/vhost`` or ``amqps://...`` for TLS (secret).
        password: overrides the URL's password; secret.
        password_env: name of an environment variable holding the password (read at validation), so the
            configuration file need not contain it.
        tls: ``[transports.tls]`` (``ca_file``, ``cert_file`` / ``key_file`` for mutual TLS,
            ``key_password``, ``verify_hostname``); giving it switches TLS on (``amqps``).
        exchange: the CFX exchange to bind to and publish on (default ``cfx``).
        exchange_type: its AMQP type (default ``topic``, as CFX routing keys are ``<handle>.<MessageName>``).
        declare_exchange: declare the exchange (durable); off when it is managed elsewhere and must exist.
        queue: name of the durable queue this bus consumes; several bus processes using the same name share
            the work (competing consumers).
        queue_type: ``classic`` or ``quorum`` (replicated; for a RabbitMQ cluster).
        binding_keys: routing-key patterns bound to the queue (default ``["#"]``: every message).
        max_in_flight: most unacknowledged messages the broker hands this consumer at once (``basic.qos``
            prefetch count, 1..65535; default 512). Alias ``prefetch``.
        max_message_bytes: largest message body accepted, in bytes as received (default 8 MiB). A larger
            one is not decoded: it goes to the dead-letter queue with reason ``too_large``, keeping its
            first 4096 bytes and its size, and is acknowledged.
        max_inflight_bytes: bytes of message bodies received but not yet settled, at most (default 64 MiB).
            Beyond it the socket is not read (the broker's TCP window fills and it stops sending) until half
            of it is free; with ``max_in_flight`` this bounds the memory a backlog of large messages can take.
        ack_batch_size: settled messages acknowledged with one ``basic.ack`` (``multiple=True``) frame at
            most before it is sent at once (count, default 128); fewer are sent after ``ack_flush_ms``.
        ack_flush_ms: longest time a settled message waits for its acknowledgement frame, milliseconds
            (default 5; 0 sends each run of settled messages at the next loop turn). Only the contiguous
            run of settled delivery tags is ever acknowledged; nacks and requeues are single frames.
        handle: this endpoint's CFX handle (``Vendor.Model.Serial``); the ``Source`` and routing-key prefix
            of what it publishes.
        gzip: compress published envelopes (``content-encoding: gzip``), as the CFX SDK does by default.
        decoder: decoder name for received bodies (``cfx``; ``auto`` also accepts normalized event JSON).
        dead_letter_exchange / dead_letter_queue: where messages are parked that could not be settled
            (default ``<queue>.dead-letter`` for both); declared durable, the exchange as ``fanout``.
        max_deliveries: how many times a message whose settlement failed (the store failed) is taken
            again before it is parked in the dead-letter queue (count, >= 1); counted in the message's own
            ``x-pywats-delivery-count`` header.
        requeue_delay: seconds to wait before a message whose settlement failed is put back in the queue.
        trust_redelivered_flag: a message the broker marks as a first delivery skips the idempotency
            lookup (much faster). Turn off when publishers may send the same ``UniqueID`` twice.
        reconnect: ``[transports.reconnect]``: exponential backoff with jitter between reconnect attempts
            (``initial_delay``, ``max_delay``, ``multiplier``, ``jitter``, seconds; ``give_up_after``).
        heartbeat: AMQP heartbeat interval, seconds (0 disables; a dead broker is noticed after ~2x).
        connect_timeout: seconds one connection attempt may take.
        send_timeout: seconds ``send``/``publish_envelope`` wait for a connection and the broker's
            confirm before raising.
        drain_timeout: seconds ``stop`` waits for in-flight messages to settle before closing (the rest are
            redelivered by the broker).
        app_id: AMQP ``app_id`` property of published messages.

    Raises:
        pydantic.ValidationError: on construction with an invalid value (``from_options`` raises
            ``ConfigError`` naming the key as the user wrote it instead).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    aliases: ClassVar[dict[str, str]] = {"prefetch": "max_in_flight"}
    deprecated: ClassVar[dict[str, str]] = _DEPRECATED

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    password: SecretStr | None = None
    password_env: str | None = None
    exchange: str = Field(default="cfx", min_length=1, max_length=255)
    exchange_type: Literal["topic", "fanout", "direct", "headers"] = "topic"
    declare_exchange: bool = True
    queue: str = Field(default="pywats-events.cfx", min_length=1, max_length=255)
    queue_type: Literal["classic", "quorum"] = "classic"
    binding_keys: list[str] = Field(default_factory=lambda: ["#"])
    max_in_flight: int = Field(default=512, ge=1, le=65535)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_inflight_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    ack_batch_size: int = Field(default=128, ge=1, le=65535)
    ack_flush_ms: float = Field(default=5.0, ge=0, le=1000)
    handle: str = Field(default="pyWATS.Events.1", min_length=1, max_length=200)
    gzip: bool = False
    decoder: str = "cfx"
    dead_letter_exchange: str | None = None
    dead_letter_queue: str | None = None
    max_deliveries: int = Field(default=10, ge=1)
    requeue_delay: float = Field(default=1.0, ge=0)
    trust_redelivered_flag: bool = True
    heartbeat: int = Field(default=30, ge=0)
    app_id: str = "pywats-events"

    # -- the previous release's names, read-only -----------------------------------------------
    @property
    def prefetch(self) -> int:
        """``max_in_flight`` under its AMQP name (``basic.qos`` prefetch count)."""
        return self.max_in_flight

    @property
    def max_message_size(self) -> int:
        """Deprecated name of ``max_message_bytes`` (bytes)."""
        return self.max_message_bytes

    @property
    def stop_timeout(self) -> float:
        """Deprecated name of ``drain_timeout`` (seconds)."""
        return self.drain_timeout

    @property
    def publish_timeout(self) -> float:
        """Deprecated name of ``send_timeout`` (seconds)."""
        return self.send_timeout

    @property
    def reconnect_initial_delay(self) -> float:
        """Deprecated name of ``reconnect.initial_delay`` (seconds)."""
        return self.reconnect.initial_delay

    @property
    def reconnect_max_delay(self) -> float:
        """Deprecated name of ``reconnect.max_delay`` (seconds)."""
        return self.reconnect.max_delay

    @property
    def ca_file(self) -> Path | None:
        """Deprecated name of ``tls.ca_file``."""
        return self.tls.ca_file if self.tls else None

    @property
    def cert_file(self) -> Path | None:
        """Deprecated name of ``tls.cert_file``."""
        return self.tls.cert_file if self.tls else None

    @property
    def key_file(self) -> Path | None:
        """Deprecated name of ``tls.key_file``."""
        return self.tls.key_file if self.tls else None

    @property
    def key_password(self) -> SecretStr | None:
        """Deprecated name of ``tls.key_password`` (secret)."""
        return self.tls.key_password if self.tls else None

    @property
    def tls_verify_hostname(self) -> bool:
        """Deprecated name of ``tls.verify_hostname`` (True without a ``tls`` table)."""
        return self.tls.verify_hostname if self.tls else True

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("amqp", "amqps"):
            # Never echo the URL: it may hold the password.
            raise ValueError(f"scheme must be amqp or amqps, got {parts.scheme or '(none)'!r}")
        if not parts.hostname:
            raise ValueError("the URL names no host")
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> Self:
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(f"environment variable {self.password_env!r} (password_env) is not set")
            object.__setattr__(self, "password", SecretStr(value))
        if self.reconnect.max_delay < self.reconnect.initial_delay:
            raise ValueError("reconnect.max_delay must be >= reconnect.initial_delay")
        return self

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> CFXSettings:
        """Validate a configuration table.

        Raises:
            ConfigError: naming the first bad key and what is wrong with it (secrets are not echoed).
        """
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            first = exc.errors()[0]
            key = ".".join(str(p) for p in first["loc"]) or "(options)"
            shown = repr(key)
            # Name the key as the user wrote it: ``prefetch``, not the ``max_in_flight`` it became.
            for old, new in (*cls.aliases.items(), *cls.deprecated.items()):
                if old in options and (key == new or key.startswith(new + ".")):
                    shown = f"{old!r} (= {key!r})"
                    break
            raise ConfigError(f"cfx transport option {shown}: {first['msg']}") from None

    # -- derived values ----------------------------------------------------------------------
    @property
    def dlx_name(self) -> str:
        """The dead-letter exchange's name."""
        return self.dead_letter_exchange or f"{self.queue}.dead-letter"

    @property
    def dlq_name(self) -> str:
        """The dead-letter queue's name."""
        return self.dead_letter_queue or f"{self.queue}.dead-letter"

    @property
    def uses_tls(self) -> bool:
        """True for ``amqps://`` or when a ``tls`` table (or a TLS file) is given."""
        return self.tls is not None or urlsplit(self.url.get_secret_value()).scheme == "amqps"

    def connection_url(self) -> str:
        """The URL to connect with, password included (``password`` applied). Never log it."""
        raw = self.url.get_secret_value()
        parts = urlsplit(raw)
        if self.uses_tls and parts.scheme == "amqp":
            parts = parts._replace(scheme="amqps")
        if self.password is None:
            return urlunsplit(parts)
        user = parts.username or "guest"
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:{quote(self.password.get_secret_value(), safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def redacted_url(self) -> str:
        """The URL with the password replaced by ``***`` (safe to log and show)."""
        parts = urlsplit(self.url.get_secret_value())
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        if parts.username:
            secret = ":***" if parts.password is not None or self.password is not None else ""
            netloc = f"{unquote(parts.username)}{secret}@{netloc}"
        return urlunsplit(parts._replace(netloc=netloc, query=""))

    def where(self) -> str:
        """What a connection failure message names for the operator to check: URL (no password), user,
        vhost, e.g. ``URL amqp://pywats:***@broker:5672/line1, user 'pywats', vhost 'line1'``."""
        parts = urlsplit(self.url.get_secret_value())
        user = unquote(parts.username) if parts.username else "guest (default)"
        # AMQP URI spec: the path without its leading "/" is the vhost; an empty path means "/".
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return f"URL {self.redacted_url}, user {user!r}, vhost {vhost!r}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for the connection (TLS 1.2 at least), or None without TLS.

        Raises:
            ConfigError: a TLS file cannot be read or the key does not match the certificate.
        """
        if not self.uses_tls:
            return None
        try:
            return (self.tls or TLSSettings()).client_context()
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cfx transport TLS files: {exc}") from None

    def describe(self) -> dict[str, Any]:
        """What is safe to show in readiness and the admin API (no secrets)."""
        return {
            "url": self.redacted_url,
            "exchange": self.exchange,
            "queue": self.queue,
            "binding_keys": list(self.binding_keys),
            "prefetch": self.max_in_flight,
            "max_in_flight": self.max_in_flight,
            "max_message_size": self.max_message_bytes,
            "max_message_bytes": self.max_message_bytes,
            "ack_batch_size": self.ack_batch_size,
            "ack_flush_ms": self.ack_flush_ms,
            "max_inflight_bytes": self.max_inflight_bytes,
            "handle": self.handle,
            "dead_letter_queue": self.dlq_name,
            "tls": self.uses_tls,
        }
