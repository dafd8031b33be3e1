"""Test helpers for lab integrations: module status updates, lab events and generated step histories.

Use them to test your own handlers without instruments::

    bus.add_transport(mock := MockTransport("lab"))
    await mock.inject_raw(event_service_body(module_status("lh-1", ModuleStatus.Ready, ["dispense"])),
                          decoder="lab-event")
    await bus.publish(container_moved("P1", "Hamilton_STAR", 0, "Incubator", 5, seconds=12.0))

``generate_history`` fills a status DB with finished steps whose durations follow a distribution you give
(a seeded ``random.Random``), so estimate tests can compare against the known quantile.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pywats_events.event import Event

from .events import EventMessage, ModuleStatus, ModuleStatusUpdateEvent
from .status_db import StatusDBImplementation

__all__ = [
    "container_moved",
    "event_service_body",
    "generate_history",
    "module_status",
    "step_finished",
    "step_started",
]

_ids = iter(range(1, 1 << 62))


def module_status(
    module_id: str,
    status: ModuleStatus,
    capabilities: Sequence[str] = (),
    *,
    orders: Sequence[str] = (),
    simultaneous: bool = False,
    details: str | None = None,
    update_id: int | None = None,
) -> ModuleStatusUpdateEvent:
    """A valid ``ModuleStatusUpdateEvent`` (Busy without orders gets ``["order-0"]``; Error without details
    gets ``"error"``, as the model requires both)."""
    if status is ModuleStatus.Busy and not orders:
        orders = ["order-0"]
    if status is ModuleStatus.Error and not details:
        details = "error"
    return ModuleStatusUpdateEvent.model_validate(
        {
            "Id": update_id or next(_ids), "ModuleIdentifier": module_id,
            "ModuleName": module_id.replace("-", " ").title(), "Status": status, "StatusDetails": details,
            "OrdersBeingProcessed": list(orders) or None, "AllowSimultaneousExecution": simultaneous,
            "Capabilities": list(capabilities) or None,
        }
    )


def event_service_body(*items: ModuleStatusUpdateEvent | EventMessage) -> bytes:
    """The JSON body ``POST /api/v2.0/EventService`` takes (the ``lab-event`` decoder's input): one item as an
    object, several as a list; module updates are wrapped in a ``ModuleStatusUpdate`` message."""
    messages = [
        EventMessage(topic="ModuleStatusUpdate", subjects=[i.module_identifier], data=i.to_dict()).to_wire_dict()
        if isinstance(i, ModuleStatusUpdateEvent)
        else i.to_wire_dict()
        for i in items
    ]
    return json.dumps(messages[0] if len(messages) == 1 else messages).encode()


def step_started(step_id: str, name: str, device: str, data: dict[str, Any], *, at: datetime, **extra: Any) -> Event:
    """A ``lab.step.started`` event (see ``pywats_lab.handlers`` for the contract)."""
    payload = {"step_id": step_id, "name": name, "device": device, "data": data, "start": at.isoformat(), **extra}
    return Event(type="lab.step.started", source=device, timestamp=at, payload=payload)


def step_finished(step_id: str, *, at: datetime, status: str = "completed", **extra: Any) -> Event:
    """A ``lab.step.finished`` event."""
    payload = {"step_id": step_id, "finish": at.isoformat(), "status": status, **extra}
    return Event(type="lab.step.finished", source="lab", timestamp=at, payload=payload)


def container_moved(
    barcode: str, source_device: str, source_pos: int, target_device: str, target_pos: int, *,
    seconds: float | None = None, at: datetime | None = None, **extra: Any,
) -> Event:
    """A ``lab.container.moved`` event finishing at ``at`` (default now) that took ``seconds``."""
    finish = at or datetime.now(UTC)
    payload: dict[str, Any] = {
        "barcode": barcode, "source_device": source_device, "source_pos": source_pos,
        "target_device": target_device, "target_pos": target_pos, "finish": finish.isoformat(), **extra,
    }
    if seconds is not None:
        payload["start"] = (finish - timedelta(seconds=seconds)).isoformat()
    return Event(type="lab.container.moved", source="lab", timestamp=finish, payload=payload)


def generate_history(
    db: StatusDBImplementation,
    *,
    count: int,
    device: str,
    fct: str,
    duration: Callable[[random.Random], float],
    data: dict[str, Any] | None = None,
    kind: str = "process",
    origin_device: str | None = None,
    target_device: str | None = None,
    seed: int = 0,
    batch: int = 20_000,
    start: datetime | None = None,
) -> list[float]:
    """Insert ``count`` finished steps whose durations (seconds) are drawn from ``duration(rng)``.

    Returns:
        The durations inserted, in insertion order (newest last), so a test can compute the expected answer.

    Raises:
        ValueError: ``duration`` returned a negative value.
    """
    rng = random.Random(seed)
    t = (start or datetime(2024, 1, 1, tzinfo=UTC)).timestamp()
    params = dict(data or {"fct": fct})
    params.setdefault("fct", fct)
    out: list[float] = []
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        d = float(duration(rng))
        if d < 0:
            raise ValueError(f"generate_history: duration() returned {d} < 0")
        rows.append(
            {"name": fct, "device": device, "fct": fct, "data": params, "start": t, "finish": t + d, "kind": kind,
             "origin_device": origin_device, "target_device": target_device}
        )
        out.append(d)
        t += d + 1.0
        if len(rows) >= batch:
            db.add_steps_bulk(rows)
            rows = []
    if rows:
        db.add_steps_bulk(rows)
    return out
