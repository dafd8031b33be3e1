"""The pyWATS event architecture document (seed ``004``): its examples run as written, from plain
synchronous code, and no registration call is ever a silent no-op."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pywats_events import BaseHandler, Event, EventBus, EventType, HandlerRegistrationError
from pywats_events.transports import MockTransport


def test_the_documents_testing_example_passes_exactly_as_written() -> None:
    # "Testing" section, verbatim but for the assertion on the thread (sync handlers run off the loop)
    bus = EventBus()
    transport = MockTransport()
    bus.register_transport(transport)

    received = []
    threads = []

    class TestHandler(BaseHandler):
        def event_types(self):  # type: ignore[no-untyped-def,override]
            return [EventType.TEST_RESULT]

        def handle(self, event):  # type: ignore[no-untyped-def,override]
            received.append(event)
            threads.append(threading.current_thread().name)

    bus.subscribe(TestHandler())
    bus.start()
    try:
        transport.inject_event(Event(event_type=EventType.TEST_RESULT, payload={"unit_id": "TEST-123", "passed": True}))
        assert len(received) == 1
        assert received[0].payload == {"unit_id": "TEST-123", "passed": True}
        assert threads[0] != threading.current_thread().name  # never on the caller's or the loop's thread
        # an event of another type is not delivered
        result = transport.inject_event(Event(type="asset.fault", source="x")).result()
        assert result.unrouted == 1 and len(received) == 1
    finally:
        bus.stop()
    assert not bus.running


def test_the_documents_core_example_with_a_property_and_an_async_handle() -> None:
    seen: list[str] = []
    event = Event(event_type=EventType.TEST_RESULT, payload={"unit_id": "SN-123", "result": "pass"},
                  source="test-station")
    assert event.type == "test.result" and event.event_type == "test.result"

    class MyHandler(BaseHandler):
        @property
        def event_types(self):  # type: ignore[no-untyped-def,override]
            return [EventType.TEST_RESULT]

        async def handle(self, event):  # type: ignore[no-untyped-def,override]
            seen.append(f"Processing: {event.payload['unit_id']}")

    bus = EventBus()
    handler = MyHandler()
    assert bus.subscribe(handler) is handler
    bus.start()
    try:
        result = bus.publish(event)
        assert result.result().handled == 1
        assert seen == ["Processing: SN-123"]
    finally:
        bus.stop()


def test_the_same_bus_api_is_awaitable_inside_a_running_loop() -> None:
    async def main() -> int:
        bus = EventBus()
        got: list[Event] = []
        bus.subscribe(lambda e: got.append(e))  # a plain function, every type
        await bus.start()
        result = await bus.publish(Event(type="x.y"))
        await bus.stop()
        return result.handled + len(got)

    assert asyncio.run(main()) == 2


def test_publish_from_another_thread_while_the_bus_runs_in_a_loop() -> None:
    async def main() -> list[str]:
        bus = EventBus()
        got: list[str] = []

        @bus.subscribe("line.*")
        async def record(event: Event) -> None:
            got.append(event.type)

        async with bus:
            def worker() -> None:
                assert bus.publish(Event(type="line.ping")).result().handled == 1

            await asyncio.to_thread(worker)
        return got

    assert asyncio.run(main()) == ["line.ping"]


def test_publish_before_start_from_sync_code_is_an_error_not_a_lost_event() -> None:
    from pywats_events import BusClosedError

    with pytest.raises(BusClosedError, match=r"call bus\.start"):
        EventBus().publish(Event(type="x.y"))


def test_every_registration_path_registers_or_raises() -> None:
    bus = EventBus()

    class H(BaseHandler):
        event_types = ("a.*",)

        async def handle(self, event: Event) -> None:
            pass

    h = bus.subscribe(H())
    assert [s.name for s in bus.registry] == ["H"]
    assert bus.registry.get("H").event_types == ("a.*",)  # type: ignore[union-attr]

    def f(event: Event) -> None:
        pass

    assert bus.subscribe(f) is f  # a bare function: every type
    assert bus.registry.get("f").event_types == ("*",)  # type: ignore[union-attr]

    @bus.subscribe
    def g(event: Event) -> None:
        pass

    assert bus.registry.get("g") is not None

    @bus.subscribe("b.*", name="gb")
    def g2(event: Event) -> None:
        pass

    assert bus.registry.get("gb").event_types == ("b.*",)  # type: ignore[union-attr]

    with pytest.raises(HandlerRegistrationError, match="class H, not an instance"):
        bus.subscribe(H)
    with pytest.raises(HandlerRegistrationError, match="neither an event type pattern"):
        bus.subscribe(42)
    with pytest.raises(HandlerRegistrationError, match="event types must be strings"):
        bus.subscribe("a.*", 3)
    with pytest.raises(HandlerRegistrationError, match="already registered"):
        bus.subscribe(h)
    with pytest.raises(HandlerRegistrationError):
        bus.register("not a handler")  # type: ignore[arg-type]

    class Bad(BaseHandler):
        event_types = 5  # type: ignore[assignment]

    with pytest.raises(HandlerRegistrationError, match="event_types must be a sequence"):
        bus.register(Bad())


async def test_each_failed_attempt_is_a_handler_error_event_and_a_failing_catch_all_does_not_loop() -> None:
    from pywats_events import MemoryStore, RetryPolicy
    from pywats_events.store import EventQuery

    bus = EventBus(MemoryStore(), retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0))
    bus.add_event_store()

    @bus.subscribe("*")
    async def broken(event: Event) -> None:
        raise RuntimeError("always")

    async with bus:
        ev = Event(type="test.result", source="ict-1", correlation_id="tx-9")
        await bus.publish(ev)
        for _ in range(200):
            reports = await bus.store.query_events(EventQuery(type_pattern="system.handler_error"))
            if len(reports) >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a loop would keep adding reports
        reports = await bus.store.query_events(EventQuery(type_pattern="system.handler_error"))
    about_ev = [r.event for r in reports if r.event.payload["event_id"] == ev.id]
    assert [e.payload["attempt"] for e in about_ev] == [1, 2]
    assert {e.payload["handler"] for e in about_ev} == {"broken"}
    assert about_ev[0].causation_id == ev.id and about_ev[0].correlation_id == "tx-9"
    assert about_ev[0].payload["error_message"] == "always"
    # the catch-all handler failed on the reports too, but no report about a report was made
    assert all(r.event.payload["event_type"] != "system.handler_error" for r in reports)
