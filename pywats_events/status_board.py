"""The status board: the current state of every line station and lab module, kept from events.

``StatusBoard`` is a handler. It reads:

- ``asset.state_changed``: from the CFX adapters (IPC-CFX ``StationStateChanged``: payload ``asset_id``,
  ``new_state`` (the SEMI E10 code), ``new_state_name``, ``new_category``) and from lab module status
  updates (decoder ``lab-event``: the same keys plus ``asset_kind: "lab_module"``, orders, capabilities);
- ``asset.fault`` / ``asset.fault_cleared`` (IPC-CFX ``FaultOccurred`` / ``FaultCleared``): the active
  faults of each asset, keyed by the fault occurrence id.

An update older than what the board already holds for that asset (by event timestamp) is ignored, so a
redelivered or late message cannot move a module back to an old state. The board lives in memory; after a
restart it fills again as stations and modules report (CFX endpoints send ``StationStateChanged`` on every
change, lab modules on every status change).

``overview()`` answers ``GET /status`` and ``available(capability)`` answers
``GET /status/available?capability=X``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from .event import Event, EventType
from .handlers import BaseHandler

__all__ = ["AssetStatus", "StatusBoard", "fault_id"]

#: How many cleared fault ids are remembered, so a FaultOccurred arriving after its FaultCleared (a
#: redelivery) does not resurrect the fault. Older ids are forgotten first.
_CLEARED_MEMORY = 10_000

#: States (by name) in which an asset takes new work: a lab module that is Ready, or a CFX station in a
#: standby state waiting for product (SEMI E10 category SBY).
_READY_NAMES = frozenset({"ready"})


@dataclass
class AssetStatus:
    """What the board knows about one station or module.

    Attributes:
        asset_id: the station's CFX handle / the module identifier.
        name: display name ('' when unknown).
        kind: ``station`` (CFX) or ``lab_module``.
        state: state name (``Ready``, ``Busy``, ``SBY_NoProduct``...); ``unknown`` before the first update.
        state_code: the numeric state (E10 code, or the lab status 0..3), ``None`` when unknown.
        category: SEMI E10 category (``PRD``, ``SBY``, ``ENG``, ``SDT``, ``USD``, ``NST``), '' when unknown.
        details: status details text.
        since: timestamp of the event that set the state.
        orders: orders the asset is processing.
        capabilities: what it can do.
        allow_simultaneous_execution: whether it takes several orders at once.
        faults: active faults by occurrence id (each a dict with ``fault_id``, ``code``, ``severity``,
            ``description``, ``since``).
        last_event_id: id of the last event applied.
    """

    asset_id: str
    name: str = ""
    kind: str = "station"
    state: str = "unknown"
    state_code: int | None = None
    category: str = ""
    details: str | None = None
    since: datetime | None = None
    orders: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    allow_simultaneous_execution: bool = False
    faults: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_event_id: str | None = None

    @property
    def ready(self) -> bool:
        """True when the asset takes new work: state Ready (lab) or standby category (CFX), no active
        fault."""
        if self.faults:
            return False
        if self.kind == "lab_module":
            return self.state.lower() in _READY_NAMES
        return self.category == "SBY"

    def to_json_dict(self) -> dict[str, Any]:
        """JSON form for the HTTP API."""
        return {
            "asset_id": self.asset_id,
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "state_code": self.state_code,
            "category": self.category,
            "details": self.details,
            "since": self.since.isoformat() if self.since else None,
            "ready": self.ready,
            "orders": list(self.orders),
            "capabilities": list(self.capabilities),
            "allow_simultaneous_execution": self.allow_simultaneous_execution,
            "faults": list(self.faults.values()),
            "last_event_id": self.last_event_id,
        }


def _nested_fault(payload: dict[str, Any]) -> dict[str, Any]:
    fault = payload.get("fault")
    return fault if isinstance(fault, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class StatusBoard(BaseHandler):
    """Handler keeping the current state of every station and module (see the module docstring).

    Register it like any handler: ``bus.register(StatusBoard())``; the HTTP app finds it on the bus and
    serves ``/status`` from it.
    """

    name = "status-board"
    event_types: ClassVar[Sequence[str]] = (
        EventType.ASSET_STATE_CHANGED,
        EventType.ASSET_FAULT,
        EventType.ASSET_FAULT_CLEARED,
    )

    def __init__(self) -> None:
        super().__init__()
        self.assets: dict[str, AssetStatus] = {}
        self._cleared: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._updated: dict[str, datetime] = {}

    async def handle(self, event: Event) -> None:
        """Apply one event; never raises for unexpected payloads (they are ignored, not retried)."""
        self.apply(event)

    def apply(self, event: Event) -> None:
        """Apply ``event`` synchronously (``handle`` calls this; tests and replays may call it directly)."""
        if event.type == EventType.ASSET_STATE_CHANGED:
            self._state(event)
        elif event.type == EventType.ASSET_FAULT:
            self._fault(event)
        elif event.type == EventType.ASSET_FAULT_CLEARED:
            self._fault_cleared(event)

    def _asset(self, event: Event) -> AssetStatus:
        p = event.payload
        asset_id = str(p.get("asset_id") or event.source)
        asset = self.assets.get(asset_id)
        if asset is None:
            asset = self.assets[asset_id] = AssetStatus(asset_id=asset_id)
        name = p.get("asset_name") or p.get("name")
        if name:
            asset.name = str(name)
        return asset

    def _state(self, event: Event) -> None:
        p = event.payload
        asset = self._asset(event)
        last = self._updated.get(asset.asset_id)
        if last is not None and event.timestamp < last:
            return
        self._updated[asset.asset_id] = event.timestamp
        asset.kind = str(p.get("asset_kind") or asset.kind)
        code = p.get("new_state")
        asset.state_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        asset.state = str(p.get("new_state_name") or code or "unknown")
        asset.category = str(p.get("new_category") or "")
        asset.details = _text(p.get("status_details"))
        asset.since = event.timestamp
        asset.last_event_id = event.id
        if asset.kind == "lab_module":
            asset.orders = [str(o) for o in p.get("orders_being_processed") or ()]
            asset.capabilities = [str(c) for c in p.get("capabilities") or ()]
            asset.allow_simultaneous_execution = bool(p.get("allow_simultaneous_execution"))

    @staticmethod
    def _fault_id(event: Event) -> str:
        return fault_id(event)

    def _fault(self, event: Event) -> None:
        p = event.payload
        nested = _nested_fault(p)
        asset = self._asset(event)
        fault_id = self._fault_id(event)
        if (asset.asset_id, fault_id) in self._cleared:
            return
        asset.faults[fault_id] = {
            "fault_id": fault_id,
            "code": _text(p.get("fault_code") or p.get("code") or nested.get("fault_code")),
            "severity": event.severity.value,
            "description": _text(p.get("description") or nested.get("description")),
            "since": event.timestamp.isoformat(),
        }

    def _fault_cleared(self, event: Event) -> None:
        asset = self._asset(event)
        fault_id = self._fault_id(event)
        if asset.faults.pop(fault_id, None) is None:
            self._cleared[(asset.asset_id, fault_id)] = None
            while len(self._cleared) > _CLEARED_MEMORY:
                self._cleared.popitem(last=False)

    # -- queries ------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """The ``GET /status`` answer: ``assets`` (count), ``by_state`` (count per state name),
        ``by_category`` (count per E10 category), ``active_orders`` (``[{asset_id, order}]``),
        ``active_faults`` (``[{asset_id, fault_id, ...}]``), ``ready`` (count) and ``items`` (every asset)."""
        by_state: dict[str, int] = {}
        by_category: dict[str, int] = {}
        orders: list[dict[str, str]] = []
        faults: list[dict[str, Any]] = []
        for a in self.assets.values():
            by_state[a.state] = by_state.get(a.state, 0) + 1
            if a.category:
                by_category[a.category] = by_category.get(a.category, 0) + 1
            orders.extend({"asset_id": a.asset_id, "order": o} for o in a.orders)
            faults.extend({"asset_id": a.asset_id, **f} for f in a.faults.values())
        return {
            "assets": len(self.assets),
            "ready": sum(1 for a in self.assets.values() if a.ready),
            "by_state": by_state,
            "by_category": by_category,
            "active_orders": orders,
            "active_faults": faults,
            "items": [a.to_json_dict() for a in sorted(self.assets.values(), key=lambda a: a.asset_id)],
        }

    def available(self, capability: str | None = None) -> list[AssetStatus]:
        """Assets ready for work (``AssetStatus.ready``) that offer ``capability`` (exact, case-insensitive;
        ``None``: any), sorted by asset id."""
        want = capability.lower() if capability else None
        out = [
            a for a in self.assets.values() if a.ready and (want is None or want in (c.lower() for c in a.capabilities))
        ]
        return sorted(out, key=lambda a: a.asset_id)


def fault_id(event: Event) -> str:
    """The id pairing an ``asset.fault`` with its ``asset.fault_cleared``, as the status board pairs them
    (and the analytics' MTTR does): ``payload.fault_occurrence_id`` / ``fault_id`` /
    ``FaultOccurrenceId`` (IPC-CFX ``FaultOccurred.Fault.FaultOccurrenceId``; top level or in the nested
    ``fault``), else the event's ``correlation_id``, else its ``id``."""
    p = event.payload
    nested = _nested_fault(p)
    for key in ("fault_occurrence_id", "fault_id", "FaultOccurrenceId"):
        value = p.get(key) or nested.get(key)
        if value:
            return str(value)
    return event.correlation_id or event.id
