"""Configuration reload of a running service (``kill -HUP`` to ``pywats-events run``).

The configuration file is read again (with the environment and ``--db``, as at start-up) and compared with
what is running. What can change safely takes effect at once:

- ``log_level`` (unless ``--log-level`` was given: the command line wins);
- ``[bus.retry]`` and ``[bus.breaker]`` (the default policies: later deliveries and every breaker of a
  handler without a policy of its own; a breaker keeps its state and counts), ``[bus] handler_timeout``,
  ``drain_timeout`` and ``stuck_after``;
- a handler's ``timeout``;
- a transport's options, as far as its ``Transport.reload`` applies them.

Everything else (``db``, ``[http]``, lanes and queue size, handlers added, removed or with other options,
transports added or removed) is logged at WARNING "needs a restart" and keeps its running value. A file
that does not load (bad syntax, an invalid value) changes nothing: the service keeps running with the
previous configuration and the ERROR log line says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import HandlerConfig, Settings, load_settings, transport_name, transport_options
from .errors import ConfigError

if TYPE_CHECKING:
    from .bus import EventBus

__all__ = ["ConfigReloader", "ReloadResult"]

log = logging.getLogger("pywats_events.reload")

#: ``[bus]`` keys a reload applies; the others need a restart.
BUS_LIVE_KEYS = frozenset({"retry", "breaker", "handler_timeout", "drain_timeout", "stuck_after"})
#: ``[[handlers]]`` keys a reload applies; the others need a restart.
HANDLER_LIVE_KEYS = frozenset({"timeout"})


@dataclass
class ReloadResult:
    """What one reload did.

    Attributes:
        applied: dotted keys now in effect (``log_level``, ``bus.retry.max_attempts``,
            ``handlers.pager.timeout``).
        restart: dotted keys that changed but need a restart (``db``, ``transports.line.url``).
        error: why nothing was applied (the file did not load), else ``None``.
    """

    applied: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    error: str | None = None


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str) -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            keys.extend(_diff(a, b, f"{prefix}{k}."))
        else:
            keys.append(f"{prefix}{k}")
    return keys


def _handler_label(cfg: HandlerConfig, index: int) -> str:
    return cfg.name or (cfg.target if cfg.kind == "python" and cfg.target else cfg.kind) or f"#{index}"


class ConfigReloader:
    """Re-reads the service's configuration and applies what can change while running.

    Args:
        bus: the running bus (built from ``settings`` by ``build_bus``).
        settings: the configuration it runs with.
        config_path: the file given to ``run --config`` (``None``: none; the environment is read again).
        db: the ``--db`` option (``None``: not given).
        log_level_pinned: ``--log-level`` was given, so the file's ``log_level`` is not applied.
    """

    def __init__(
        self,
        bus: EventBus,
        settings: Settings,
        config_path: Path | None,
        db: str | None = None,
        *,
        log_level_pinned: bool = False,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.config_path = config_path
        self.db = db
        self.log_level_pinned = log_level_pinned

    async def reload(self) -> ReloadResult:
        """Read the configuration again and apply it (see the module docstring). Never raises for a bad
        file: the result's ``error`` says why nothing changed, and it is logged at ERROR."""
        where = str(self.config_path) if self.config_path is not None else "the environment (no --config file)"
        log.info("reloading the configuration from %s", where)
        try:
            new = load_settings(self.config_path, db=self.db)
            policies = (new.bus.retry.policy(), new.bus.breaker.policy())
        except (ConfigError, ValueError, TypeError) as exc:
            log.error("configuration reload failed, still running with the previous configuration: %s", exc)
            return ReloadResult(error=str(exc))
        result = ReloadResult()
        old = self.settings
        self._top_level(old, new, result)
        self._bus(old, new, policies, result)
        self._handlers(old, new, result)
        await self._transports(old, new, result)
        for key in result.restart:
            if not key.startswith("transports.") or key.count(".") == 1:  # a transport's keys: it logged them
                log.warning("configuration reload: %s changed: needs a restart (still running with the old value)", key)
        log.info(
            "configuration reloaded: applied %s; needs a restart: %s",
            ", ".join(result.applied) or "nothing",
            ", ".join(result.restart) or "nothing",
        )
        return result

    def _top_level(self, old: Settings, new: Settings, result: ReloadResult) -> None:
        if new.log_level != old.log_level:
            if self.log_level_pinned:
                log.info("log_level %s in the configuration ignored: --log-level wins", new.log_level)
            else:
                logging.getLogger().setLevel(new.log_level)
                old.log_level = new.log_level
                result.applied.append("log_level")
        if new.db != old.db:
            result.restart.append("db")
        result.restart.extend(_diff(old.http, new.http, "http."))

    def _bus(self, old: Settings, new: Settings, policies: tuple[Any, Any], result: ReloadResult) -> None:
        ob, nb = old.bus.model_dump(), new.bus.model_dump()
        changed = _diff(ob, nb, "bus.")
        live = [k for k in changed if k.split(".")[1] in BUS_LIVE_KEYS]
        result.restart.extend(k for k in changed if k not in live)
        if not live:
            return
        bus = self.bus
        retry, breaker = policies
        if ob["retry"] != nb["retry"]:
            bus.retry = retry
            old.bus.retry = new.bus.retry
        if ob["breaker"] != nb["breaker"]:
            bus.breaker_policy = breaker
            for sub in bus.registry:
                if sub.handler.breaker is None and sub.handler.name in bus.breakers:
                    bus.breakers[sub.handler.name].policy = breaker
            old.bus.breaker = new.bus.breaker
        if ob["handler_timeout"] != nb["handler_timeout"]:
            bus.delivery.handler_timeout = new.bus.handler_timeout
            old.bus.handler_timeout = new.bus.handler_timeout
        if ob["drain_timeout"] != nb["drain_timeout"]:
            bus.drain_timeout = new.bus.drain_timeout
            old.bus.drain_timeout = new.bus.drain_timeout
        if ob["stuck_after"] != nb["stuck_after"]:
            bus.stuck_after = new.bus.stuck_after
            old.bus.stuck_after = new.bus.stuck_after
        result.applied.extend(live)

    def _handlers(self, old: Settings, new: Settings, result: ReloadResult) -> None:
        # The handlers were registered in configuration order: the i-th subscription by registration order
        # is the i-th [[handlers]] table.
        subs = sorted(self.bus.registry, key=lambda s: s.order)
        if len(old.handlers) != len(new.handlers) or len(subs) != len(old.handlers):
            result.restart.append("handlers")
            return
        for i, (oc, nc) in enumerate(zip(old.handlers, new.handlers, strict=True)):
            label = _handler_label(oc, i)
            od, nd = oc.model_dump(), nc.model_dump()
            od.update(oc.options())
            nd.update(nc.options())
            changed = [k for k in sorted(set(od) | set(nd)) if od.get(k) != nd.get(k)]
            for key in changed:
                if key in HANDLER_LIVE_KEYS and not {"kind", "target", "name"} & set(changed):
                    handler = subs[i].handler
                    handler.timeout = nc.timeout
                    oc.timeout = nc.timeout
                    result.applied.append(f"handlers.{label}.{key}")
                else:
                    result.restart.append(f"handlers.{label}.{key}")

    async def _transports(self, old: Settings, new: Settings, result: ReloadResult) -> None:
        running = {transport_name(c, i): c for i, c in enumerate(old.transports)}
        wanted = {transport_name(c, i): c for i, c in enumerate(new.transports)}
        for name in sorted(set(running) | set(wanted)):
            oc, nc = running.get(name), wanted.get(name)
            transport = self.bus.transports.get(name)
            if oc is None or nc is None or transport is None or oc.kind != nc.kind:
                result.restart.append(f"transports.{name}")
                continue
            try:
                keys = await transport.reload(transport_options(nc, base_dir=new.config_dir))
            except Exception as exc:  # a transport's own reload failing must not stop the others
                log.error("transport %s: reload failed, still running with its previous options: %s", name, exc)
                result.restart.append(f"transports.{name}")
                continue
            result.restart.extend(f"transports.{name}.{k}" for k in keys)
