"""The event bus: composes the registry, the lanes, the delivery layer and the dead-letter queue.

Flow: a transport ``submit``s the events of one protocol message; each event is matched against the
registry and queued on one of ``concurrency`` lanes chosen by its ordering key (default: ``source``), so
events with the same key reach each handler in arrival order while different keys run concurrently
(``lanes.py``). A lane runs the event's deliveries one after another by priority through the delivery
layer (``delivery.py``: idempotency, breaker, timeout, retry, outcome). When every delivery of a message
has succeeded or is durably dead-lettered or parked (and the idempotency records are committed), the
future ``submit`` returned resolves and the transport settles (acks) the message. Replay of dead letters
and parked deliveries lives with the dead-letter queue (``dead_letter.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from . import tracing
from .breaker import BreakerPolicy, BreakerState, CircuitBreaker
from .dead_letter import DeadLetterQueue, entry_for_raw
from .delivery import DeliveryLayer
from .errors import BusClosedError, BusError, HandlerRegistrationError
from .event import Event, EventType, Severity
from .handlers import BaseHandler, EventStoreHandler, FunctionHandler, HandlerFunc
from .lanes import Lanes, Tracker
from .loop_thread import Done, LoopThread
from .loop_thread import running_loop as _running_loop
from .metrics import BusMetrics
from .registry import HandlerRegistry
from .retry import RetryPolicy
from .store import DeadLetterEntry, DeadLetterReason, MemoryStore, Store
from .transport import RawRecord, SettleResult, Transport, TransportState

__all__ = ["STOP_GRACE", "EventBus"]

if TYPE_CHECKING:
    from .policies import ErrorPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Name of the tasks that submit system events (``stop`` lets those emitted before it finish).
_SYSTEM_EVENT_TASK = "pywats-system-event"

#: Seconds ``stop`` gives, after the drain timeout, to transports that have not stopped yet, to
#: interrupted deliveries and to ``on_stop``/store close (each bounded by it): ``stop`` returns within
#: ``drain_timeout + 3 * STOP_GRACE`` seconds even when handlers hang (plus what handlers with a longer
#: ``stop_timeout`` are given for their ``on_stop``).
STOP_GRACE = 2.0

#: Youngest-generation threshold (net allocations between collections) that ``freeze_gc`` sets when the
#: interpreter's is lower (CPython's default is 700).
GC_GEN0_THRESHOLD = 10_000


def _default_ordering_key(event: Event) -> str:
    return event.source


class EventBus:
    """Async event bus. Use as ``async with EventBus(...) as bus:`` or ``await bus.start()`` /
    ``await bus.stop()``.

    Args:
        store: dead-letter queue, idempotency records and event store; default a ``MemoryStore``
            (nothing survives the process: pass ``SQLStore``/``open_store(...)`` for durability).
        retry: default retry policy for handlers that set none (``pywats_events.policies.RetryPolicy``, the
            pyWATS document's form, is accepted too).
        error_policy: the document's ``ErrorPolicy`` (default breaker settings, a dead-letter queue
            handle bound to this bus).
        breaker: default circuit-breaker policy for handlers that set none.
        concurrency: number of lanes (deliveries running at once), >= 1.
        queue_size: bound on queued events over all lanes (>= concurrency); ``submit`` waits when full.
        ordering_key: ``f(event) -> str``; events with equal keys are handled in arrival order.
        idempotency: consult and write idempotency records per (event id, handler).
        drain_timeout: default seconds ``stop`` waits for queued and running work (>= 0).
        emit_system_events: publish ``system.transport_*`` and ``system.dead_letter`` events.
        handler_error_events: publish a ``system.handler_error`` event per failed handler attempt (only
            failures pay for it, the success path is unchanged; never for failures on such events).
        freeze_gc: at ``start``, collect garbage once and move every object then alive (modules, schemas,
            configuration) to the interpreter's permanent generation (``gc.freeze``), so the cyclic
            collector no longer walks them on every full collection while events flow. Process-wide: meant
            for a process that runs the bus as its main job (``pywats-events run`` sets it). It also raises
            the youngest generation's collection threshold to ``GC_GEN0_THRESHOLD`` allocations.
        handler_timeout: default seconds one handler call may take before it counts as a failed attempt,
            for handlers that set no ``timeout`` (``None``: no limit).
        stuck_after: seconds one event's deliveries may run on a lane before readiness reports the lane
            as stuck (> 0).

    Raises:
        ValueError: ``concurrency`` < 1, ``queue_size`` < ``concurrency``, a timeout out of range.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        retry: RetryPolicy | None = None,
        error_policy: ErrorPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        concurrency: int = 16,
        queue_size: int = 4096,
        ordering_key: Callable[[Event], str] | None = None,
        idempotency: bool = True,
        drain_timeout: float = 10.0,
        emit_system_events: bool = True,
        handler_error_events: bool = True,
        freeze_gc: bool = False,
        handler_timeout: float | None = None,
        stuck_after: float = 120.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if queue_size < concurrency:
            raise ValueError(f"queue_size ({queue_size}) must be >= concurrency ({concurrency})")
        if drain_timeout < 0 or stuck_after <= 0:
            raise ValueError("drain_timeout must be >= 0 and stuck_after > 0 seconds")
        self.store: Store = store if store is not None else MemoryStore()
        self.breaker_policy = breaker or BreakerPolicy()
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.ordering_key = ordering_key or _default_ordering_key
        self._key_is_source = ordering_key is None
        self.idempotency = idempotency
        self.drain_timeout = drain_timeout
        self.emit_system_events = emit_system_events
        self.freeze_gc = freeze_gc
        self.stuck_after = stuck_after
        self.registry = HandlerRegistry()
        self.breakers: dict[str, CircuitBreaker] = {}
        self.transports: dict[str, Transport] = {}
        self._lanes = Lanes(concurrency, queue_size)
        self._background: set[asyncio.Task[Any]] = set()
        self._observers: tuple[Callable[[Sequence[Event]], None], ...] = ()
        self._running = False
        self._accepting = False
        self._started_at: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: LoopThread | None = None
        self.metrics = BusMetrics(self.queue_depth, queue_size)
        #: The delivery layer: one (event, handler) delivery through idempotency, breaker, timeout, retry.
        self.delivery = DeliveryLayer(
            self.store,
            self.registry,
            self.breakers,
            self.metrics,
            retry=retry or RetryPolicy(),
            idempotency=idempotency,
            handler_timeout=handler_timeout,
            on_dead_letter=self._emit_dead_letter_event,
            on_attempt_failed=self._emit_handler_error if handler_error_events else None,
        )
        #: Bound once: every submitted message's tracker holds it.
        self._keep_refused = self.delivery.keep_refused
        self.dead_letters = DeadLetterQueue(self.store, self, self.delivery, idempotency=idempotency)
        if error_policy is not None:
            error_policy.apply(self)

    @property
    def retry(self) -> RetryPolicy:
        """The default retry policy of handlers that set none (assignable: applies to later deliveries)."""
        return self.delivery.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.delivery.retry = policy

    @property
    def handler_timeout(self) -> float | None:
        """Default seconds one handler call may take (``None``: no limit)."""
        return self.delivery.handler_timeout

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True between a completed ``start`` and the beginning of ``stop``."""
        return self._running

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> Awaitable[None]:
        """Open the store, start handlers (``on_start``), the lanes, then every transport.

        Inside a running event loop, await it (``await bus.start()``). Called from plain synchronous code
        with no running loop (a script, a test function written as the pyWATS document writes it), it
        starts the bus on an event loop of its own on a background thread and returns once started;
        ``publish``, ``stop`` and ``MockTransport.inject_event`` then work from any thread.

        Raises:
            StoreError: the store cannot be opened.
            TransportError: a transport's settings are unusable (the others are stopped again).
        """
        if _running_loop() is not None:
            return self._start()
        if self._thread is None:
            self._thread = LoopThread(f"pywats-events-bus-{id(self):x}")
            self._thread.at_stop(self._stop)
        self._thread.run(self._start())
        return Done(None)

    async def _start(self) -> None:
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        await self.store.open()
        self._lanes = Lanes(self.concurrency, self.queue_size)
        self._lanes.start(self.delivery.run)
        for sub in self.registry:
            await sub.handler.on_start()
        if self.freeze_gc:
            gc.collect()
            gc.freeze()
            # Each event allocates a few short-lived objects (future, tracker, coroutines); at the
            # default 700 allocations the youngest generation is collected every ~100 events.
            gen0, gen1, gen2 = gc.get_threshold()
            if gen0 < GC_GEN0_THRESHOLD:
                gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
        self._running = True
        self._accepting = True
        self._started_at = datetime.now(UTC)
        started: list[Transport] = []
        try:
            for t in self.transports.values():
                await t.start()
                started.append(t)
        except BaseException:
            for t in reversed(started):
                with contextlib.suppress(Exception):
                    await t.stop()
            await self._lanes.stop(STOP_GRACE)
            self._running = self._accepting = False
            raise
        self.dead_letters.active = True
        for sub in self.registry:
            self.dead_letters.schedule_parked(sub.name)

    def stop(self, drain_timeout: float | None = None) -> Awaitable[None]:
        """Stop within ``drain_timeout`` seconds (default the bus's) plus a bounded grace.

        Await it inside the bus's event loop; from synchronous code (a bus started without a loop) it
        stops the bus and its background loop and returns when done.

        Transports stop taking new messages and wait for those in the bus to settle while the lanes keep
        running; at the drain deadline, running deliveries are interrupted and their messages stay
        unsettled (brokers redeliver them, files stay in the drop folder), which is logged with the count
        per transport. Then handlers' ``on_stop`` run, each bounded by its ``stop_timeout`` (default
        ``STOP_GRACE``), and the store closes.
        """
        if self._thread is not None and _running_loop() is not self._loop:
            thread, self._thread = self._thread, None
            thread.run(self._stop(drain_timeout))
            thread.stop()
            return Done(None)
        return self._stop(drain_timeout)

    async def _stop(self, drain_timeout: float | None = None) -> None:
        if not self._running:
            return
        timeout = self.drain_timeout if drain_timeout is None else drain_timeout
        deadline = time.monotonic() + timeout
        # System events emitted before the stop (the notice of the last dead letter) are queued before
        # intake closes, so the drain below still stores them.
        emitted = [t for t in self._background if t.get_name() == _SYSTEM_EVENT_TASK]
        self._running = False
        await self.dead_letters.stop_replays()
        stopping = asyncio.ensure_future(self._stop_transports())
        # Transports drain their in-flight messages through the lanes, so both run until the deadline.
        await asyncio.wait([stopping], timeout=max(0.0, deadline - time.monotonic()))
        if emitted:
            await asyncio.wait(emitted, timeout=max(0.01, deadline - time.monotonic()))
        self._accepting = False
        drained = await self._lanes.drain(deadline - time.monotonic())
        if not drained:
            left = self._lanes.unsettled()
            log.warning(
                "bus stop: drain timeout (%.1fs) reached with %d queued event(s) and %d message(s) unsettled "
                "(%s); they are not acknowledged: brokers redeliver them, files stay in the drop folder, "
                "HTTP callers get an error and send again",
                timeout,
                self.queue_depth(),
                sum(left.values()),
                ", ".join(f"{n} from {t or 'publish'}" for t, n in sorted(left.items())) or "none",
            )
        if not await self._lanes.stop(STOP_GRACE):
            log.warning("bus stop: a handler did not end within %.1fs of being cancelled; abandoned", STOP_GRACE)
        if not stopping.done():
            # The lanes are gone, so whatever the transports still wait for will never settle.
            _, still = await asyncio.wait([stopping], timeout=STOP_GRACE)
            if still:
                log.warning("bus stop: transports did not stop within %.1fs; abandoned", timeout + STOP_GRACE)
                stopping.cancel()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=STOP_GRACE)
        for sub in self.registry:
            grace = sub.handler.stop_timeout or STOP_GRACE
            try:
                await asyncio.wait_for(sub.handler.on_stop(), grace)
            except TimeoutError:
                log.warning("handler %s: on_stop did not finish within %.1fs; abandoned", sub.name, grace)
            except Exception:
                log.exception("handler %s failed in on_stop", sub.name)
        await self.store.close()

    async def _stop_transports(self) -> None:
        for t in reversed(list(self.transports.values())):
            try:
                await t.stop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transport %s failed to stop cleanly", t.name)
        # At once, before the state-change notices the stops just emitted get to run: nothing new is
        # taken after the last transport stopped.
        self._accepting = False

    # -- handlers ----------------------------------------------------------------------------
    def register(
        self,
        handler: BaseHandler | HandlerFunc,
        *,
        name: str | None = None,
        event_types: Sequence[str] | None = None,
        min_severity: str | None = None,
        categories: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        predicate: Callable[[Event], bool] | None = None,
        priority: int | None = None,
    ) -> BaseHandler:
        """Add a handler (a ``BaseHandler`` or an async/sync function). Keywords override the handler's
        class attributes. Returns the handler (functions come back wrapped in ``FunctionHandler``).

        Raises:
            HandlerRegistrationError: duplicate name, invalid pattern or severity, not callable.
        """
        if not isinstance(handler, BaseHandler):
            try:
                handler = FunctionHandler(handler, name)
            except TypeError as exc:
                raise HandlerRegistrationError(str(exc)) from None
        elif name:
            handler.name = name
        self.registry.add(
            handler,
            event_types=event_types,
            min_severity=min_severity,
            categories=categories,
            sources=sources,
            predicate=predicate,
            priority=priority,
        )
        handler.attach(self.store)
        attach_bus = getattr(handler, "attach_bus", None)
        if callable(attach_bus):  # handlers that publish follow-up events (the lab orchestrator) get the bus
            attach_bus(self)
        policy = handler.breaker or self.breaker_policy
        self.breakers[handler.name] = CircuitBreaker(handler.name, policy, on_change=self._breaker_changed)
        self.metrics.set_breaker(handler.name, BreakerState.CLOSED)
        if self._running:
            self._spawn(handler.on_start())
        return handler

    def subscribe(
        self,
        *event_types: Any,
        name: str | None = None,
        severity: str | None = None,
        min_severity: str | None = None,
        category: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        predicate: Callable[[Event], bool] | None = None,
        priority: int = 0,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        timeout: float | None = None,
        concurrency: int | None = None,
    ) -> Any:
        """Register a handler; three forms, none of them ever a silent no-op:

        - ``@bus.subscribe("asset.*", severity="warning")`` decorates a function (returns the decorator);
        - ``bus.subscribe(MyHandler())`` registers a ``BaseHandler`` instance, as the pyWATS document
          does (returns it; type patterns after it override its ``event_types``);
        - ``bus.subscribe(func)`` or bare ``@bus.subscribe`` registers a function for every type.

        Args:
            event_types: type patterns (none given: ``*``), optionally preceded by the handler.
            severity / min_severity: lowest severity delivered (same meaning; ``severity`` reads better).
            category / source: one value or several.
            predicate: extra filter ``f(event) -> bool``.
            priority: higher runs first.
            retry / breaker / timeout: per-handler policies (seconds for ``timeout``).
            concurrency: for a sync function, the most calls running at once on its own threads.

        Raises:
            HandlerRegistrationError: as ``register``; or an argument that is neither a type pattern, a
                ``BaseHandler`` nor a callable.
        """
        target: Any = None
        if event_types and not isinstance(event_types[0], str):
            target, event_types = event_types[0], event_types[1:]
        bad = [t for t in event_types if not isinstance(t, str)]
        if bad:
            raise HandlerRegistrationError(f"subscribe: event types must be strings, got {bad!r}")
        patterns: tuple[str, ...] = tuple(event_types)
        options: dict[str, Any] = {
            "min_severity": min_severity or severity,
            "categories": [category] if isinstance(category, str) else category,
            "sources": [source] if isinstance(source, str) else source,
            "predicate": predicate,
        }

        def decorate(func: HandlerFunc) -> HandlerFunc:
            h = FunctionHandler(func, name)
            h.retry, h.breaker, h.timeout, h.concurrency = retry, breaker, timeout, concurrency
            self.register(h, event_types=patterns or ("*",), priority=priority, **options)
            return func

        if target is None:
            return decorate
        if isinstance(target, BaseHandler):
            for attr, value in (("retry", retry), ("breaker", breaker), ("timeout", timeout),
                                ("concurrency", concurrency)):
                if value is not None:
                    setattr(target, attr, value)
            return self.register(target, name=name, event_types=patterns or None,
                                 priority=priority or None, **options)
        if isinstance(target, type) and issubclass(target, BaseHandler):
            raise HandlerRegistrationError(
                f"subscribe: got the class {target.__name__}, not an instance; use bus.subscribe({target.__name__}())"
            )
        if callable(target):
            return decorate(target)
        raise HandlerRegistrationError(
            f"subscribe: {target!r} is neither an event type pattern, a BaseHandler nor a function"
        )

    def unregister(self, name: str) -> None:
        """Remove the handler called ``name`` (its dead letters stay). Raises ``KeyError`` if unknown."""
        sub = self.registry.remove(name)
        self.breakers.pop(name, None)
        if self._running:
            self._spawn(sub.handler.on_stop())

    def add_observer(self, observer: Callable[[Sequence[Event]], None]) -> None:
        """Let ``observer(events)`` see every message's events once, as ``submit`` accepts them (in arrival
        order, before routing, redelivered copies included), without a delivery of its own: no
        idempotency record, retry, breaker or settlement wait. For cheap taps (append to a buffer and
        work on it off the hot path); it runs on the bus's loop and must not block.

        An observer owns its failures: what it raises is logged (ERROR, with the traceback) and the
        message goes on to its handlers unchanged. What it must not lose it has to keep itself (its own
        dead letters, a rebuild from the event store): the message is acknowledged without waiting for it.
        """
        self._observers = (*self._observers, observer)

    def remove_observer(self, observer: Callable[[Sequence[Event]], None]) -> None:
        """Stop calling ``observer`` (see ``add_observer``). Raises ``ValueError`` if it was not added."""
        observers = list(self._observers)
        observers.remove(observer)
        self._observers = tuple(observers)

    def _observe(self, events: Sequence[Event]) -> None:
        for observer in self._observers:
            try:
                observer(events)
            except Exception:
                log.exception("bus observer %r failed on %d event(s); the handlers get them", observer, len(events))

    def add_event_store(self, event_types: Sequence[str] = ("*",)) -> EventStoreHandler:
        """Register the built-in handler that keeps events in the store (``pywats-events events list``)."""
        h = EventStoreHandler(self.store, event_types)
        self.register(h)
        return h

    # -- transports --------------------------------------------------------------------------
    def register_transport(self, transport: Transport) -> Transport:
        """``add_transport`` under the name the pyWATS event architecture document uses."""
        return self.add_transport(transport)

    def add_transport(self, transport: Transport) -> Transport:
        """Attach a transport; the bus starts and stops it. Raises ``BusError`` on a duplicate name."""
        if transport.name in self.transports:
            raise BusError(f"a transport named {transport.name!r} is already attached")
        transport.bind(self)
        self.transports[transport.name] = transport
        self.metrics.set_transport(transport.name, transport.state)
        return transport

    async def send(self, event: Event, transport: str) -> None:
        """Publish ``event`` out through the named transport.

        Raises:
            KeyError: no such transport. TransportSendNotSupported / TransportError: as the transport.
        """
        await self.transports[transport].send(event)

    def transport_state_changed(
        self, transport: Transport, old: TransportState, new: TransportState, detail: str | None
    ) -> None:
        """Record a transport's state change and emit the matching ``system.transport_*`` event."""
        self.metrics.set_transport(transport.name, new)
        if new is TransportState.CONNECTED:
            etype, sev = EventType.SYSTEM_TRANSPORT_CONNECTED, Severity.INFO
        elif new is TransportState.ERROR:
            etype, sev = EventType.SYSTEM_TRANSPORT_ERROR, Severity.ERROR
        elif old is TransportState.CONNECTED:
            etype, sev = EventType.SYSTEM_TRANSPORT_DISCONNECTED, Severity.WARNING
        else:
            return
        self._emit_system(
            Event(
                type=etype,
                source=f"pywats.transport.{transport.name}",
                severity=sev,
                payload={
                    "transport": transport.name,
                    "kind": transport.kind,
                    "old_state": old.value,
                    "new_state": new.value,
                    "detail": detail,
                },
            )
        )

    # -- intake ------------------------------------------------------------------------------
    def queue_depth(self) -> int:
        """Events queued (not yet taken by a lane)."""
        return self._lanes.depth()

    @property
    def saturated(self) -> bool:
        """True when a lane is full, so a submit for its ordering keys would wait (HTTP answers 503)."""
        return self._lanes.saturated

    async def submit(
        self, events: Sequence[Event], *, transport: str = "", redelivered: bool | None = None
    ) -> asyncio.Future[SettleResult]:
        """Queue the events of one protocol message; see ``IngestSink.submit``.

        Raises:
            BusClosedError: the bus is not running.
        """
        if not self._accepting:
            raise BusClosedError("the bus is not running; start it before submitting events")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SettleResult] = loop.create_future()
        tracker = Tracker(len(events), future, transport, self._keep_refused)
        if not events:
            future.set_result(tracker.result)
            return future
        if self._observers:
            self._observe(events)
        done: dict[str, set[str]] | None = None
        if self.idempotency and redelivered is not False:
            done = await self.store.completed_handlers([e.id for e in events])
        metrics = self.metrics
        received = metrics.received
        match = self.registry.match
        lanes = self._lanes.lanes
        n = len(lanes)
        by_source = self._key_is_source
        try:
            for ev in events:
                key = (transport, ev.type)
                if key in received:
                    received[key] += 1
                else:
                    metrics.count_received(transport, ev.type)
                subs = match(ev)
                if not subs:
                    tracker.result.unrouted += 1
                    tracker.event_done()
                    continue
                if done:
                    finished = done.get(ev.id)
                    if finished:
                        subs = self.delivery.unfinished(subs, finished, tracker.result)
                        if not subs:
                            tracker.event_done()
                            continue
                lane = lanes[hash(ev.source if by_source else self.ordering_key(ev)) % n]
                job = (ev, subs, tracker)
                if not lane.offer(job):
                    await lane.put(job)
        except BaseException as exc:
            # Interrupted part-way (cancelled while waiting for room): some events may be queued, others
            # not. The message must not be settled as a whole, so its future fails; queued events still run.
            if not future.done():
                future.set_exception(BusError(f"submit interrupted before every event was queued: {exc!r}"))
            raise
        return future

    def publish(self, *events: Event) -> Awaitable[SettleResult]:
        """Route events and wait until every delivery is settled; returns what became of them.

        Await it in the bus's event loop. From any other thread, or from synchronous code with no running
        loop, it runs on the bus's loop and returns a ``Done`` holding the ``SettleResult`` once settled
        (``bus.publish(event).result()``; awaiting it works too).

        Raises:
            BusClosedError: the bus is not running.
        """
        return self.run_on_loop(self._publish(events))

    async def _publish(self, events: Sequence[Event]) -> SettleResult:
        if tracing.active:  # published inside a span (a handler's derived event): continue its trace
            events = tracing.with_current_context(events)
        future = await self.submit(events, transport="publish")
        return await future

    def run_on_loop(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run ``coro`` where the bus runs: returned as is inside the bus's loop (await it); from another
        loop, as an awaitable that waits without blocking that loop; from plain synchronous code, run to
        completion first and returned as a ``Done``.

        Raises:
            BusClosedError: called from outside the bus's loop before the bus was started.
        """
        running = _running_loop()
        loop = self._loop
        if loop is None or running is loop or loop.is_closed():
            if running is None:
                coro.close()
                raise BusClosedError("the bus is not running; call bus.start() first")
            return coro
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        if running is not None:
            return asyncio.wrap_future(future)
        return Done(future.result())

    async def dead_letter_raw(self, record: RawRecord) -> str:
        """Durably store undecodable input (see ``IngestSink.dead_letter_raw``); returns the entry id."""
        entry = entry_for_raw(record)
        await self.store.add_dead_letters((entry,))
        self.metrics.count_raw_dead_letter(record.transport)
        log.warning(
            "dead-lettered undecodable input from %s: %s",
            record.origin,
            record.reason,
            extra=tracing.raw_log_fields(record),
        )
        self._emit_dead_letter_event(entry)
        return entry.id

    # -- system events -----------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[Any], name: str | None = None) -> None:
        task = asyncio.ensure_future(coro)
        if name is not None:
            task.set_name(name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _emit_system(self, event: Event) -> None:
        if not self.emit_system_events or not self._accepting:
            return

        async def go() -> None:
            with contextlib.suppress(BusClosedError):
                await self.submit((event,), transport="system", redelivered=False)

        try:
            self._spawn(go(), _SYSTEM_EVENT_TASK)
        except RuntimeError:  # no running loop (state change during interpreter shutdown)
            pass

    def _emit_handler_error(self, event: Event, handler: str, attempt: int, exc: BaseException) -> None:
        if event.type in (EventType.SYSTEM_HANDLER_ERROR, EventType.SYSTEM_DEAD_LETTER):
            return  # never report failures on failure reports (a failing catch-all handler would loop)
        self._emit_system(
            Event(
                type=EventType.SYSTEM_HANDLER_ERROR,
                source="pywats.bus",
                severity=Severity.WARNING,
                causation_id=event.id,
                correlation_id=event.correlation_id,
                payload={
                    "handler": handler,
                    "attempt": attempt,
                    "event_id": event.id,
                    "event_type": event.type,
                    "error_type": type(exc).__name__,
                    "error_message": str(exc),
                },
            )
        )

    def _emit_dead_letter_event(self, entry: DeadLetterEntry) -> None:
        if entry.event is not None and entry.event.type == EventType.SYSTEM_DEAD_LETTER:
            return  # never dead-letter notices about dead-letter notices
        if entry.reason == DeadLetterReason.CIRCUIT_OPEN:
            return  # parked, not lost: the breaker's own state change is reported instead
        self._emit_system(
            Event(
                type=EventType.SYSTEM_DEAD_LETTER,
                source="pywats.bus",
                severity=Severity.ERROR,
                causation_id=entry.event.id if entry.event else None,
                # The dead-lettered message's trace context, so that a trace shows where its message died.
                headers=tracing.trace_headers(entry.event.headers if entry.event else entry.headers),
                payload={
                    "entry_id": entry.id,
                    "handler": entry.handler,
                    "reason": entry.reason,
                    "error_type": entry.error_type,
                    "error_message": entry.error_message,
                    "event_type": entry.event.type if entry.event else None,
                    "origin": entry.origin,
                },
            )
        )

    def _breaker_changed(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        self.metrics.set_breaker(breaker.name, new)
        log.warning("circuit breaker of handler %s: %s -> %s", breaker.name, old.value, new.value)
        if not self._running:
            return
        if new is BreakerState.OPEN and not breaker.forced:
            self._spawn(self._probe_after(breaker.name, breaker.policy.reset_timeout))
        elif new is BreakerState.CLOSED:
            self.dead_letters.schedule_parked(breaker.name)

    async def _probe_after(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        breaker = self.breakers.get(name)
        if breaker is not None and breaker.state is BreakerState.HALF_OPEN:
            self.dead_letters.schedule_parked(name)

    def force_breaker(self, handler: str, state: str) -> dict[str, object]:
        """Operator action: ``state`` ``open`` keeps the circuit open until closed again; ``closed`` closes
        it and replays parked deliveries. Returns the breaker's description.

        Raises:
            KeyError: no handler of that name. ValueError: another state.
        """
        breaker = self.breakers[handler]
        if state == BreakerState.OPEN:
            breaker.force_open()
        elif state == BreakerState.CLOSED:
            breaker.force_close()
        else:
            raise ValueError(f"state must be 'open' or 'closed', got {state!r}")
        return breaker.describe()

    # -- status ------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)``: ready when the bus runs, every transport is CONNECTED and no lane is stuck
        (its current event's deliveries have run longer than ``stuck_after`` seconds: a hung handler).
        ``details`` lists the transports, what is not ready, breaker states and stuck lanes."""
        not_ready = [] if self._running else ["bus: not running"]
        for t in self.transports.values():
            if t.state is not TransportState.CONNECTED:
                not_ready.append(f"transport {t.name}: {t.state.value}")
        stuck = self._lanes.stuck(self.stuck_after) if self._running else []
        for lane, seconds, event_id in stuck:
            not_ready.append(f"lane {lane}: stuck {seconds:.0f}s on event {event_id}")
        for sub in self.registry:
            problem = sub.handler.health()
            if problem:
                not_ready.append(f"handler {sub.name}: {problem}")
        return (not not_ready), {
            "running": self._running,
            "started_at": self._started_at.isoformat() if self._started_at else None,
            "transports": [t.describe() for t in self.transports.values()],
            "breakers": [b.describe() for b in self.breakers.values()],
            "queue_depth": self.queue_depth(),
            "queue_capacity": self.queue_size,
            "stuck_lanes": [{"lane": i, "seconds": round(s, 1), "event_id": e} for i, s, e in stuck],
            "not_ready": not_ready,
        }
