"""The workflow orchestrator of the Biosero module-status document, made a real component.

``ModuleDashboard`` keeps each module's last status update; ``WorkflowOrchestrator`` assigns orders to
modules and keeps the orders it cannot place yet::

    orchestrator = WorkflowOrchestrator()                       # or WorkflowOrchestrator(status_db=db)
    orchestrator.process_status_update(ready_event)             # a ModuleStatusUpdateEvent
    orchestrator.assign_order_to_module("order-1", ["dispense"])  # -> "liquid-handler-001" or None
    orchestrator.pending_orders                                 # [{"order_id": ..., "required_capabilities": [...]}]

Rules (each one tested):

- A module can take an order when its last status is Ready, or Busy with ``AllowSimultaneousExecution``,
  and its ``Capabilities`` include every required capability. A module without simultaneous execution
  takes one order at a time: one it is processing (``OrdersBeingProcessed``) or one assigned to it and not
  finished counts. Among the modules that can, the one with the fewest running orders wins, then the
  module identifier in sort order (deterministic).
- An order nobody can take now is queued (``pending_orders``, arrival order). The queue is re-checked
  whenever a module turns Ready (``process_status_update``), and by ``check_pending_orders``.
- An assigned order is finished when the module, after having listed it in ``OrdersBeingProcessed``,
  reports without it, or when ``complete_order`` is called.
- A module going to Error or Offline **re-queues** its unfinished orders at the head of the queue (they
  keep their arrival order), so they go to the next suitable module; the choice is not to drop them,
  because a lab order usually stands for physical plates that still need processing. The
  ``lab.order.requeued`` event says so.
- With ``status_db``, orders (pending and assigned) are written to the status DB table ``lab_orders``
  before the call returns, and a new orchestrator on the same DB starts with them.
- Thread-safe: one lock guards the state, so two updates at once never assign one order twice nor two
  orders to a module that takes one.

Each decision is also an ``Event`` in ``events`` (``drain_events()`` takes them): ``lab.order.assigned``,
``lab.order.pending``, ``lab.order.requeued``, ``lab.order.completed`` and ``lab.module.status_changed``
(payload ``previous_status``/``current_status``; severity ``error`` for Error, ``warning`` for Offline).
The ``lab-orchestrator`` handler publishes them on the bus.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pywats_events.event import Event, Severity

from .events import ModuleStatus, ModuleStatusUpdateEvent, monitor_status_changes

if TYPE_CHECKING:
    from .status_db import StatusDBImplementation

__all__ = ["ModuleDashboard", "Order", "WorkflowOrchestrator"]

_SOURCE = "lab-orchestrator"


class ModuleDashboard:
    """The last status of every module (the document's ``ModuleDashboard``).

    Attributes:
        module_states: by module identifier: ``name``, ``status`` (``ModuleStatus``), ``details``,
            ``active_orders``, ``capabilities``, ``allow_simultaneous``, ``last_update`` (the update ``Id``).
        status_history: the last ``history_limit`` updates as ``to_dict()``.
    """

    def __init__(self, history_limit: int = 1000) -> None:
        self.module_states: dict[str, dict[str, Any]] = {}
        self.status_history: list[dict[str, Any]] = []
        self.history_limit = history_limit

    def update_module_status(self, status_event: ModuleStatusUpdateEvent) -> ModuleStatus | None:
        """Store the update; returns the module's previous status (``None`` for a module seen first)."""
        module_id = status_event.module_identifier
        previous = self.module_states.get(module_id)
        self.module_states[module_id] = {
            "name": status_event.module_name,
            "status": status_event.status,
            "details": status_event.status_details,
            "active_orders": list(status_event.orders_being_processed or []),
            "capabilities": list(status_event.capabilities or []),
            "allow_simultaneous": bool(status_event.allow_simultaneous_execution),
            "last_update": status_event.id,
        }
        self.status_history.append(status_event.to_dict())
        if len(self.status_history) > self.history_limit:
            del self.status_history[: len(self.status_history) - self.history_limit]
        return None if previous is None else ModuleStatus(previous["status"])

    def get_system_overview(self) -> dict[str, int]:
        """Counts: ``total_modules``, ``ready``, ``busy``, ``error``, ``offline``, ``active_orders`` (distinct)."""
        overview = {"total_modules": len(self.module_states), "ready": 0, "busy": 0, "error": 0, "offline": 0}
        active: set[str] = set()
        for state in self.module_states.values():
            overview[ModuleStatus(state["status"]).name.lower()] += 1
            active.update(state["active_orders"])
        overview["active_orders"] = len(active)
        return overview

    def get_available_modules(self, required_capability: str | None = None) -> list[dict[str, Any]]:
        """Ready modules (offering ``required_capability`` when given): ``module_id``, ``name``,
        ``capabilities``."""
        return [
            {"module_id": module_id, "name": s["name"], "capabilities": s["capabilities"]}
            for module_id, s in self.module_states.items()
            if s["status"] is ModuleStatus.Ready
            and (not required_capability or required_capability in s["capabilities"])
        ]


@dataclass
class Order:
    """An order the orchestrator knows: pending (``module`` None) or assigned.

    Attributes:
        order_id / required_capabilities / module.
        seen_running: the module has listed it in ``OrdersBeingProcessed`` since the assignment.
    """

    order_id: str
    required_capabilities: list[str]
    module: str | None = None
    seen_running: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class WorkflowOrchestrator:
    """Assign orders to lab modules by status and capability (see the module docstring for the rules).

    Args:
        status_db: where orders are kept durably (``None``: in memory only).
        source: the ``source`` of the events it emits.
    """

    def __init__(self, status_db: StatusDBImplementation | None = None, *, source: str = _SOURCE) -> None:
        self.module_manager = ModuleDashboard()
        self._db = status_db
        self.source = source
        self._lock = threading.RLock()
        self._pending: list[Order] = []
        self._assigned: dict[str, Order] = {}
        self.events: list[Event] = []
        if status_db is not None:
            for order_id, caps, state, module, seen in status_db._run(status_db.aio.load_orders()):
                order = Order(order_id, list(caps), module if state == "assigned" else None, seen)
                if order.module is None:
                    self._pending.append(order)
                else:
                    self._assigned[order_id] = order

    # -- the document's surface ---------------------------------------------------------------------------
    @property
    def pending_orders(self) -> list[dict[str, Any]]:
        """Queued orders in order: ``{"order_id": ..., "required_capabilities": [...]}`` (a copy)."""
        with self._lock:
            return [
                {"order_id": o.order_id, "required_capabilities": list(o.required_capabilities)}
                for o in self._pending
            ]

    @property
    def assignments(self) -> dict[str, str]:
        """Unfinished assigned orders: order id -> module identifier (a copy)."""
        with self._lock:
            return {o.order_id: o.module for o in self._assigned.values() if o.module is not None}

    def assign_order_to_module(self, order_id: str, required_capabilities: Sequence[str]) -> str | None:
        """Assign the order to a suitable module now, or queue it.

        Args:
            order_id: the order's id (non-empty). An id already assigned returns its module; one already
                pending stays where it is in the queue.
            required_capabilities: capabilities the module must all have (empty: any module).

        Returns:
            The chosen module identifier, or ``None`` when the order was queued.

        Raises:
            ValueError: empty ``order_id``.
        """
        if not order_id:
            raise ValueError("assign_order_to_module: order_id must not be empty")
        with self._lock:
            if order_id in self._assigned:
                return self._assigned[order_id].module
            queued = next((o for o in self._pending if o.order_id == order_id), None)
            order = queued or Order(order_id, list(required_capabilities))
            module = self._choose(order.required_capabilities)
            if module is None:
                if queued is None:
                    self._pending.append(order)
                    self._persist(order, "pending")
                    self._emit("lab.order.pending", order, None)
                return None
            if queued is not None:
                self._pending.remove(queued)
            self._give(order, module)
            return module

    def process_status_update(self, status_event: ModuleStatusUpdateEvent) -> ModuleStatus | None:
        """Take a module's status update: store it, finish orders it no longer lists, re-queue its orders
        when it goes to Error or Offline, and re-check the queue when it is Ready.

        Returns:
            The module's previous status (``None`` for a module seen first).
        """
        with self._lock:
            module_id = status_event.module_identifier
            previous = self.module_manager.update_module_status(status_event)
            change = monitor_status_changes(previous, status_event)
            if change is not None and previous is not None:
                severity = {ModuleStatus.Error: Severity.ERROR, ModuleStatus.Offline: Severity.WARNING}.get(
                    status_event.status, Severity.INFO
                )
                self.events.append(
                    Event(
                        type="lab.module.status_changed", source=self.source, severity=severity,
                        subjects=(module_id,), tags=tuple(change.tags), payload=dict(change.data_object()),
                    )
                )
            listed = set(status_event.orders_being_processed or ())
            mine = [o for o in self._assigned.values() if o.module == module_id]
            if status_event.status in (ModuleStatus.Error, ModuleStatus.Offline):
                self._requeue(mine, f"module {module_id} went {status_event.status.name}")
            else:
                for order in mine:
                    if order.order_id in listed:
                        if not order.seen_running:
                            order.seen_running = True
                            self._persist(order, "assigned")
                    elif order.seen_running:
                        self._finish(order, f"{module_id} no longer lists it")
            if status_event.status is ModuleStatus.Ready:
                self.check_pending_orders()
            return previous

    def check_pending_orders(self) -> list[tuple[str, str]]:
        """Assign every queued order a module can take now, in queue order.

        Returns:
            ``(order_id, module)`` of each assignment made.
        """
        made: list[tuple[str, str]] = []
        with self._lock:
            remaining: list[Order] = []
            for order in self._pending:
                module = self._choose(order.required_capabilities)
                if module is None:
                    remaining.append(order)
                    continue
                self._give(order, module)
                made.append((order.order_id, module))
            self._pending = remaining
        return made

    def complete_order(self, order_id: str) -> bool:
        """Mark an order finished (a ``lab.order.completed`` from the scheduler); frees its module and
        re-checks the queue. Returns False for an order it does not know as assigned; a pending one is
        removed from the queue (and True is returned)."""
        with self._lock:
            order = self._assigned.get(order_id)
            if order is None:
                queued = next((o for o in self._pending if o.order_id == order_id), None)
                if queued is None:
                    return False
                self._pending.remove(queued)
                self._forget(queued)
                return True
            self._finish(order, "completed")
            self.check_pending_orders()
            return True

    def drain_events(self) -> list[Event]:
        """The decisions made since the last call, as events, oldest first (and forget them)."""
        with self._lock:
            out, self.events = self.events, []
            return out

    # -- internals ---------------------------------------------------------------------------------------
    def _running(self, module_id: str, state: dict[str, Any]) -> set[str]:
        running = set(state["active_orders"])
        running.update(o.order_id for o in self._assigned.values() if o.module == module_id)
        return running

    def _choose(self, required: Sequence[str]) -> str | None:
        need = set(required)
        best: tuple[int, str] | None = None
        for module_id, state in self.module_manager.module_states.items():
            status = state["status"]
            simultaneous = state["allow_simultaneous"]
            if status is not ModuleStatus.Ready and not (status is ModuleStatus.Busy and simultaneous):
                continue
            if not need.issubset(state["capabilities"]):
                continue
            load = len(self._running(module_id, state))
            if load and not simultaneous:
                continue
            if best is None or (load, module_id) < best:
                best = (load, module_id)
        return None if best is None else best[1]

    def _give(self, order: Order, module: str) -> None:
        order.module, order.seen_running = module, False
        self._assigned[order.order_id] = order
        self._persist(order, "assigned")
        self._emit("lab.order.assigned", order, module)

    def _requeue(self, orders: list[Order], why: str) -> None:
        back = []
        for order in orders:
            del self._assigned[order.order_id]
            previous = order.module
            order.module, order.seen_running = None, False
            self._persist(order, "pending")
            self._emit("lab.order.requeued", order, previous, reason=why)
            back.append(order)
        self._pending[:0] = back

    def _finish(self, order: Order, why: str) -> None:
        self._assigned.pop(order.order_id, None)
        self._forget(order)
        self._emit("lab.order.completed", order, order.module, reason=why)

    def _persist(self, order: Order, state: str) -> None:
        if self._db is not None:
            self._db._run(
                self._db.aio.save_order(
                    order.order_id, order.required_capabilities, state, order.module, order.seen_running
                )
            )

    def _forget(self, order: Order) -> None:
        if self._db is not None:
            self._db._run(self._db.aio.delete_order(order.order_id))

    def _emit(self, event_type: str, order: Order, module: str | None, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "order_id": order.order_id,
            "module": module,
            "required_capabilities": list(order.required_capabilities),
            "pending": len(self._pending),
            **extra,
        }
        subjects = (order.order_id, module) if module else (order.order_id,)
        self.events.append(
            Event(type=event_type, source=self.source, timestamp=datetime.now(UTC), payload=payload, subjects=subjects)
        )
