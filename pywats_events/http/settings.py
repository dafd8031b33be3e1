"""Settings of the HTTP surface: address, limits, per-route credentials, admin token.

Read from the configuration file's ``[http]`` table (``HTTPSettings.from_config``) and from environment
variables ``PYWATS_HTTP_<FIELD>`` (nested with ``__``: ``PYWATS_HTTP_ADMIN_TOKEN``,
``PYWATS_HTTP_ROUTES__EVENTS__TOKENS='["s3cret"]'``). The environment wins over the file, key by key
(nested tables are merged), the same rule as the core settings (``PYWATS_EVENTS_*``): a secret exported
as the sample says takes effect even where the file has a placeholder such as ``tokens = []``. Secrets are
``SecretStr``: never logged, shown as ``**********`` in ``repr`` and ``describe()``.

Open intake (a route group of ``INTAKE_ROUTES`` with neither tokens nor a signature secret) is logged at
WARNING when the server starts; on an address other than loopback the server refuses to start with open
intake unless ``allow_open_intake = true``.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import ConfigError
from .console.settings import ConsoleSettings

__all__ = ["INTAKE_ROUTES", "ROUTE_NAMES", "HTTPSettings", "RouteSecurity"]

#: Route groups that take their own credentials: ``events`` (POST /events), ``cfx`` (POST /cfx),
#: ``event_service`` (POST /api/v2.0/EventService), ``status`` (GET /status...), ``metrics``
#: (GET /metrics). Health probes and the OpenAPI document are always open; the admin API uses
#: ``admin_token``.
ROUTE_NAMES = ("events", "cfx", "event_service", "status", "metrics")

#: The route groups that take events in (an open one lets anyone who reaches the port post events).
INTAKE_ROUTES = ("events", "cfx", "event_service")


class RouteSecurity(BaseModel):
    """Credentials one route group requires. A bearer token and a body signature: with both kinds set, a
    request needs both. The two signature schemes are alternatives: with ``hmac_secret`` and
    ``webhook_secret`` set, a request signed by either passes.

    Attributes:
        tokens: accepted bearer tokens (``Authorization: Bearer <token>``); several allow rotation.
        hmac_secret: key of the HMAC-SHA256 body signature (``X-Signature: sha256=<hex>``).
        webhook_secret: Standard Webhooks secrets (``whsec_<base64>``; one, or several during a rotation):
            ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers, stale timestamps and
            replayed ids refused (``pywats_events.http.webhook_signature``).
        webhook_tolerance: seconds a ``webhook-timestamp`` may differ from the server clock (either way),
            and how long an accepted ``webhook-id`` is remembered; 1..86400, default 300.
    """

    model_config = ConfigDict(extra="forbid")

    tokens: list[SecretStr] = Field(default_factory=list)
    hmac_secret: SecretStr | None = None
    webhook_secret: list[SecretStr] = Field(default_factory=list)
    webhook_tolerance: float = Field(default=300.0, ge=1, le=86400)

    @field_validator("webhook_secret", mode="before")
    @classmethod
    def _one_secret(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: list[SecretStr]) -> list[SecretStr]:
        from .webhook_signature import parse_secret

        for secret in value:
            parse_secret(secret.get_secret_value())  # ValueError names the expected form
        return value

    def webhook_keys(self) -> list[bytes]:
        """The key bytes of ``webhook_secret``."""
        from .webhook_signature import parse_secret

        return [parse_secret(s.get_secret_value()) for s in self.webhook_secret]

    @field_validator("tokens", mode="before")
    @classmethod
    def _one_token(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tokens")
    @classmethod
    def _non_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        if any(not t.get_secret_value() for t in value):
            raise ValueError("a bearer token must not be empty")
        return value

    @property
    def open(self) -> bool:
        """True when the route needs no credentials."""
        return not self.tokens and self.hmac_secret is None and not self.webhook_secret

    @property
    def signed(self) -> bool:
        """True when the route requires a body signature (either scheme)."""
        return self.hmac_secret is not None or bool(self.webhook_secret)


_OPEN = RouteSecurity()


class HTTPSettings(BaseSettings):
    """The HTTP server's settings.

    Attributes:
        enabled: serve HTTP at all (``pywats-events run`` skips the server when False).
        host: address to bind; ``127.0.0.1`` (this machine only) by default, ``0.0.0.0`` for all.
        port: TCP port, 0..65535 (0: any free port, for tests).
        max_body_bytes: largest request body accepted, in bytes, as received (413 beyond).
        max_decompressed_bytes: largest gzip-decoded body of ``POST /cfx``, in bytes (413 beyond).
        retry_after: seconds sent in ``Retry-After`` with 503 answers.
        routes: credentials per route group (keys from ``ROUTE_NAMES``); a group not listed is open.
        admin_token: bearer token of the admin API; when unset the admin API is not served (404).
        graceful_timeout: seconds a shutdown waits for open requests before cancelling them.
        console: the operator console (``[http.console]``, see ``ConsoleSettings``; off by default).
        log_level: uvicorn log level (``warning`` keeps request lines out of the log).
        access_log: log one line per request.
        allow_open_intake: start even though an intake route group is open (no token, no HMAC secret)
            while ``host`` is not a loopback address. Off by default: an open intake reachable from the
            network must be asked for.

    Raises:
        pydantic.ValidationError: on construction with invalid values (``from_config`` turns it into
            ``ConfigError``).
    """

    model_config = SettingsConfigDict(
        env_prefix="PYWATS_HTTP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_decompressed_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    retry_after: int = Field(default=1, ge=1, le=3600)
    routes: dict[str, RouteSecurity] = Field(default_factory=dict)
    admin_token: SecretStr | None = None
    graceful_timeout: int = Field(default=10, ge=1)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    log_level: str = "warning"
    access_log: bool = False
    allow_open_intake: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment must win over them, as in the core
        # settings (first source wins; pydantic-settings merges nested tables key by key).
        return env_settings, init_settings, file_secret_settings

    @field_validator("routes")
    @classmethod
    def _known_routes(cls, value: dict[str, RouteSecurity]) -> dict[str, RouteSecurity]:
        unknown = sorted(set(value) - set(ROUTE_NAMES))
        if unknown:
            raise ValueError(f"unknown route group(s) {unknown}; known: {list(ROUTE_NAMES)}")
        return value

    @field_validator("admin_token")
    @classmethod
    def _admin_non_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("admin_token must not be empty (leave it unset to disable the admin API)")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        if value.lower() not in levels:
            raise ValueError(f"log_level must be one of {list(levels)}")
        return value.lower()

    @classmethod
    def from_config(cls, options: dict[str, Any] | None = None) -> Self:
        """Build settings from the ``[http]`` table; ``PYWATS_HTTP_*`` environment variables win over it.

        Raises:
            ConfigError: a key is unknown or a value invalid; the message names it (``http.port``).
        """
        try:
            return cls(**(options or {}))
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, "http.") from None

    def open_intake(self) -> list[str]:
        """The intake route groups (``INTAKE_ROUTES``) that need no credentials."""
        return [name for name in INTAKE_ROUTES if self.security(name).open]

    def security(self, route: str) -> RouteSecurity:
        """Credentials of route group ``route`` (an open ``RouteSecurity`` when none are configured)."""
        return self.routes.get(route) or _OPEN

    def describe(self) -> dict[str, Any]:
        """Summary without secrets: which groups are protected and how."""
        return {
            "enabled": self.enabled,
            "address": f"http://{self.host}:{self.port}",
            "max_body_bytes": self.max_body_bytes,
            "admin_api": self.admin_token is not None,
            "routes": {
                name: {
                    "bearer": bool(sec.tokens),
                    "hmac": sec.hmac_secret is not None,
                    "standard_webhooks": bool(sec.webhook_secret),
                }
                for name, sec in self.routes.items()
            },
        }
