"""``CFXConfig``: the configuration objects of the pyWATS event architecture document (seed ``004``),
mapped onto ``CFXSettings``.

The document writes::

    config = CFXConfig(
        amqp=AMQPConfig(host="cfx-broker.factory.local"),
        endpoint=EndpointConfig(cfx_handle="//Company/WATS/Station1"),
    )
    transport = CFXTransport(config)

That runs as written: ``CFXTransport`` takes a ``CFXConfig`` in place of its name, and
``CFXConfig.to_settings()`` gives the one settings model the transport uses (so configuration files and
these objects cannot drift apart). Field names follow the pyWATS client's CFX configuration.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pywats_events.transports.settings import TLSSettings

from .settings import CFXSettings

__all__ = ["AMQPConfig", "CFXConfig", "EndpointConfig", "ExchangeConfig"]


class AMQPConfig(BaseModel):
    """The broker connection.

    Attributes:
        host / port: the broker (5672, or 5671 with TLS by convention).
        virtual_host: the AMQP vhost.
        username / password: credentials (password kept secret).
        use_ssl: TLS (``amqps``); ``ssl_ca_path`` the CA file, ``ssl_cert_path`` / ``ssl_key_path`` a
            client certificate for mutual TLS, ``ssl_verify`` the host name check.
        heartbeat: AMQP heartbeat, seconds. connection_timeout: seconds one connect may take.
    """

    model_config = ConfigDict(extra="forbid")
    host: str = "localhost"
    port: int = Field(default=5672, ge=1, le=65535)
    virtual_host: str = "/"
    username: str = "guest"
    password: SecretStr = SecretStr("guest")
    use_ssl: bool = False
    ssl_cert_path: Path | None = None
    ssl_key_path: Path | None = None
    ssl_ca_path: Path | None = None
    ssl_verify: bool = True
    heartbeat: int = Field(default=60, ge=0)
    connection_timeout: float = Field(default=10.0, gt=0)


class EndpointConfig(BaseModel):
    """This endpoint: its CFX handle (``//Company/WATS/Station1``, IPC-2591 §5 CFX handle) and the durable
    queue it consumes (default ``pywats-events.<handle>``)."""

    model_config = ConfigDict(extra="forbid")
    cfx_handle: str = Field(default="pyWATS.Events.1", min_length=1, max_length=200)
    queue: str | None = None


class ExchangeConfig(BaseModel):
    """The CFX exchange: name, type and the binding keys of our queue (``#``: everything)."""

    model_config = ConfigDict(extra="forbid")
    name: str = "cfx"
    type: str = "topic"
    binding_keys: list[str] = Field(default_factory=lambda: ["#"])


class CFXConfig(BaseModel):
    """The document's transport configuration: ``amqp``, ``endpoint`` and ``exchange``.

    Raises:
        pydantic.ValidationError: an invalid field (from ``to_settings`` too, naming the CFX setting).
    """

    model_config = ConfigDict(extra="forbid")
    amqp: AMQPConfig = Field(default_factory=AMQPConfig)
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)

    def to_settings(self) -> CFXSettings:
        """The ``CFXSettings`` this configuration means."""
        a = self.amqp
        scheme = "amqps" if a.use_ssl else "amqp"
        url = f"{scheme}://{quote(a.username, safe='')}@{a.host}:{a.port}/{quote(a.virtual_host, safe='')}"
        safe_handle = self.endpoint.cfx_handle.strip("/").replace("/", ".")
        return CFXSettings(
            url=SecretStr(url),
            password=a.password,
            tls=(
                TLSSettings(
                    ca_file=a.ssl_ca_path,
                    cert_file=a.ssl_cert_path,
                    key_file=a.ssl_key_path,
                    verify_hostname=a.ssl_verify,
                )
                if a.use_ssl or any(f is not None for f in (a.ssl_ca_path, a.ssl_cert_path, a.ssl_key_path))
                else None
            ),
            heartbeat=a.heartbeat,
            connect_timeout=a.connection_timeout,
            handle=self.endpoint.cfx_handle,
            queue=self.endpoint.queue or f"pywats-events.{safe_handle}",
            exchange=self.exchange.name,
            exchange_type=self.exchange.type,  # type: ignore[arg-type]
            binding_keys=self.exchange.binding_keys,
        )
