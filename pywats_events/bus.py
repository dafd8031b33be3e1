"""The event bus: routes events from transports to handlers, one delivery per (event, handler).

Flow: a transport ``submit``s the events of one protocol message; each event is matched against the
registry and queued on one of ``concurrency`` lanes chosen by its ordering key (default: ``source``), so
events with the same key reach each handler in arrival order while different keys run concurrently. A
lane runs the event's deliveries one after another by priority. Each delivery goes through the handler's
circuit breaker and retry policy; a delivery that fails for good, or is refused by an OPEN breaker, is
written to the dead-letter queue. When every delivery of a message has succeeded or is durably
dead-lettered (and the idempotency records are committed), the future ``submit`` returned resolves and
the transport settles (acks) the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .breaker import BreakerPolicy, BreakerState, CircuitBreaker
from .codec import DecodeContext, get_decoder
from .dead_letter import DeadLetterQueue, entry_for_failure, entry_for_raw
from .errors import BusClosedError, BusError, CircuitOpenError, DecodeError, HandlerRegistrationError
from .event import Event, EventType, Severity
from .handlers import BaseHandler, EventStoreHandler, FunctionHandler, HandlerFunc
from .metrics import BusMetrics
from .registry import HandlerRegistry, Subscription
from .retry import RetryPolicy
from .store import COMPLETED, DeadLetterEntry, DeadLetterReason, MemoryStore, Store, StoreWrite
from .transports.base import RawRecord, SettleResult, Transport, TransportState

__all__ = ["EventBus"]

log = logging.getLogger(__name__)

#: Jobs a lane runs back to back before it lets the event loop run other callbacks.
YIELD_EVERY = 32


class _Tracker:
    """Settlement of one submitted batch: resolves its future when every event's deliveries are settled
    and every store write they made is durable."""

    __slots__ = ("future", "pending", "remaining", "result")

    def __init__(self, n: int, future: asyncio.Future[SettleResult]) -> None:
        self.future = future
        self.remaining = n
        self.result = SettleResult(events=n)
        self.pending: list[Awaitable[None]] = []

    def event_done(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self._finish()

    def _finish(self) -> None:
        if not self.pending:
            if not self.future.done():
                self.future.set_result(self.result)
            return
        waiting = [p for p in self.pending if not (isinstance(p, asyncio.Future) and p.done())]
        for p in self.pending:
            if isinstance(p, asyncio.Future) and p.done() and p.exception() is not None:
                self._fail(p.exception())
                return
        if not waiting:
            if not self.future.done():
                self.future.set_result(self.result)
            return
        left = [len(waiting)]

        def one_done(f: asyncio.Future[None]) -> None:
            if f.cancelled() or f.exception() is not None:
                self._fail(f.exception() if not f.cancelled() else BusError("store write cancelled"))
                return
            left[0] -= 1
            if left[0] == 0 and not self.future.done():
                self.future.set_result(self.result)

        for p in waiting:
            asyncio.ensure_future(p).add_done_callback(one_done)

    def _fail(self, exc: BaseException | None) -> None:
        if not self.future.done():
            self.future.set_exception(exc or BusError("store write failed"))


class _Lane:
    """A bounded FIFO of jobs served by one worker task; lighter than ``asyncio.Queue`` on the hot path.

    The worker drains the deque without suspending while jobs are waiting; producers wait (backpressure)
    only when ``capacity`` jobs are queued.
    """

    __slots__ = ("busy", "capacity", "drained", "jobs", "putters", "waiter")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.jobs: deque[tuple[Event, Sequence[Subscription], _Tracker]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.putters: deque[asyncio.Future[None]] = deque()
        self.busy = False
        #: Futures resolved the next time the lane runs dry (``EventBus.stop`` waits on them).
        self.drained: list[asyncio.Future[None]] = []

    async def put(self, job: tuple[Event, Sequence[Subscription], _Tracker]) -> None:
        while len(self.jobs) >= self.capacity:
            fut = asyncio.get_running_loop().create_future()
            self.putters.append(fut)
            try:
                await fut
            finally:
                if not fut.done():
                    fut.cancel()
        self.jobs.append(job)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def release_putter(self) -> None:
        while self.putters:
            fut = self.putters.popleft()
            if not fut.done():
                fut.set_result(None)
                return


class _Failure:
    __slots__ = ("attempts", "exc", "first_failure_at", "reason")

    def __init__(self, reason: str, exc: BaseException | None, attempts: int, first: datetime) -> None:
        self.reason = reason
        self.exc = exc
        self.attempts = attempts
        self.first_failure_at = first


def _default_ordering_key(event: Event) -> str:
    return event.source


class EventBus:
    """Async event bus. Use as ``async with EventBus(...) as bus:`` or ``await bus.start()`` /
    ``await bus.stop()``.

    Args:
        store: dead-letter queue, idempotency records and event store; default a ``MemoryStore``
            (nothing survives the process: pass ``SQLStore``/``open_store(...)`` for durability).
        retry: default retry policy for handlers that set none.
        breaker: default circuit-breaker policy for handlers that set none.
        concurrency: number of lanes (deliveries running at once), >= 1.
        queue_size: bound on queued events over all lanes (>= concurrency); ``submit`` waits when full.
        ordering_key: ``f(event) -> str``; events with equal keys are handled in arrival order.
        idempotency: consult and write idempotency records per (event id, handler).
        drain_timeout: default seconds ``stop`` waits for queued work.
        emit_system_events: publish ``system.transport_*`` and ``system.dead_letter`` events.
        freeze_gc: at ``start``, collect garbage once and move every object then alive (modules, schemas,
            configuration) to the interpreter's permanent generation (``gc.freeze``), so the cyclic
            collector no longer walks them on every full collection while events flow. Process-wide: meant
            for a process that runs the bus as its main job (``pywats-events run`` sets it).

    Raises:
        ValueError: ``concurrency`` < 1 or ``queue_size`` < ``concurrency``.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        concurrency: int = 16,
        queue_size: int = 4096,
        ordering_key: Callable[[Event], str] | None = None,
        idempotency: bool = True,
        drain_timeout: float = 10.0,
        emit_system_events: bool = True,
        freeze_gc: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if queue_size < concurrency:
            raise ValueError(f"queue_size ({queue_size}) must be >= concurrency ({concurrency})")
        self.store: Store = store if store is not None else MemoryStore()
        self.retry = retry or RetryPolicy()
        self.breaker_policy = breaker or BreakerPolicy()
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.ordering_key = ordering_key or _default_ordering_key
        self._key_is_source = ordering_key is None
        self.idempotency = idempotency
        self.drain_timeout = drain_timeout
        self.emit_system_events = emit_system_events
        self.freeze_gc = freeze_gc
        self.registry = HandlerRegistry()
        self.breakers: dict[str, CircuitBreaker] = {}
        self.transports: dict[str, Transport] = {}
        self.dead_letters = DeadLetterQueue(self.store, self._replay_entry)
        self._lanes: list[_Lane] = []
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._replaying: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._accepting = False
        self._started_at: datetime | None = None
        self.metrics = BusMetrics(self.queue_depth, queue_size)

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

    async def start(self) -> None:
        """Open the store, start handlers (``on_start``), the lanes, then every transport.

        Raises:
            StoreError: the store cannot be opened.
            TransportError: a transport's settings are unusable (the others are stopped again).
        """
        if self._running:
            return
        await self.store.open()
        per_lane = max(1, self.queue_size // self.concurrency)
        self._lanes = [_Lane(per_lane) for _ in range(self.concurrency)]
        self._workers = [
            asyncio.create_task(self._worker(q), name=f"pywats-lane-{i}") for i, q in enumerate(self._lanes)
        ]
        for sub in self.registry:
            await sub.handler.on_start()
        if self.freeze_gc:
            gc.collect()
            gc.freeze()
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
            await self._stop_workers(0)
            self._running = self._accepting = False
            raise
        for sub in self.registry:
            self._schedule_parked_replay(sub.name)

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Stop transports, let queued work finish for up to ``drain_timeout`` seconds (default the bus's),
        stop handlers (``on_stop``) and close the store. Unsettled messages stay unacknowledged, so their
        brokers redeliver them.
        """
        if not self._running:
            return
        timeout = self.drain_timeout if drain_timeout is None else drain_timeout
        self._running = False
        for t in reversed(list(self.transports.values())):
            try:
                await t.stop()
            except Exception:
                log.exception("transport %s failed to stop cleanly", t.name)
        self._accepting = False
        replays = list(self._replaying.values())
        for task in replays:
            task.cancel()
        await asyncio.gather(*replays, return_exceptions=True)
        await self._stop_workers(timeout)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        for sub in self.registry:
            try:
                await sub.handler.on_stop()
            except Exception:
                log.exception("handler %s failed in on_stop", sub.name)
        await self.store.close()

    async def _stop_workers(self, timeout: float) -> None:
        if not self._workers:
            return
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        for lane in self._lanes:
            if lane.jobs or lane.busy:
                fut = loop.create_future()
                lane.drained.append(fut)
                waits.append(fut)
        drained = asyncio.gather(*waits)
        try:
            await asyncio.wait_for(drained, timeout)
        except TimeoutError:
            log.warning("bus stop: %d queued events not handled within %.1fs", self.queue_depth(), timeout)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

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
        *event_types: str,
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
    ) -> Callable[[HandlerFunc], HandlerFunc]:
        """Decorator registering a function: ``@bus.subscribe("asset.*", severity="warning")``.

        Args:
            event_types: type patterns (none given: ``*``).
            severity / min_severity: lowest severity delivered (same meaning; ``severity`` reads better).
            category / source: one value or several.
            predicate: extra filter ``f(event) -> bool``.
            priority: higher runs first.
            retry / breaker / timeout: per-handler policies (seconds for ``timeout``).

        Raises:
            HandlerRegistrationError: as ``register``.
        """

        def decorate(func: HandlerFunc) -> HandlerFunc:
            h = FunctionHandler(func, name)
            h.retry, h.breaker, h.timeout = retry, breaker, timeout
            self.register(
                h,
                event_types=event_types or ("*",),
                min_severity=min_severity or severity,
                categories=[category] if isinstance(category, str) else category,
                sources=[source] if isinstance(source, str) else source,
                predicate=predicate,
                priority=priority,
            )
            return func

        return decorate

    def unregister(self, name: str) -> None:
        """Remove the handler called ``name`` (its dead letters stay). Raises ``KeyError`` if unknown."""
        sub = self.registry.remove(name)
        self.breakers.pop(name, None)
        if self._running:
            self._spawn(sub.handler.on_stop())

    def add_event_store(self, event_types: Sequence[str] = ("*",)) -> EventStoreHandler:
        """Register the built-in handler that keeps events in the store (``pywats-events events list``)."""
        h = EventStoreHandler(self.store, event_types)
        self.register(h)
        return h

    # -- transports --------------------------------------------------------------------------
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
        return sum(len(q.jobs) for q in self._lanes)

    @property
    def saturated(self) -> bool:
        """True when a lane is full, so a submit for its ordering keys would wait (HTTP answers 503)."""
        for q in self._lanes:
            if len(q.jobs) >= q.capacity:
                return True
        return False

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
        tracker = _Tracker(len(events), future)
        if not events:
            future.set_result(tracker.result)
            return future
        done: dict[str, set[str]] | None = None
        if self.idempotency and redelivered is not False:
            done = await self.store.completed_handlers([e.id for e in events])
        metrics = self.metrics
        received = metrics.received
        match = self.registry.match
        lanes = self._lanes
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
                        kept = [s for s in subs if s.name not in finished]
                        tracker.result.skipped += len(subs) - len(kept)
                        for s in subs:
                            if s.name in finished:
                                metrics.count_skipped(s.name)
                        if not kept:
                            tracker.event_done()
                            continue
                        subs = kept
                q = lanes[hash(ev.source if by_source else self.ordering_key(ev)) % n]
                jobs = q.jobs
                if len(jobs) < q.capacity and not q.putters:  # never overtake a submit waiting for room
                    jobs.append((ev, subs, tracker))
                    waiter = q.waiter
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                else:
                    await q.put((ev, subs, tracker))
        except BaseException as exc:
            # Interrupted part-way (cancelled while waiting for room): some events may be queued, others
            # not. The message must not be settled as a whole, so its future fails; queued events still run.
            if not future.done():
                future.set_exception(BusError(f"submit interrupted before every event was queued: {exc!r}"))
            raise
        return future

    async def publish(self, *events: Event) -> SettleResult:
        """Route events and wait until every delivery is settled; returns what became of them.

        Raises:
            BusClosedError: the bus is not running.
        """
        future = await self.submit(events, transport="publish")
        return await future

    async def dead_letter_raw(self, record: RawRecord) -> str:
        """Durably store undecodable input (see ``IngestSink.dead_letter_raw``); returns the entry id."""
        entry = entry_for_raw(record)
        await self.store.add_dead_letters((entry,))
        self.metrics.count_raw_dead_letter(record.transport)
        log.warning("dead-lettered undecodable input from %s: %s", record.origin, record.reason)
        self._emit_dead_letter_event(entry)
        return entry.id

    # -- delivery ----------------------------------------------------------------------------
    async def _worker(self, lane: _Lane) -> None:
        jobs = lane.jobs
        loop = asyncio.get_running_loop()
        run = 0
        while True:
            while jobs:
                lane.busy = True
                job = jobs.popleft()
                if lane.putters:
                    lane.release_putter()
                try:
                    await self._process(job[0], job[1], job[2])
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("bus lane failed while processing an event (this is a bug)")
                run += 1
                if run >= YIELD_EVERY:
                    # Handlers that never suspend would let this loop run the whole lane in one go: yield so
                    # transports' I/O (acks, heartbeats) and settlement callbacks run in between.
                    run = 0
                    await asyncio.sleep(0)
            lane.busy = False
            if lane.drained:
                for fut in lane.drained:
                    if not fut.done():
                        fut.set_result(None)
                lane.drained.clear()
            lane.waiter = loop.create_future()
            try:
                await lane.waiter
            finally:
                lane.waiter = None

    async def _process(self, event: Event, subs: Sequence[Subscription], tracker: _Tracker) -> None:
        succeeded: list[tuple[str, str]] | None = None
        dead: list[DeadLetterEntry] | None = None
        to_store: list[Event] | None = None
        result = tracker.result
        breakers = self.breakers
        for sub in subs:
            breaker = breakers.get(sub.name)
            if breaker is not None and breaker._state is BreakerState.CLOSED and sub.handler.timeout is None:
                # Fast path (closed circuit, no time limit): _attempt without its extra frame.
                t0 = time.perf_counter()
                try:
                    outcome = await sub.call(event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    breaker.record_failure()
                    outcome = await self._retry(event, sub, breaker, exc)
                else:
                    breaker._failures = 0
                    self.metrics.observe_handled(sub.name, time.perf_counter() - t0)
            else:
                outcome = await self._attempt(event, sub)
            if outcome is None:
                result.handled += 1
                if succeeded is None:
                    succeeded = [(event.id, sub.name)]
                else:
                    succeeded.append((event.id, sub.name))
            elif type(outcome) is StoreWrite:
                result.handled += 1
                if succeeded is None:
                    succeeded = [(event.id, sub.name)]
                else:
                    succeeded.append((event.id, sub.name))
                if to_store is None:
                    to_store = list(outcome.events)
                else:
                    to_store.extend(outcome.events)
            elif isinstance(outcome, _Failure):
                entry = entry_for_failure(
                    event, sub.name, outcome.reason, outcome.exc, outcome.attempts, outcome.first_failure_at
                )
                if dead is None:
                    dead = [entry]
                else:
                    dead.append(entry)
                result.dead_lettered += 1
                self._record_dead_letter(entry)
            else:
                result.handled += 1
                tracker.pending.append(self._after_deferred(outcome, event.id, sub.name))
        if not self.idempotency:
            succeeded = None
        if succeeded is not None or dead is not None or to_store is not None:
            # One write per event: its idempotency records, dead letters and stored rows commit together.
            written = self.store.write(completed=succeeded or (), events=to_store or (), dead_letters=dead or ())
            if written is not COMPLETED:
                tracker.pending.append(written)
        tracker.remaining -= 1
        if tracker.remaining == 0:
            tracker._finish()

    def _after_deferred(self, deferred: Awaitable[Any], event_id: str, name: str) -> asyncio.Future[None]:
        """Chain a handler's deferred completion and then its idempotency record, so the record is never
        durable before the work it vouches for."""
        out: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def relay(f: asyncio.Future[Any]) -> None:
            if out.done():
                return
            if f.cancelled():
                out.set_exception(BusError(f"deferred completion of handler {name!r} was cancelled"))
            elif f.exception() is not None:
                out.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                out.set_result(None)

        def deferred_done(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None or not self.idempotency:
                relay(f)
                return
            written = self.store.mark_completed(((event_id, name),))
            if written is COMPLETED:
                out.set_result(None)
            else:
                asyncio.ensure_future(written).add_done_callback(relay)

        asyncio.ensure_future(deferred).add_done_callback(deferred_done)
        return out

    async def _call(self, sub: Subscription, event: Event) -> Any:
        if sub.handler.timeout is None:
            return await sub.call(event)
        async with asyncio.timeout(sub.handler.timeout):
            return await sub.call(event)

    async def _attempt(self, event: Event, sub: Subscription) -> _Failure | Awaitable[Any] | None:
        """Run one delivery through breaker and retry policy: ``None`` on success, a ``_Failure``, or the
        awaitable a handler returned to defer its completion."""
        name = sub.name
        breaker = self.breakers.get(name)
        if breaker is None:
            return None  # unregistered meanwhile: nothing to deliver to
        if not breaker.allow():
            return _Failure(
                DeadLetterReason.CIRCUIT_OPEN,
                CircuitOpenError(f"circuit of handler {name!r} is {breaker.state.value}"),
                0,
                datetime.now(UTC),
            )
        t0 = time.perf_counter()
        try:
            if sub.handler.timeout is None:
                out = await sub.call(event)  # the common case, without the extra _call frame
            else:
                out = await self._call(sub, event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            breaker.record_failure()
            return await self._retry(event, sub, breaker, exc)
        breaker.record_success()
        self.metrics.observe_handled(name, time.perf_counter() - t0)
        return out  # type: ignore[no-any-return]

    async def _retry(
        self, event: Event, sub: Subscription, breaker: CircuitBreaker, first: Exception
    ) -> _Failure | Awaitable[Any] | None:
        name = sub.name
        first_at = datetime.now(UTC)
        policy = sub.handler.retry or self.retry
        if not policy.is_retryable(first):
            return _Failure(DeadLetterReason.UNRECOVERABLE, first, 1, first_at)
        if policy.max_attempts == 1:
            return _Failure(self._reason_for(first), first, 1, first_at)
        attempts = 1
        log.info("handler %s failed on event %s (%s: %s); retrying", name, event.id, type(first).__name__, first)

        async def attempt() -> Any:
            nonlocal attempts
            if not breaker.allow():
                raise CircuitOpenError(f"circuit of handler {name!r} opened during retries")
            attempts += 1
            self.metrics.count_retry(name)
            t0 = time.perf_counter()
            try:
                out = await self._call(sub, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                breaker.record_failure()
                raise
            breaker.record_success()
            self.metrics.observe_handled(name, time.perf_counter() - t0)
            return out

        try:
            return await policy.retry_after_failure(attempt)  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            raise
        except CircuitOpenError as exc:
            return _Failure(DeadLetterReason.CIRCUIT_OPEN, exc, attempts, first_at)
        except Exception as exc:
            reason = self._reason_for(exc) if policy.is_retryable(exc) else DeadLetterReason.UNRECOVERABLE
            return _Failure(reason, exc, attempts, first_at)

    @staticmethod
    def _reason_for(exc: BaseException) -> str:
        return DeadLetterReason.TIMEOUT if isinstance(exc, TimeoutError) else DeadLetterReason.FAILED

    def _record_dead_letter(self, entry: DeadLetterEntry) -> None:
        self.metrics.count_dead_letter(entry.handler or "", entry.reason)
        if entry.reason != DeadLetterReason.CIRCUIT_OPEN:
            log.warning(
                "dead-lettered event %s for handler %s after %d attempt(s): %s: %s",
                entry.event.id if entry.event else "-",
                entry.handler,
                entry.attempts,
                entry.error_type,
                entry.error_message,
            )
        self._emit_dead_letter_event(entry)

    # -- system events -----------------------------------------------------------------------
    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _emit_system(self, event: Event) -> None:
        if not self.emit_system_events or not self._accepting:
            return

        async def go() -> None:
            with contextlib.suppress(BusClosedError):
                await self.submit((event,), transport="system", redelivered=False)

        try:
            self._spawn(go())
        except RuntimeError:  # no running loop (state change during interpreter shutdown)
            pass

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

    # -- breakers and replay -----------------------------------------------------------------
    def _breaker_changed(self, breaker: CircuitBreaker, old: BreakerState, new: BreakerState) -> None:
        self.metrics.set_breaker(breaker.name, new)
        log.warning("circuit breaker of handler %s: %s -> %s", breaker.name, old.value, new.value)
        if not self._running:
            return
        if new is BreakerState.OPEN and not breaker.forced:
            self._spawn(self._probe_after(breaker.name, breaker.policy.reset_timeout))
        elif new is BreakerState.CLOSED:
            self._schedule_parked_replay(breaker.name)

    async def _probe_after(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        breaker = self.breakers.get(name)
        if breaker is not None and breaker.state is BreakerState.HALF_OPEN:
            self._schedule_parked_replay(name)

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

    def _schedule_parked_replay(self, name: str) -> None:
        task = self._replaying.get(name)
        if task is not None and not task.done():
            return
        new = asyncio.ensure_future(self._replay_parked(name))
        self._replaying[name] = new

    async def _replay_parked(self, name: str) -> None:
        """Replay deliveries parked while the circuit was open, oldest first, until none are left or the
        breaker stops letting calls through."""
        try:
            while self._running:
                entries = await self.store.list_dead_letters(
                    handler=name, reason=DeadLetterReason.CIRCUIT_OPEN, limit=100
                )
                if not entries:
                    return
                for entry in entries:
                    breaker = self.breakers.get(name)
                    if breaker is None or breaker.state is BreakerState.OPEN or not self._running:
                        return
                    if not await self._replay_entry(entry) and entry.reason == DeadLetterReason.CIRCUIT_OPEN:
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("replay of parked deliveries for handler %s failed", name)

    async def _replay_entry(self, entry: DeadLetterEntry) -> bool:
        if entry.event is None:
            return await self._replay_raw(entry)
        name = entry.handler or ""
        sub = self.registry.get(name)
        if sub is None:
            raise BusError(f"cannot replay entry {entry.id}: handler {name!r} is not registered on this bus")
        if self.idempotency and name in (await self.store.completed_handlers([entry.event.id])).get(
            entry.event.id, ()
        ):
            await self.store.delete_dead_letters([entry.id])
            return True
        failure = await self._attempt(entry.event, sub)
        stored: Sequence[Event] = ()
        if type(failure) is StoreWrite:
            stored, failure = failure.events, None
        elif failure is not None and not isinstance(failure, _Failure):
            await failure  # a deferred completion: durable before the entry goes
            failure = None
        if failure is None:
            completed = [(entry.event.id, name)] if self.idempotency else []
            await self.store.write(completed=completed, events=stored)
            await self.store.delete_dead_letters([entry.id])
            log.info("replayed dead letter %s to handler %s", entry.id, name)
            return True
        entry.attempts += failure.attempts
        entry.last_failure_at = datetime.now(UTC)
        entry.reason = failure.reason
        if failure.exc is not None:
            entry.error_type = type(failure.exc).__name__
            entry.error_message = str(failure.exc)
        await self.store.update_dead_letter(entry)
        return False

    async def _replay_raw(self, entry: DeadLetterEntry) -> bool:
        ctx = DecodeContext(origin=entry.origin, headers={"replayed_from": entry.id})
        try:
            decoder = get_decoder(str(entry.headers.get("pywats-decoder", "auto")))
            events = decoder(entry.raw_body or b"", ctx)
        except KeyError as exc:  # the decoder's transport is not configured in this process
            entry.last_failure_at = datetime.now(UTC)
            entry.error_message = f"cannot replay: {exc.args[0]}"
            entry.error_type = "UnknownDecoder"
            await self.store.update_dead_letter(entry)
            return False
        except DecodeError as exc:
            entry.last_failure_at = datetime.now(UTC)
            entry.error_message = exc.reason
            entry.error_type = type(exc).__name__
            await self.store.update_dead_letter(entry)
            return False
        future = await self.submit(events, transport=entry.transport or "replay")
        await future
        await self.store.delete_dead_letters([entry.id])
        return True

    # -- status ------------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, details)``: ready when the bus runs and every transport is CONNECTED. ``details`` lists
        the transports, what is not ready, and breaker states."""
        not_ready = [] if self._running else ["bus: not running"]
        for t in self.transports.values():
            if t.state is not TransportState.CONNECTED:
                not_ready.append(f"transport {t.name}: {t.state.value}")
        return (not not_ready), {
            "running": self._running,
            "started_at": self._started_at.isoformat() if self._started_at else None,
            "transports": [t.describe() for t in self.transports.values()],
            "breakers": [b.describe() for b in self.breakers.values()],
            "queue_depth": self.queue_depth(),
            "queue_capacity": self.queue_size,
            "not_ready": not_ready,
        }
