"""``pywats-events config check``: build everything ``run`` would build, start nothing, report it.

Loads the settings (file, environment, ``--db``), builds the bus with its transports and handlers, the HTTP
settings with ``[http.console]`` and, when HTTP is enabled, the HTTP application; the store is opened (and
closed again) unless it is a SQLite file that does not exist yet (``run`` would create it, and a check must
not). The report holds no secret: passwords and tokens are masked (pydantic ``SecretStr``) and URLs are
shown without credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import build_bus, load_settings
from ..errors import ConfigError, StoreError

__all__ = ["check_configuration"]


async def check_configuration(path: Path | None, db: str | None = None) -> dict[str, Any]:
    """Validate the configuration ``run`` would use and return it resolved, without secrets.

    Args:
        path: the configuration file (TOML or YAML); ``None``: the embedded default.
        db: the ``--db`` override.

    Returns:
        ``{"config", "db", "log_level", "bus", "transports", "handlers", "http"}``; ``transports`` as each
        transport's ``describe()``, ``handlers`` with their subscription filters, ``http`` the HTTP settings
        with secrets masked (``**********``).

    Raises:
        ConfigError: any invalid setting, unknown plug-in, handler that cannot be imported or built, HTTP
            setting, missing HTTP extra, or a store that cannot be opened (the message names what).
    """
    settings = load_settings(path, db=db)
    bus = build_bus(settings)
    from ..http.settings import HTTPSettings

    http = HTTPSettings.from_config(settings.http)
    if http.enabled:
        try:
            from ..http.server import Server
        except ImportError as exc:
            raise ConfigError(
                f"HTTP is enabled but its libraries are missing ({exc}); "
                "pip install 'pywats-events[http]' or set [http] enabled = false"
            ) from None
        Server(bus, http)  # builds the application (routes, console): what run would serve
    store = bus.store
    url = store.url
    if not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists():
        try:
            await store.open()
        except StoreError as exc:
            raise ConfigError(f"store {url}: {exc}") from None
        finally:
            await store.close()
    handlers = [
        {
            "name": s.name,
            "event_types": list(s.event_types),
            "min_severity": s.min_severity,
            "categories": sorted(s.categories) if s.categories else None,
            "sources": sorted(s.sources) if s.sources else None,
            "priority": s.priority,
        }
        for s in bus.registry
    ]
    transports = []
    for t in bus.transports.values():
        described = t.describe()
        for volatile in ("state", "stats", "last_error", "state_detail"):
            described.pop(volatile, None)  # a check starts nothing: no state to report
        transports.append(described)
    return {
        "config": str(path) if path is not None else None,
        "db": url,
        "log_level": settings.log_level,
        "bus": settings.bus.model_dump(mode="json"),
        "transports": transports,
        "handlers": handlers,
        "http": http.model_dump(mode="json"),
    }
