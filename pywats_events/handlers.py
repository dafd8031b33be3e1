"""Handlers: the plug-ins that receive events. Write a ``BaseHandler`` subclass or decorate a function.

```python
class FaultPager(BaseHandler):
    event_types = ("asset.fault",)
    min_severity = "error"

    async def handle(self, event: Event) -> None:
        await page_the_line_lead(event.payload["asset_id"])

@bus.subscribe("test.result", predicate=lambda e: e.payload["result"] != "pass")
def log_failure(event: Event) -> None:          # sync functions run in a worker thread
    print(event.payload["unit_id"])
```
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .event import Event
from .store import Store, StoreWrite

if TYPE_CHECKING:
    from .breaker import BreakerPolicy
    from .retry import RetryPolicy

__all__ = ["BaseHandler", "EventStoreHandler", "FunctionHandler", "HandlerFunc", "SyncWorkers"]

log = logging.getLogger(__name__)

HandlerFunc = Callable[[Event], Awaitable[None] | None]

#: Threads a sync function handler gets when it sets no ``concurrency`` (count).
DEFAULT_SYNC_CONCURRENCY = 4


class SyncWorkers:
    """The threads of one sync handler: at most ``size`` calls run at once, more wait their turn.

    Each sync handler has its own, so a handler whose calls hang takes only its own threads, never the
    event loop's default executor that other handlers and libraries share. The threads are daemon threads:
    a call hung for good cannot keep the process from exiting after the bus stopped. A call still waiting
    for a thread when its caller gave up (time limit, shutdown) is dropped, never run late.

    Args:
        name: handler name (thread names are ``pywats-sync-<name>-<n>``).
        size: most threads, >= 1.

    Raises:
        ValueError: ``size`` < 1.
    """

    def __init__(self, name: str, size: int) -> None:
        if size < 1:
            raise ValueError(f"handler {name!r}: concurrency must be >= 1, got {size}")
        self.name = name
        self.size = size
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._backlog = 0
        self._lock = threading.Lock()
        #: Calls running on a thread now (count).
        self.running = 0

    async def run(self, func: Callable[[Event], Any], event: Event) -> Any:
        """Call ``func(event)`` on one of the threads and return its result (or raise its exception).
        Cancelling the await abandons the call: the thread finishes it, its result is discarded."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        ctx = contextvars.copy_context()
        with self._lock:
            # Exact bookkeeping: a call claims an idle thread, or starts one, or joins the backlog that
            # the next thread to finish takes over.
            start = False
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self.size:
                start = True
                self._threads.append(
                    threading.Thread(
                        target=self._serve, name=f"pywats-sync-{self.name}-{len(self._threads)}", daemon=True
                    )
                )
            else:
                self._backlog += 1
        if start:
            self._threads[-1].start()
        self._queue.put((func, event, ctx, loop, future))
        return await future

    def _serve(self) -> None:
        while True:
            func, event, ctx, loop, future = self._queue.get()
            if future.cancelled():  # the caller gave up while the call waited for a thread
                self._release()
                continue
            self.running += 1
            try:
                result = ctx.run(func, event)
            except BaseException as exc:  # even SystemExit: it fails this attempt, not the thread
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            finally:
                self.running -= 1
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody waits for the result any more
                pass
            self._release()

    def _release(self) -> None:
        with self._lock:
            if self._backlog:
                self._backlog -= 1  # this thread takes the oldest waiting call next
            else:
                self._idle += 1


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.done():
        return
    if outcome[0]:
        future.set_result(outcome[1])
    else:
        future.set_exception(outcome[1])


