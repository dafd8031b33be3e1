"""A handler's return value never leaves its message unsettled (issue 9 defect 1, issue 10.1).

Only ``None``, an awaitable (a deferred completion) and a ``StoreWrite`` mean something; any other value
is ignored with one WARNING per handler, and the delivery counts as handled.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from pywats_events import BaseHandler, Event, EventBus, MemoryStore, MockTransport


class ReturnsTrue(BaseHandler):
    name = "returns-true"
    event_types = ("test.result",)

    async def handle(self, event: Event) -> bool:  # type: ignore[override]
        return True


async def test_values_returned_by_async_class_and_sync_handlers_settle_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    bus = EventBus(store)
    transport = bus.add_transport(MockTransport("mock"))
    calls: list[str] = []
    bus.register(ReturnsTrue())

    @bus.subscribe("test.result")
    async def returns_dict(event: Event) -> dict[str, str]:
        calls.append("dict")
        return {"status": "ok"}

    @bus.subscribe("test.result")
    def sync_returns_int(event: Event) -> int:
        calls.append("sync")
        return 42

    caplog.set_level(logging.WARNING, logger="pywats_events")
    async with bus:
        for i in range(3):
            result = await asyncio.wait_for(transport.inject(Event(id=f"e-{i}", type="test.result")), 5)
            assert result.handled == 3 and result.dead_lettered == 0
    assert len(transport.settled) == 3
    assert calls.count("dict") == 3 and calls.count("sync") == 3
    # The idempotency record is written: a redelivered copy is a no-op for every handler.
    done = await store.completed_handlers(["e-0"])
    assert done["e-0"] == {"returns-true", "returns_dict", "sync_returns_int"}
    warnings = [r.getMessage() for r in caplog.records if "returned" in r.getMessage()]
    assert len(warnings) == 2, warnings  # once per handler that returned a value, not once per event
    assert any("returns-true" in w and "bool" in w for w in warnings)
    assert any("returns_dict" in w and "dict" in w for w in warnings)


async def test_a_returned_awaitable_is_still_a_deferred_completion() -> None:
    store = MemoryStore()
    bus = EventBus(store)
    gate: asyncio.Future[None] | None = None

    @bus.subscribe("test.result")
    async def defers(event: Event) -> asyncio.Future[None]:
        nonlocal gate
        gate = asyncio.get_running_loop().create_future()
        return gate

    async with bus:
        future = await bus.submit([Event(id="d-1", type="test.result")])
        await asyncio.sleep(0.05)
        assert not future.done(), "settled before the deferred completion resolved"
        assert gate is not None
        gate.set_result(None)
        result = await asyncio.wait_for(future, 5)
    assert result.handled == 1
    assert (await store.completed_handlers(["d-1"]))["d-1"] == {"defers"}


async def test_replaying_a_dead_letter_to_a_handler_that_returns_a_value_succeeds() -> None:
    store = MemoryStore()
    bus = EventBus(store)
    fail = True

    @bus.subscribe("test.result")
    async def flaky(event: Event) -> bool:
        if fail:
            from pywats_events import UnrecoverableError

            raise UnrecoverableError("not yet")
        return True

    async with bus:
        await bus.publish(Event(id="r-1", type="test.result"))
        (entry,) = await bus.dead_letters.list()
        fail = False
        assert await asyncio.wait_for(bus.dead_letters.replay(entry.id), 5) is True
        assert await bus.dead_letters.count() == 0
