"""The CIRCMAN-style event manager: subscribe by category and exact severity, filter per category, publish
from any thread, query, acknowledge and clear stored events.

Follows the CIRCMAN 5.0 ``event_manager`` API (seed document ``003``, sections 3, 6 and 8). It is a facade
over the real bus and store, not a second event system: every subscription is a bus handler (with the
bus's retry, circuit breaker and dead-letter queue), every published event is a bus event (so it reaches
transports, the event store and the dead-letter queue like any other), and "persistence" is the bus's
store. The module-level ``event_manager`` runs its own bus on a ``LoopThread`` and starts on first use;
``EventManager(bus=..., loop=...)`` puts the facade on a bus you run yourself.

Thread safety (document section 6): subscriptions and filters may be changed from any thread; handlers
run on the bus (sync handlers in its worker threads), never under a lock of the manager. ``publish`` from
a plain thread returns once the event is settled (every subscriber done, or the failure durably in the
dead-letter queue); from inside an event loop, or from a subscriber, it schedules the event and returns
at once, so it never blocks a loop and never waits for itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..bus import EventBus
from ..errors import HandlerRegistrationError
from ..event import Event as BusEvent
from ..event import severity_rank
from ..handlers import EventStoreHandler
from ..loop_thread import LoopThread
from ..store import EventQuery, MemoryStore, Store
from .event_types import Event, EventCategory, EventSeverity, category_of, from_bus_event, to_bus_event

__all__ = ["EventFilter", "EventHandler", "EventManager", "NotificationConfig", "event_manager"]

log = logging.getLogger(__name__)

EventHandler = Callable[[Event], Any]
EventFilter = Callable[[Event], bool]

_in_subscriber = threading.local()


class NotificationConfig(BaseModel):
    """The document's ``EVENT_NOTIFICATION`` block (section 8).

    Attributes:
        persistence_enabled: keep published events in the store (``get_events`` reads them); off, nothing
            is stored and ``get_events`` returns ``[]``.
        max_events: the store holds at most this many events; older ones are deleted as newer arrive.
        default_alert_severity: events at or above it are tagged ``alert`` on the bus and logged at
            WARNING (``info``, ``warning``, ``error``, ``critical``).
        publish_state_changes / publish_threshold_breaches / publish_simulation_results: whether
            ``DigitalTwinPublisher`` publishes those kinds (a method that does not publish says so in its
            return value and at INFO).
        store_url: the store when the manager makes its own bus (``memory://`` by default; any URL
            ``open_store`` takes, such as ``sqlite:///events.db``).
    """

    model_config = ConfigDict(extra="forbid")
    persistence_enabled: bool = True
    max_events: int = Field(default=1000, ge=1)
    default_alert_severity: EventSeverity = EventSeverity.WARNING
    publish_state_changes: bool = True
    publish_threshold_breaches: bool = True
    publish_simulation_results: bool = True
    store_url: str = "memory://"


@dataclass(frozen=True)
class _Subscription:
    handler: EventHandler
    category: EventCategory | None
    severity: EventSeverity | None
    name: str


class EventManager:
    """Central hub for notification events, on top of an ``EventBus``.

    Args:
        config: see ``NotificationConfig`` (a dict is accepted).
        bus: a bus to use; ``None`` makes one (store from ``config.store_url``) on a private loop thread.
        loop: the loop ``bus`` runs on (required with ``bus`` when the manager is called from other
            threads; default: the running loop at first use).

    Raises:
        pydantic.ValidationError: an invalid ``config``.
    """

    def __init__(
        self,
        config: NotificationConfig | dict[str, Any] | None = None,
        *,
        bus: EventBus | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config if isinstance(config, NotificationConfig) else NotificationConfig(**(config or {}))
        self._lock = threading.Lock()
        self._subscriptions: list[_Subscription] = []
        self._filters: dict[EventCategory, tuple[EventFilter, ...]] = {}
        self._own_bus = bus is None
        self._bus = bus
        self._loop = loop
        self._thread: LoopThread | None = None
        self._store_handler: EventStoreHandler | None = None
        self._started = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._counter = 0

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def bus(self) -> EventBus:
        """The bus under the facade (made and started on first use when the manager owns it)."""
        self._ensure_started()
        assert self._bus is not None
        return self._bus

    def _ensure_started(self) -> None:
        if self._started:
            return
        with self._lock:
            if self._started:
                return
            if self._own_bus:
                self._thread = LoopThread("pywats-events-notification")
                self._loop = self._thread.start()
                self._thread.run(self._start_own_bus())
                self._thread.at_stop(self._stop_own_bus)
            else:
                assert self._bus is not None
                if self._loop is None:
                    self._loop = asyncio.get_running_loop()
                self._call(self._attach_store_handler)
            self._started = True

    async def _start_own_bus(self) -> None:
        from ..sql_store import open_store

        store: Store = MemoryStore() if self.config.store_url == "memory://" else open_store(self.config.store_url)
        self._bus = EventBus(store)
        self._attach_store_handler()
        await self._bus.start()

    def _attach_store_handler(self) -> None:
        assert self._bus is not None
        if self.config.persistence_enabled and self._store_handler is None:
            handler = EventStoreHandler()
            handler.name = "notification-store"
            self._store_handler = handler
            self._bus.register(handler)

    async def _stop_own_bus(self) -> None:
        if self._bus is not None:
            await self._bus.stop()

    def close(self) -> None:
        """Stop the manager's own bus (after settling what was published) and its loop thread, and forget
        its subscriptions and filters. A manager on a bus you passed in leaves that bus running. Using the
        manager again starts a new bus."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._started = False
        if thread is not None:
            thread.stop()
            self._bus = None
            self._store_handler = None
            self._subscriptions.clear()
            self._filters.clear()

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the bus's loop (registrations touch bus state owned by that loop) and return its
        result; inline when already on that loop."""
        loop = self._loop
        assert loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn()

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe(
        self, handler: EventHandler, category: EventCategory | None = None, severity: EventSeverity | None = None
    ) -> None:
        """Deliver events of ``category`` (all if ``None``) and exactly ``severity`` (all if ``None``) to
        ``handler(event)``, a sync or async function taking a notification ``Event``.

        A handler that raises is retried and then dead-lettered by the bus, like any bus handler.

        Raises:
            HandlerRegistrationError: ``handler`` is not callable, or is already subscribed with the same
                category and severity (it would get every event twice).
            TypeError: ``category`` / ``severity`` are not ``EventCategory`` / ``EventSeverity`` members.
        """
        if not callable(handler):
            raise HandlerRegistrationError(f"event_manager.subscribe: {handler!r} is not callable")
        if category is not None and not isinstance(category, EventCategory):
            raise TypeError(f"category must be an EventCategory, got {category!r}")
        if severity is not None and not isinstance(severity, EventSeverity):
            raise TypeError(f"severity must be an EventSeverity, got {severity!r}")
        self._ensure_started()
        with self._lock:
            if any(s.handler == handler and s.category == category and s.severity == severity
                   for s in self._subscriptions):
                raise HandlerRegistrationError(
                    f"event_manager.subscribe: {getattr(handler, '__qualname__', handler)!r} is already subscribed "
                    f"for category={category and category.value} severity={severity and severity.value}"
                )
            self._counter += 1
            label = getattr(handler, "__qualname__", type(handler).__name__)
            sub = _Subscription(handler, category, severity, f"notification:{label}#{self._counter}")
            self._subscriptions.append(sub)
        try:
            self._call(lambda: self._register(sub))
        except BaseException:
            with self._lock:
                self._subscriptions.remove(sub)
            raise

    def _register(self, sub: _Subscription) -> None:
        assert self._bus is not None
        wanted_severity = sub.severity.value if sub.severity is not None else None
        wanted_category = sub.category

        def predicate(event: BusEvent) -> bool:
            if wanted_severity is not None and event.severity.value != wanted_severity:
                return False
            category = category_of(event)
            if wanted_category is not None and category is not wanted_category:
                return False
            filters = self._filters.get(category)
            if not filters:
                return True
            note = from_bus_event(event)
            return all(f(note) for f in filters)

        user = sub.handler
        if asyncio.iscoroutinefunction(user):
            async def deliver_async(event: BusEvent) -> None:
                await user(from_bus_event(event))

            fn: Callable[[BusEvent], Any] = deliver_async
        else:
            def deliver(event: BusEvent) -> None:
                _in_subscriber.active = True
                try:
                    result = user(from_bus_event(event))
                finally:
                    _in_subscriber.active = False
                if isinstance(result, Awaitable):
                    raise TypeError(f"{sub.name}: handler returned an awaitable from a sync function")

            fn = deliver
        self._bus.register(fn, name=sub.name, predicate=predicate)

    def unsubscribe(
        self, handler: EventHandler, category: EventCategory | None = None, severity: EventSeverity | None = None
    ) -> bool:
        """Stop delivering to ``handler`` for that exact ``category`` / ``severity`` subscription.

        Returns:
            True when a subscription was removed; False (and a WARNING naming the handler) when there was
            none, so a mistyped unsubscribe is never silent.
        """
        with self._lock:
            found = [s for s in self._subscriptions
                     if s.handler == handler and s.category == category and s.severity == severity]
            for s in found:
                self._subscriptions.remove(s)
        if not found:
            log.warning("event_manager.unsubscribe: %r has no subscription for category=%s severity=%s",
                        getattr(handler, "__qualname__", handler), category and category.value,
                        severity and severity.value)
            return False
        bus = self.bus
        for s in found:
            self._call(functools.partial(bus.unregister, s.name))
        return True

    def add_filter(self, category: EventCategory, filter_func: EventFilter) -> None:
        """Deliver events of ``category`` only when ``filter_func(event)`` is true (every filter of the
        category must pass). Events are still published and stored; filters only gate subscribers.

        Raises:
            TypeError: ``category`` is not an ``EventCategory`` or ``filter_func`` is not callable.
        """
        if not isinstance(category, EventCategory):
            raise TypeError(f"category must be an EventCategory, got {category!r}")
        if not callable(filter_func):
            raise TypeError(f"filter_func must be callable, got {filter_func!r}")
        with self._lock:  # copy-on-write: delivery reads the tuple without the lock
            self._filters[category] = (*self._filters.get(category, ()), filter_func)

    def remove_filter(self, category: EventCategory, filter_func: EventFilter) -> bool:
        """Remove a filter added with ``add_filter``. Returns False (and logs a WARNING) when it was not
        there."""
        with self._lock:
            current = self._filters.get(category, ())
            if filter_func not in current:
                log.warning("event_manager.remove_filter: %r is not a filter of %s", filter_func, category.value)
                return False
            rest = tuple(f for f in current if f is not filter_func)
            if rest:
                self._filters[category] = rest
            else:
                del self._filters[category]
        return True

    # -- publishing -----------------------------------------------------------------------------
    def publish(self, event: Event) -> None:
        """Publish ``event`` to every matching subscriber, the store and the bus's other handlers.

        From a thread without a running loop it returns once the event is settled; from inside an event
        loop or from a subscriber it schedules the event and returns at once (see the module docstring).

        Raises:
            TypeError: ``event`` is not a notification ``Event``.
            ValueError: the event cannot become a bus event (timestamp not ISO 8601).
            BusClosedError: the bus was stopped.
        """
        if not isinstance(event, Event):
            raise TypeError(f"event_manager.publish takes a notification Event, got {type(event).__name__}")
        bus_event = self._bus_event(event)
        self._ensure_started()
        loop = self._loop
        assert loop is not None
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        future = asyncio.run_coroutine_threadsafe(self._publish(bus_event), loop)
        if running is None and not getattr(_in_subscriber, "active", False):
            future.result()
            return
        self._pending.add(future)
        future.add_done_callback(self._scheduled_done)

    async def publish_async(self, event: Event) -> None:
        """``publish`` for async code: awaits settlement without blocking the caller's loop."""
        bus_event = self._bus_event(event)
        await asyncio.to_thread(self._ensure_started)
        assert self._loop is not None
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._publish(bus_event), self._loop))

    def _bus_event(self, event: Event) -> BusEvent:
        alert = severity_rank(event.severity.value) >= severity_rank(self.config.default_alert_severity.value)
        if alert:
            log.warning("alert from %s: [%s] %s", event.source, event.severity.value, event.message)
        return to_bus_event(event, tags=("alert",) if alert else ())

    async def _publish(self, event: BusEvent) -> None:
        assert self._bus is not None
        await self._bus.publish(event)
        if self.config.persistence_enabled:
            store = self._bus.store
            if await store.count_events() > self.config.max_events:
                await store.purge_events(keep_at_most=self.config.max_events)

    def _scheduled_done(self, future: concurrent.futures.Future[Any]) -> None:
        self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            exc = future.exception()
            log.error("event_manager.publish (scheduled) failed: %s: %s", type(exc).__name__, exc)

    def flush(self, timeout: float | None = 30.0) -> int:
        """Wait up to ``timeout`` seconds for events published without waiting (from a loop or a
        subscriber) to settle; returns how many are still pending. Call it from a plain thread."""
        pending = list(self._pending)
        if pending:
            concurrent.futures.wait(pending, timeout=timeout)
        return len(self._pending)

    # -- persistence ----------------------------------------------------------------------------
    def _store_call(self, make: Callable[[Store], Awaitable[Any]]) -> Any:
        self._ensure_started()
        loop = self._loop
        assert loop is not None and self._bus is not None
        store = self._bus.store

        async def run() -> Any:
            return await make(store)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("event_manager: call get_events/acknowledge_event/clear_events from a thread, "
                               "or use the store directly inside the bus's loop")
        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def get_events(
        self, category: EventCategory | None = None, severity: EventSeverity | None = None, limit: int = 100
    ) -> list[Event]:
        """Stored events of ``category`` and exactly ``severity`` (each optional), the newest ``limit``
        of them, newest first; ``[]`` when persistence is off.

        Raises:
            ValueError: ``limit`` is not positive.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        if not self.config.persistence_enabled:
            return []
        query = EventQuery(
            category=category.value if category is not None and category is not EventCategory.PROCESS else None,
            min_severity=severity.value if severity is not None else None,
            limit=100_000,
        )
        rows = self._store_call(lambda store: store.query_events(query))
        out = []
        for row in reversed(rows):
            note = from_bus_event(row.event, acknowledged=row.acknowledged_at is not None)
            if severity is not None and note.severity is not severity:
                continue
            if category is not None and note.category is not category:
                continue
            out.append(note)
            if len(out) >= limit:
                break
        return out

    def acknowledge_event(self, event_id: str) -> bool:
        """Mark a stored event acknowledged. Returns True when it was found and not yet acknowledged."""
        n = self._store_call(lambda store: store.acknowledge_events([event_id], by="event_manager"))
        return bool(n)

    def clear_events(self, older_than_days: int | None = None) -> int:
        """Delete stored events older than ``older_than_days`` days, or all of them with ``None``.
        Returns how many were deleted.

        Raises:
            ValueError: a negative ``older_than_days``.
        """
        if older_than_days is not None and older_than_days < 0:
            raise ValueError(f"older_than_days must not be negative, got {older_than_days}")
        if older_than_days is None:
            return int(self._store_call(lambda store: store.purge_events(keep_at_most=0)))
        return int(self._store_call(lambda store: store.purge_events(older_than_days=older_than_days)))


#: The process-wide manager of the document (``from ...event_manager import event_manager``); its bus
#: starts on first use.
event_manager = EventManager()