class BaseHandler:
    """Base class of class-style handlers.

    Class attributes (override as needed; constructor keywords of ``EventBus.register`` override them
    again):
        name: unique handler name (default: the class name). Idempotency records, breaker and dead-letter
            entries are keyed by it, so keep it stable across releases.
        event_types: type patterns handled (``("*",)`` for all, ``("asset.*",)``).
        min_severity: lowest severity handled (``None``: all).
        categories: categories handled (``None``: all).
        sources: sources handled (``None``: all).
        priority: higher runs first among handlers of the same event (default 0).
        retry: this handler's ``RetryPolicy`` (``None``: the bus default).
        breaker: this handler's ``BreakerPolicy`` (``None``: the bus default).
        timeout: seconds one call may take before it counts as a failed attempt (retried, then
            dead-lettered with reason ``timeout``; ``None``: the bus's ``handler_timeout``).
        concurrency: for sync function handlers, the most calls running at once, each on a thread of the
            handler's own (count, >= 1; ``None``: 4).
        stop_timeout: seconds the bus's ``stop`` waits for this handler's ``on_stop`` before abandoning it
            (logged at WARNING; ``None``: ``pywats_events.bus.STOP_GRACE``, 2 s). Raise it for a handler
            whose ``on_stop`` writes out what it holds (a write-behind buffer) and must not be cut short.
    """

    name: str = ""
    event_types: ClassVar[Sequence[str]] = ("*",)
    min_severity: str | None = None
    categories: Sequence[str] | None = None
    sources: Sequence[str] | None = None
    priority: int = 0
    retry: RetryPolicy | None = None
    breaker: BreakerPolicy | None = None
    timeout: float | None = None
    concurrency: int | None = None
    stop_timeout: float | None = None

    def __init__(self) -> None:
        if not self.name:
            self.name = type(self).__name__

    def matches(self, event: Event) -> bool:
        """Extra filter after type, severity, category and source matched (default: accept)."""
        return True

    async def handle(self, event: Event) -> Awaitable[None] | StoreWrite | None:
        """Process one event. Raise to fail the attempt (``UnrecoverableError`` to skip retries).

        May return an awaitable instead of awaiting it (a group-commit future, for instance): the delivery
        then counts as handled, and the transport message is settled only once the awaitable resolves; if it
        fails, the message is left unsettled so the broker redelivers it. May return a ``StoreWrite``: the
        bus writes those rows to its store together with the delivery's idempotency record. Any other
        value (``True``, a dict) means nothing: it is ignored, with one WARNING per handler.
        """
        raise NotImplementedError(f"{type(self).__name__}.handle is not implemented")

    def direct_call(self) -> Callable[[Event], Awaitable[Any]]:
        """The coroutine function the bus awaits per delivery: ``handle``, or for a subclass whose
        ``handle`` is a plain ``def``, a wrapper running it on the handler's own threads (never on the
        event loop; at most ``concurrency`` at once)."""
        if inspect.iscoroutinefunction(self.handle):
            return self.handle
        return self._handle_on_thread

    async def _handle_on_thread(self, event: Event) -> Any:
        workers: SyncWorkers | None = getattr(self, "_sync_workers", None)
        if workers is None:
            workers = SyncWorkers(self.name, self.concurrency or DEFAULT_SYNC_CONCURRENCY)
            self._sync_workers = workers
        result: Any = await workers.run(self.handle, event)
        return await result if inspect.isawaitable(result) else result

    async def on_start(self) -> None:
        """Called once when the bus starts (open connections, load state)."""

    async def on_stop(self) -> None:
        """Called once when the bus stops, after in-flight deliveries drained."""

    def attach(self, store: Store) -> None:
        """Told the bus's store when registered (handlers that persist may keep it)."""

    def health(self) -> str | None:
        """Why this handler cannot work now (e.g. its sink refused the credentials), shown in the bus's
        readiness; ``None`` (the default) when nothing is known to be wrong."""
        return None


class FunctionHandler(BaseHandler):
    """A handler made from a function; a sync function runs in a worker thread, never on the event loop.

    Args:
        func: ``async def f(event)`` or ``def f(event)``.
        name: handler name (default: the function's ``__name__``).

    Raises:
        TypeError: ``func`` is not callable.
    """

    def __init__(self, func: HandlerFunc, name: str | None = None) -> None:
        if not callable(func):
            raise TypeError(f"handler must be callable, got {type(func).__name__}")
        self.name = name or getattr(func, "__name__", None) or repr(func)
        super().__init__()
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - async callable objects
        )
        self._workers: SyncWorkers | None = None

    def direct_call(self) -> Callable[[Event], Awaitable[Any]]:
        # Awaiting an async function directly saves one coroutine frame per delivery.
        return self.func if self.is_async else self.handle  # type: ignore[return-value]

    async def handle(self, event: Event) -> Awaitable[None] | None:
        if self.is_async:
            return await self.func(event)  # type: ignore[misc,no-any-return]
        workers = self._workers
        if workers is None:
            workers = self._workers = SyncWorkers(self.name, self.concurrency or DEFAULT_SYNC_CONCURRENCY)
        result: Any = await workers.run(self.func, event)
        if inspect.isawaitable(result):
            await result
        return None


class EventStoreHandler(BaseHandler):
    """Keeps every event it receives in the store's event table (queryable with ``pywats-events events``).

    The write is group-committed with the delivery's idempotency record, and the transport message is
    settled only after that commit (see ``StoreWrite``).

    Args:
        store: where to write; default the bus's store (given at registration).
        event_types: patterns to keep (default all but ``system.heartbeat``, ``*`` keeps everything).
    """

    name = "event-store"
    priority = 100

    def __init__(self, store: Store | None = None, event_types: Sequence[str] = ("*",)) -> None:
        super().__init__()
        self.store = store
        self.event_types = tuple(event_types)  # type: ignore[misc]

    _bus_store: Store | None = None

    def attach(self, store: Store) -> None:
        self._bus_store = store
        if self.store is None:
            self.store = store

    async def handle(self, event: Event) -> Awaitable[None] | StoreWrite:
        if self.store is None:
            raise RuntimeError("EventStoreHandler has no store; register it on a bus or pass one")
        if self.store is self._bus_store:
            # The bus writes the event in the transaction that records this delivery as done.
            return StoreWrite(events=(event,))
        # Another store: returned, not awaited, so the lane moves on while the write is group-committed;
        # the message is settled only after the commit (see BaseHandler.handle).
        return self.store.append_events((event,))
