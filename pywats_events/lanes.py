"""Lanes and settlement: where queued events wait, in which order they run, and when a message is done.

A submitted protocol message becomes a ``Tracker``; each of its events becomes one job on one ``Lane``,
chosen by the event's ordering key, so events with the same key run one after another in arrival order
while different keys run concurrently on other lanes. A lane runs its jobs (all deliveries of one event)
through a ``process`` function it is given (the delivery layer); the tracker resolves the submitter's
future once every event is done and every store write those deliveries made is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from .errors import BusError, StoreRefusedError
from .event import Event
from .transport import SettleResult

if TYPE_CHECKING:
    from .registry import Subscription

__all__ = ["Job", "Lane", "Lanes", "Tracker"]

log = logging.getLogger(__name__)

#: Jobs a lane runs back to back before it lets the event loop run other callbacks.
YIELD_EVERY = 32

#: ``f(event, error) -> awaitable``: keeps an event whose store write was refused (see ``Tracker``).
RefusalHandler = Callable[[Event, StoreRefusedError], Awaitable[None]]


class Tracker:
    """Settlement of one submitted message: resolves ``future`` when every event's deliveries are done and
    every store write they made is durable.

    Args:
        n: number of events in the message (>= 0).
        future: resolved with the ``SettleResult``, or failed when a store write failed (the transport then
            leaves its message unsettled, so the broker redelivers it).
        transport: name of the submitting transport (for the shutdown report).
        on_refused: called for an event whose write the store refused for good (``StoreRefusedError``,
            the same data would be refused again): it keeps the event elsewhere (the dead-letter queue),
            and the message settles once that is durable instead of failing forever.
    """

    __slots__ = ("_left", "future", "on_refused", "pending", "remaining", "result", "transport")

    def __init__(
        self,
        n: int,
        future: asyncio.Future[SettleResult],
        transport: str = "",
        on_refused: RefusalHandler | None = None,
    ) -> None:
        self.future = future
        self.remaining = n
        self.result = SettleResult(events=n)
        self.transport = transport
        self.on_refused = on_refused
        #: Store writes (and deferred completions) to wait for, each with the event it belongs to.
        self.pending: list[tuple[Awaitable[None], Event | None]] = []
        self._left = 0

    def event_done(self) -> None:
        """One event's deliveries have run (their writes may still be pending)."""
        self.remaining -= 1
        if self.remaining == 0:
            self.finish()

    def finish(self) -> None:
        """Resolve the future now, or once every pending write has completed."""
        if not self.pending:
            if not self.future.done():
                self.future.set_result(self.result)
            return
        # A write already committed needs no callback; a failed one gets it like the others (below).
        waiting = [
            p
            for p, _ in self.pending
            if not (isinstance(p, asyncio.Future) and p.done() and not p.cancelled() and p.exception() is None)
        ]
        if not waiting:
            if not self.future.done():
                self.future.set_result(self.result)
            return
        self._left = len(waiting)
        # A bound method, not a closure per message: this runs once per settled message.
        done = self._write_done
        for p in waiting:
            if isinstance(p, asyncio.Future):
                p.add_done_callback(done)
            else:
                asyncio.ensure_future(p).add_done_callback(done)

    def _write_done(self, f: asyncio.Future[None]) -> None:
        if f.cancelled():
            self._fail(BusError("store write cancelled"))
            return
        exc = f.exception()
        if exc is not None:
            if isinstance(exc, StoreRefusedError) and self.on_refused is not None:
                # Rare path: find the event whose write was refused, keep it, and count this write
                # done once that is durable.
                event = next((e for p, e in self.pending if p is f), None)
                if event is not None:
                    self.result.dead_lettered += 1
                    asyncio.ensure_future(self.on_refused(event, exc)).add_done_callback(self._write_done)
                    return
            self._fail(exc)
            return
        self._left -= 1
        if self._left == 0 and not self.future.done():
            self.future.set_result(self.result)

    def _fail(self, exc: BaseException | None) -> None:
        if not self.future.done():
            self.future.set_exception(exc or BusError("store write failed"))


#: One queued job: an event, the subscriptions it goes to (highest priority first), its message's tracker.
Job = tuple[Event, "Sequence[Subscription]", Tracker]

#: What a lane runs per job: all deliveries of one event (``DeliveryLayer.run``).
Process = Callable[[Event, "Sequence[Subscription]", Tracker], Awaitable[None]]


