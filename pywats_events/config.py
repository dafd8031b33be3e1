"""Service configuration: TOML or YAML file, environment overrides, and building the bus from it.

Precedence, highest first: command-line options (``--db``), environment variables (``PYWATS_EVENTS_DB``,
``PYWATS_EVENTS_BUS__CONCURRENCY``; nested keys joined by ``__``), the configuration file, the embedded
default. With no file the embedded default applies: drop folder ``./inbox``, SQLite store
``./pywats-events.db``, the event-store handler, HTTP on 127.0.0.1:8080.

```toml
db = "sqlite:///pywats-events.db"        # or postgresql://user@host/db

[bus]
concurrency = 16
[bus.retry]
max_attempts = 5
initial_delay = 0.5

[[transports]]
kind = "file"                           # any registered transport kind: pywats-events plugins
name = "inbox"
path = "./inbox"

[[handlers]]
kind = "event-store"                    # a registered handler kind, or python

[[handlers]]
kind = "python"
target = "my_plant.handlers:FaultPager" # a BaseHandler subclass or a function
event_types = ["asset.fault"]
timeout = 30                            # seconds per call, then a failed attempt (default [bus] handler_timeout)
concurrency = 4                         # sync functions: calls at once, on the handler's own threads

[http]
enabled = true
port = 8080
```

Relative paths: a drop folder's ``path`` is taken relative to the configuration file's folder (with no
file: to the current directory), so ``path = "./inbox"`` names the same folder whatever directory the
service is started from. The configuration file's folder (with no file: the current directory) is put
first on the import path, so ``kind = "python"`` handlers in modules beside the file import without
``PYTHONPATH``.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import logging
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .breaker import BreakerPolicy
from .bus import EventBus
from .errors import ConfigError
from .handlers import BaseHandler, EventStoreHandler, FunctionHandler
from .plugins import HANDLER_GROUP, TRANSPORT_GROUP, load_plugin
from .retry import RetryPolicy
from .transport import Transport

__all__ = [
    "BusSettings",
    "HandlerConfig",
    "Settings",
    "TransportConfig",
    "build_bus",
    "build_handler",
    "build_transport",
    "load_settings",
]

log = logging.getLogger(__name__)

DEFAULT_DB = "./pywats-events.db"

#: Accepted ``log_level`` values (Python ``logging`` level names).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class RetrySettings(BaseModel):
    """``[bus.retry]``: see ``RetryPolicy`` (seconds for delays)."""

    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(default=3, ge=1)
    initial_delay: float = Field(default=0.5, ge=0)
    max_delay: float = Field(default=30.0, ge=0)
    exponential_base: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.1, ge=0)

    def policy(self) -> RetryPolicy:
        """The ``RetryPolicy`` these settings describe."""
        return RetryPolicy(**self.model_dump())


class BreakerSettings(BaseModel):
    """``[bus.breaker]``: see ``BreakerPolicy`` (seconds for the reset timeout)."""

    model_config = ConfigDict(extra="forbid")
    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout: float = Field(default=30.0, gt=0)
    half_open_max_calls: int = Field(default=1, ge=1)
    success_threshold: int = Field(default=1, ge=1)
    enabled: bool = True

    def policy(self) -> BreakerPolicy:
        """The ``BreakerPolicy`` these settings describe."""
        return BreakerPolicy(**self.model_dump())


class BusSettings(BaseModel):
    """``[bus]``: lanes, queue bound (events), drain timeout (seconds), default policies; ``freeze_gc``
    (see ``EventBus``) is on for the service."""

    model_config = ConfigDict(extra="forbid")
    concurrency: int = Field(default=16, ge=1, le=4096)
    queue_size: int = Field(default=4096, ge=1)
    drain_timeout: float = Field(default=10.0, ge=0)
    handler_timeout: float | None = Field(default=None, gt=0)
    stuck_after: float = Field(default=120.0, gt=0)
    idempotency: bool = True
    handler_error_events: bool = True
    freeze_gc: bool = True
    retry: RetrySettings = Field(default_factory=RetrySettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


class TransportConfig(BaseModel):
    """One ``[[transports]]`` table: ``kind``, optional ``name``, and the kind's own options."""

    model_config = ConfigDict(extra="allow")
    kind: str
    name: str | None = None

    def options(self) -> dict[str, Any]:
        """The kind-specific options (everything but ``kind`` and ``name``)."""
        return dict(self.model_extra or {})


