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
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from .event import Event
from .store import Store, StoreWrite

if TYPE_CHECKING:
    from .breaker import BreakerPolicy
    from .retry import RetryPolicy

__all__ = ["BaseHandler", "EventStoreHandler", "FunctionHandler", "HandlerFunc"]

HandlerFunc = Callable[[Event], Awaitable[None] | None]


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
        timeout: seconds one call may take before it counts as failed (``None``: no limit).
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
        bus writes those rows to its store together with the delivery's idempotency record.
        """
        raise NotImplementedError(f"{type(self).__name__}.handle is not implemented")

    def direct_call(self) -> Callable[[Event], Awaitable[Any]]:
        """The coroutine function the bus awaits per delivery (default: ``handle``)."""
        return self.handle

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

    def direct_call(self) -> Callable[[Event], Awaitable[Any]]:
        # Awaiting an async function directly saves one coroutine frame per delivery.
        return self.func if self.is_async else self.handle  # type: ignore[return-value]

    async def handle(self, event: Event) -> Awaitable[None] | None:
        if self.is_async:
            return await self.func(event)  # type: ignore[misc,no-any-return]
        else:
            result: Any = await asyncio.to_thread(self.func, event)
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