class Lane:
    """A bounded FIFO of jobs served by one worker task; lighter than ``asyncio.Queue`` on the hot path.

    The worker drains the deque without suspending while jobs are waiting; producers wait (backpressure)
    only when ``capacity`` jobs are queued.

    Args:
        capacity: most jobs queued on this lane (>= 1).
    """

    __slots__ = ("busy", "capacity", "current", "drained", "jobs", "putters", "started", "waiter")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.jobs: deque[Job] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.putters: deque[asyncio.Future[None]] = deque()
        self.busy = False
        #: The job running now, and when it started (``time.monotonic`` seconds).
        self.current: Job | None = None
        self.started = 0.0
        #: Futures resolved the next time the lane runs dry (``Lanes.drain`` waits on them).
        self.drained: list[asyncio.Future[None]] = []

    def offer(self, job: Job) -> bool:
        """Queue ``job`` if there is room and nobody is waiting for room (never overtake); else False."""
        jobs = self.jobs
        if len(jobs) < self.capacity and not self.putters:
            jobs.append(job)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            return True
        return False

    async def put(self, job: Job) -> None:
        """Queue ``job``, waiting while the lane is full (backpressure)."""
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
        """Wake the oldest producer waiting for room."""
        while self.putters:
            fut = self.putters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    async def work(self, process: Process) -> None:
        """The worker loop: run queued jobs through ``process`` until cancelled."""
        jobs = self.jobs
        loop = asyncio.get_running_loop()
        clock = time.monotonic
        run = 0
        while True:
            while jobs:
                self.busy = True
                job = self.current = jobs.popleft()
                self.started = clock()
                if self.putters:
                    self.release_putter()
                try:
                    await process(job[0], job[1], job[2])
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("bus lane failed while processing an event (this is a bug)")
                self.current = None
                run += 1
                if run >= YIELD_EVERY:
                    # Handlers that never suspend would let this loop run the whole lane in one go: yield so
                    # transports' I/O (acks, heartbeats) and settlement callbacks run in between.
                    run = 0
                    await asyncio.sleep(0)
            self.busy = False
            if self.drained:
                for fut in self.drained:
                    if not fut.done():
                        fut.set_result(None)
                self.drained.clear()
            self.waiter = loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


class Lanes:
    """The bus's lanes and their worker tasks.

    Args:
        count: number of lanes (deliveries running at once), >= 1.
        queue_size: jobs queued over all lanes (split evenly, at least one per lane).
    """

    def __init__(self, count: int, queue_size: int) -> None:
        per_lane = max(1, queue_size // count)
        self.lanes = [Lane(per_lane) for _ in range(count)]
        self._workers: list[asyncio.Task[None]] = []

    def start(self, process: Process) -> None:
        """Start one worker task per lane, each running its jobs through ``process``."""
        self._workers = [
            asyncio.create_task(lane.work(process), name=f"pywats-lane-{i}") for i, lane in enumerate(self.lanes)
        ]

    def depth(self) -> int:
        """Jobs queued (not yet taken by a worker)."""
        return sum(len(lane.jobs) for lane in self.lanes)

    @property
    def saturated(self) -> bool:
        """True when a lane is full, so a submit for its ordering keys would wait."""
        for lane in self.lanes:
            if len(lane.jobs) >= lane.capacity:
                return True
        return False

    def stuck(self, threshold: float) -> list[tuple[int, float, str]]:
        """Lanes whose current job has run longer than ``threshold`` seconds: ``(lane index, seconds,
        event id)`` for each."""
        now = time.monotonic()
        out = []
        for i, lane in enumerate(self.lanes):
            job = lane.current
            if job is not None and now - lane.started > threshold:
                out.append((i, now - lane.started, job[0].id))
        return out

    def unsettled(self) -> dict[str, int]:
        """Messages with an event queued or running, per transport name."""
        seen: dict[int, str] = {}
        for lane in self.lanes:
            if lane.current is not None:
                seen[id(lane.current[2])] = lane.current[2].transport
            for job in lane.jobs:
                seen[id(job[2])] = job[2].transport
        counts: dict[str, int] = {}
        for transport in seen.values():
            counts[transport] = counts.get(transport, 0) + 1
        return counts

    async def drain(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every lane has run dry; True if they did."""
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[None]] = []
        for lane in self.lanes:
            if lane.jobs or lane.busy:
                fut = loop.create_future()
                lane.drained.append(fut)
                waits.append(fut)
        if not waits:
            return True
        done, _ = await asyncio.wait(waits, timeout=max(0.0, timeout))
        return len(done) == len(waits)

    async def stop(self, grace: float) -> bool:
        """Cancel the workers (a running delivery is interrupted: its message stays unsettled) and wait up
        to ``grace`` seconds for them to end; False if a handler ignored the cancellation."""
        workers, self._workers = self._workers, []
        for w in workers:
            w.cancel()
        if not workers:
            return True
        _, pending = await asyncio.wait(workers, timeout=grace)
        return not pending