class HandlerConfig(BaseModel):
    """One ``[[handlers]]`` table: ``kind`` (``event-store``, ``status-board``, ``http-forwarder``,
    ``python``), ``target`` for ``python`` (``module:attribute``), subscription filters, and options passed
    to the handler class."""

    model_config = ConfigDict(extra="allow")
    kind: str
    name: str | None = None
    target: str | None = None
    event_types: list[str] | None = None
    min_severity: str | None = None
    categories: list[str] | None = None
    sources: list[str] | None = None
    priority: int | None = None
    #: Seconds one call may take before it counts as a failed attempt (default: ``[bus] handler_timeout``).
    timeout: float | None = Field(default=None, gt=0)
    #: Sync function handlers: most calls at once, each on a thread of the handler's own (default 4).
    concurrency: int | None = Field(default=None, ge=1, le=1024)

    def options(self) -> dict[str, Any]:
        """Options for the handler's constructor (or ``from_config``)."""
        return dict(self.model_extra or {})


def _default_transports() -> list[TransportConfig]:
    return [TransportConfig(kind="file", name="inbox", path="./inbox")]  # type: ignore[call-arg]


def _default_handlers() -> list[HandlerConfig]:
    return [HandlerConfig(kind="event-store")]


class Settings(BaseSettings):
    """The whole service configuration (see the module docstring).

    Attributes:
        db: store location: file path, ``sqlite:///file.db``, ``postgresql://...`` or ``memory://``.
        log_level: ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL`` (any case; stored upper).
        config_dir: the configuration file's folder (``None`` with no file): relative drop folders and
            ``kind = "python"`` imports start there.
        bus: lanes, queue and policies.
        transports: inputs; default the ``./inbox`` drop folder.
        handlers: handlers; default the event store.
        http: the HTTP server's settings (``pywats_events.http.settings.HTTPSettings``); on by default.
    """

    model_config = SettingsConfigDict(env_prefix="PYWATS_EVENTS_", env_nested_delimiter="__", extra="forbid")

    db: str = DEFAULT_DB
    log_level: str = "INFO"
    bus: BusSettings = Field(default_factory=BusSettings)
    transports: list[TransportConfig] = Field(default_factory=_default_transports)
    handlers: list[HandlerConfig] = Field(default_factory=_default_handlers)
    http: dict[str, Any] = Field(default_factory=lambda: {"enabled": True})
    _config_dir: Path | None = PrivateAttr(default=None)

    @property
    def config_dir(self) -> Path | None:
        """The configuration file's folder, absolute (``None``: no file, the current directory applies)."""
        return self._config_dir

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {value!r}; use one of {', '.join(LOG_LEVELS)}")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment must win over the file.
        return env_settings, init_settings, file_secret_settings


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"configuration {path}: unknown format {suffix!r}; use .toml, .yaml or .yml")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration {path}: invalid TOML: {exc}") from None
    except ConfigError:
        raise
    except Exception as exc:  # yaml.YAMLError and friends
        raise ConfigError(f"configuration {path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration {path}: the top level must be a table/mapping")
    return data


def load_settings(path: str | Path | None = None, *, db: str | None = None) -> Settings:
    """Load the configuration from ``path`` (TOML or YAML; ``None``: embedded default), apply environment
    overrides, then ``db`` if given.

    Raises:
        ConfigError: unreadable file, bad syntax, or an invalid value (the message names the key).
    """
    data = _read_file(Path(path)) if path is not None else {}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError.from_validation(exc, f"configuration{' ' + str(path) if path else ''}: ") from None
    if db:
        settings.db = db
    if path is not None:
        settings._config_dir = Path(path).expanduser().resolve().parent
    return settings


def _on_import_path(folder: Path) -> None:
    """Put ``folder`` first on ``sys.path`` (once): the user's handler modules live beside their file."""
    entry = str(folder)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _import(target: str, what: str) -> Any:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what}: target {target!r} must look like 'package.module:Name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import {module_name!r}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{what}: module {module_name!r} has no {attr!r}") from None


def build_transport(cfg: TransportConfig, index: int = 0, *, base_dir: Path | None = None) -> Transport:
    """Create the transport a ``[[transports]]`` table describes.

    Args:
        cfg: the table.
        index: its position among ``[[transports]]`` (names unnamed ones: ``file1``).
        base_dir: folder a relative drop-folder ``path`` is taken from (``Settings.config_dir``); ``None``:
            the current directory.

    Raises:
        ConfigError: unknown kind or invalid option.
    """
    name = transport_name(cfg, index)
    cls = load_plugin(TRANSPORT_GROUP, cfg.kind, f"transport {name!r}")
    options = transport_options(cfg, base_dir=base_dir)
    built = copy.deepcopy(options)  # what it was built from, for Transport.reload (from_config may pop keys)
    transport: Transport = cls.from_config(name, options)
    transport.config_options = built
    return transport


