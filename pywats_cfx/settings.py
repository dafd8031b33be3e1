"""Settings of the IPC-CFX AMQP transport (``[[transports]] kind = "cfx"``).

One pydantic model, validated from the configuration file's options table. The broker URL and password are
``SecretStr``: they never appear in logs, ``repr`` or ``describe()``; ``redacted_url`` is what is shown.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pywats_events.errors import ConfigError

__all__ = ["CFXSettings"]


class CFXSettings(BaseModel):
    """How ``CFXTransport`` reaches RabbitMQ, what it declares and consumes, and how it publishes.

    Attributes:
        url: broker URL, ``amqp://user:password@host:5672/vhost`` or ``amqps://...`` for TLS (secret).
        password: overrides the URL's password; secret.
        password_env: name of an environment variable holding the password (read at validation), so the
            configuration file need not contain it.
        ca_file / cert_file / key_file: PEM files for TLS: the CA that signed the broker's certificate, and
            this client's certificate and private key (mutual TLS). Any of them switches TLS on.
        key_password: password of an encrypted ``key_file`` (secret).
        tls_verify_hostname: check that the broker's certificate names the URL's host (default on).
        exchange: the CFX exchange to bind to and publish on (default ``cfx``).
        exchange_type: its AMQP type (default ``topic``, as CFX routing keys are ``<handle>.<MessageName>``).
        declare_exchange: declare the exchange (durable); off when it is managed elsewhere and must exist.
        queue: name of the durable queue this bus consumes; several bus processes using the same name share
            the work (competing consumers).
        queue_type: ``classic`` or ``quorum`` (replicated; for a RabbitMQ cluster).
        binding_keys: routing-key patterns bound to the queue (default ``["#"]``: every message).
        prefetch: most unacknowledged messages the broker hands this consumer at once (count, 1..65535).
        max_message_size: largest message body accepted, in bytes as received (default 8 MiB). A larger
            one is not decoded: it goes to the dead-letter queue with reason ``too_large``, keeping its
            first 4096 bytes and its size, and is acknowledged.
        max_inflight_bytes: bytes of message bodies received but not yet settled, at most (default 64 MiB).
            Beyond it the consumer is cancelled (the broker stops sending) and started again once half of
            it is free; with ``prefetch`` this bounds the memory a backlog of large messages can take.
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
        reconnect_initial_delay / reconnect_max_delay: exponential backoff between reconnect attempts,
            seconds (with jitter).
        heartbeat: AMQP heartbeat interval, seconds (0 disables; a dead broker is noticed after ~2x).
        connect_timeout: seconds one connection attempt may take.
        publish_timeout: seconds ``send``/``publish_envelope`` wait for a connection and the broker's
            confirm before raising.
        stop_timeout: seconds ``stop`` waits for in-flight messages to settle before closing (the rest are
            redelivered by the broker).
        app_id: AMQP ``app_id`` property of published messages.

    Raises:
        pydantic.ValidationError: on construction with an invalid value (``from_options`` raises
            ``ConfigError`` naming the key instead).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    password: SecretStr | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    tls_verify_hostname: bool = True
    exchange: str = Field(default="cfx", min_length=1, max_length=255)
    exchange_type: Literal["topic", "fanout", "direct", "headers"] = "topic"
    declare_exchange: bool = True
    queue: str = Field(default="pywats-events.cfx", min_length=1, max_length=255)
    queue_type: Literal["classic", "quorum"] = "classic"
    binding_keys: list[str] = Field(default_factory=lambda: ["#"])
    prefetch: int = Field(default=512, ge=1, le=65535)
    max_message_size: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_inflight_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    handle: str = Field(default="pyWATS.Events.1", min_length=1, max_length=200)
    gzip: bool = False
    decoder: str = "cfx"
    dead_letter_exchange: str | None = None
    dead_letter_queue: str | None = None
    max_deliveries: int = Field(default=10, ge=1)
    requeue_delay: float = Field(default=1.0, ge=0)
    trust_redelivered_flag: bool = True
    reconnect_initial_delay: float = Field(default=0.5, gt=0)
    reconnect_max_delay: float = Field(default=30.0, gt=0)
    heartbeat: int = Field(default=30, ge=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    publish_timeout: float = Field(default=10.0, gt=0)
    stop_timeout: float = Field(default=10.0, ge=0)
    app_id: str = "pywats-events"

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
        if self.reconnect_max_delay < self.reconnect_initial_delay:
            raise ValueError("reconnect_max_delay must be >= reconnect_initial_delay")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate and its key)")
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
            raise ConfigError(f"cfx transport option {key!r}: {first['msg']}") from None

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
        """True for ``amqps://`` or when any TLS file is given."""
        scheme = urlsplit(self.url.get_secret_value()).scheme
        return scheme == "amqps" or any(f is not None for f in (self.ca_file, self.cert_file, self.key_file))

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
        """The TLS context for the connection, or None without TLS.

        Raises:
            ConfigError: a TLS file cannot be read or the key does not match the certificate.
        """
        if not self.uses_tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ctx.check_hostname = self.tls_verify_hostname
        try:
            if self.ca_file is not None:
                ctx.load_verify_locations(cafile=str(self.ca_file))
            if self.cert_file is not None and self.key_file is not None:
                ctx.load_cert_chain(
                    str(self.cert_file),
                    str(self.key_file),
                    password=self.key_password.get_secret_value() if self.key_password else None,
                )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cfx transport TLS files: {exc}") from None
        return ctx

    def describe(self) -> dict[str, Any]:
        """What is safe to show in readiness and the admin API (no secrets)."""
        return {
            "url": self.redacted_url,
            "exchange": self.exchange,
            "queue": self.queue,
            "binding_keys": list(self.binding_keys),
            "prefetch": self.prefetch,
            "max_message_size": self.max_message_size,
            "max_inflight_bytes": self.max_inflight_bytes,
            "handle": self.handle,
            "dead_letter_queue": self.dlq_name,
            "tls": self.uses_tls,
        }