def transport_name(cfg: TransportConfig, index: int = 0) -> str:
    """The name of the transport a ``[[transports]]`` table describes: its ``name``, else kind and position
    (``file``, ``file1``...)."""
    return cfg.name or f"{cfg.kind}{index or ''}"


def transport_options(cfg: TransportConfig, *, base_dir: Path | None = None) -> dict[str, Any]:
    """The options ``build_transport`` passes to the kind's ``from_config`` (and ``Transport.reload`` gets):
    the table without ``kind`` and ``name``, a relative drop-folder ``path`` resolved against ``base_dir``
    (``None``: the current directory)."""
    options = cfg.options()
    folder = options.get("path")
    if cfg.kind == "file" and isinstance(folder, str | Path):
        folder = Path(folder).expanduser()
        options["path"] = folder if folder.is_absolute() else (base_dir or Path.cwd()) / folder
    return options


def build_handler(cfg: HandlerConfig) -> BaseHandler | Any:
    """Create the handler a ``[[handlers]]`` table describes (a ``BaseHandler`` or a function).
    Raises ``ConfigError``."""
    what = f"handler {cfg.name or cfg.kind!r}"
    if cfg.kind == "python":
        if not cfg.target:
            raise ConfigError(f"{what}: kind 'python' needs target = 'package.module:Name'")
        obj = _import(cfg.target, what)
    else:
        obj = load_plugin(HANDLER_GROUP, cfg.kind, what)
    options = cfg.options()
    if inspect.isclass(obj):
        try:
            if hasattr(obj, "from_config"):
                return obj.from_config(cfg.name or getattr(obj, "name", "") or cfg.kind, options)
            return obj(**options)
        except ConfigError:
            raise
        except (TypeError, ValueError, ValidationError) as exc:
            raise ConfigError(f"{what}: {exc}") from None
    if callable(obj):
        if options:
            raise ConfigError(f"{what}: a function handler takes no options, got {sorted(options)}")
        return obj
    raise ConfigError(f"{what}: {cfg.target!r} is neither a handler class nor a function")


def build_bus(settings: Settings, *, with_transports: bool = True) -> EventBus:
    """Create the store, the bus, its handlers and (unless ``with_transports`` is False) its transports.
    Nothing is started.

    Raises:
        ConfigError: an invalid transport, handler or store setting.
        StoreError: the store URL has an unknown scheme.
    """
    from .sql_store import open_store

    if any(cfg.kind == "python" for cfg in settings.handlers):
        _on_import_path(settings.config_dir or Path.cwd())
    b = settings.bus
    bus = EventBus(
        open_store(settings.db),
        retry=b.retry.policy(),
        breaker=b.breaker.policy(),
        concurrency=b.concurrency,
        queue_size=max(b.queue_size, b.concurrency),
        idempotency=b.idempotency,
        handler_error_events=b.handler_error_events,
        drain_timeout=b.drain_timeout,
        freeze_gc=b.freeze_gc,
        handler_timeout=b.handler_timeout,
        stuck_after=b.stuck_after,
    )
    for cfg in settings.handlers:
        handler = build_handler(cfg)
        if isinstance(handler, EventStoreHandler) and cfg.event_types:
            handler.event_types = tuple(cfg.event_types)  # type: ignore[misc]
        if cfg.timeout is not None or cfg.concurrency is not None:
            if not isinstance(handler, BaseHandler):
                handler = FunctionHandler(handler, cfg.name)
            if cfg.timeout is not None:
                handler.timeout = cfg.timeout
            if cfg.concurrency is not None:
                handler.concurrency = cfg.concurrency
        try:
            bus.register(
                handler,
                name=cfg.name,
                event_types=cfg.event_types,
                min_severity=cfg.min_severity,
                categories=cfg.categories,
                sources=cfg.sources,
                priority=cfg.priority,
            )
        except Exception as exc:
            raise ConfigError(f"handler {cfg.name or cfg.kind!r}: {exc}") from None
    if with_transports:
        for i, tcfg in enumerate(settings.transports):
            bus.add_transport(build_transport(tcfg, i, base_dir=settings.config_dir))
    return bus
