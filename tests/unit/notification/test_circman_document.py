"""The CIRCMAN event notification document (seed ``003``), its examples run with only the package prefix
changed (``circman5.manufacturing.digital_twin.event_notification`` -> ``pywats_events.notification``),
from plain synchronous test functions as the document's users write them."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pywats_events.notification.event_manager import NotificationConfig, event_manager
from pywats_events.notification.event_types import (
    ErrorEvent,
    Event,
    EventCategory,
    EventSeverity,
    OptimizationEvent,
    SystemStateEvent,
    ThresholdEvent,
    UserActionEvent,
)
from pywats_events.notification.publishers import DigitalTwinPublisher


@pytest.fixture(autouse=True)
def fresh_manager() -> Iterator[None]:
    """Each test gets the document's module-level manager on a new bus (its own store)."""
    event_manager.close()
    event_manager.config = NotificationConfig()
    yield
    event_manager.close()
    event_manager.config = NotificationConfig()


def test_5_1_and_5_2_category_and_severity_subscriptions() -> None:
    threshold_seen: list[Event] = []
    critical_seen: list[Event] = []

    def handle_threshold_event(event: Event) -> None:
        threshold_seen.append(event)

    event_manager.subscribe(handle_threshold_event, category=EventCategory.THRESHOLD)

    def handle_critical_event(event: Event) -> None:
        critical_seen.append(event)

    event_manager.subscribe(handle_critical_event, severity=EventSeverity.CRITICAL)

    threshold_event = ThresholdEvent(parameter="temperature", threshold=25.0, actual_value=26.5,
                                     severity=EventSeverity.WARNING)
    event_manager.publish(threshold_event)

    assert [e.event_id for e in threshold_seen] == [threshold_event.event_id]
    got = threshold_seen[0]
    assert isinstance(got, ThresholdEvent)
    assert got.message == "Threshold breach: temperature exceeded 25.0 with value 26.5"
    assert got.details == {"parameter": "temperature", "threshold": 25.0, "actual_value": 26.5}
    assert critical_seen == []

    event_manager.publish(ErrorEvent(error_type="PLCError", error_message="bus fault", severity=EventSeverity.CRITICAL))
    assert [e.category for e in critical_seen] == [EventCategory.ERROR]
    assert len(threshold_seen) == 1


def test_severity_subscription_matches_exactly_not_as_a_minimum() -> None:
    seen: list[EventSeverity] = []
    event_manager.subscribe(lambda e: seen.append(e.severity), severity=EventSeverity.WARNING)
    for sev in EventSeverity:
        event_manager.publish(Event(category=EventCategory.SYSTEM, severity=sev, message=sev.value))
    assert seen == [EventSeverity.WARNING]


def test_category_and_severity_together() -> None:
    seen: list[str] = []
    event_manager.subscribe(lambda e: seen.append(e.message), category=EventCategory.ERROR,
                            severity=EventSeverity.ERROR)
    event_manager.publish(ErrorEvent(error_type="A", error_message="a"))  # ERROR/ERROR: delivered
    event_manager.publish(ErrorEvent(error_type="B", error_message="b", severity=EventSeverity.CRITICAL))
    event_manager.publish(Event(category=EventCategory.SYSTEM, severity=EventSeverity.ERROR, message="c"))
    assert seen == ["Error: A - a"]


def test_5_3_digital_twin_publisher() -> None:
    seen: list[Event] = []
    event_manager.subscribe(seen.append)
    publisher = DigitalTwinPublisher()
    publisher.publish_parameter_threshold_event(
        parameter_path="production_line.temperature",
        parameter_name="Temperature",
        threshold=25.0,
        actual_value=26.5,
        state={"timestamp": "2025-02-24T14:30:22.123456"},
        severity=EventSeverity.WARNING,
    )
    publisher.publish_error_event(error_type="SimulationError", error_message="Simulation failed to converge",
                                  severity=EventSeverity.ERROR)
    assert [type(e).__name__ for e in seen] == ["ThresholdEvent", "ErrorEvent"]
    assert {e.source for e in seen} == {"digital_twin"}
    assert seen[0].details["parameter_path"] == "production_line.temperature"
    assert seen[0].details["state_timestamp"] == "2025-02-24T14:30:22.123456"
    assert seen[1].message == "Error: SimulationError - Simulation failed to converge"
    assert seen[1].details["stacktrace"] is None


def test_publisher_kinds_can_be_turned_off_and_say_so() -> None:
    event_manager.config = event_manager.config.model_copy(update={"publish_state_changes": False})
    seen: list[Event] = []
    event_manager.subscribe(seen.append)
    publisher = DigitalTwinPublisher()
    assert publisher.publish_state_update({"system_status": "idle"}, {"system_status": "running"}) is False
    assert seen == []
    event_manager.config = event_manager.config.model_copy(update={"publish_state_changes": True})
    assert publisher.publish_state_update({"system_status": "idle"}, {"system_status": "running"}) is True
    assert seen[0].message == "System state changed from idle to running"


def test_5_4_filter_drops_what_it_should_and_only_for_its_category() -> None:
    seen: list[str] = []
    event_manager.subscribe(lambda e: seen.append(e.details.get("parameter", e.message)))

    def temperature_filter(event: Event) -> bool:
        if "parameter" in event.details and event.details["parameter"] == "temperature":
            return True
        return False

    event_manager.add_filter(EventCategory.THRESHOLD, temperature_filter)
    event_manager.publish(ThresholdEvent(parameter="temperature", threshold=25.0, actual_value=26.5))
    event_manager.publish(ThresholdEvent(parameter="humidity", threshold=60.0, actual_value=70.0))
    event_manager.publish(Event(category=EventCategory.SYSTEM, message="other category"))
    assert seen == ["temperature", "other category"]
    # filtered events are still published: the store has all three
    assert len(event_manager.get_events()) == 3
    assert event_manager.remove_filter(EventCategory.THRESHOLD, temperature_filter) is True
    event_manager.publish(ThresholdEvent(parameter="humidity", threshold=60.0, actual_value=71.0))
    assert seen[-1] == "humidity"
    assert event_manager.remove_filter(EventCategory.THRESHOLD, temperature_filter) is False


def test_5_5_retrieval_acknowledge_and_clear() -> None:
    for i in range(4):
        event_manager.publish(ThresholdEvent(parameter=f"p{i}", threshold=1.0, actual_value=2.0))
    event_manager.publish(ErrorEvent(error_type="E", error_message="x"))
    old = Event(category=EventCategory.SYSTEM, message="old", timestamp="2020-01-01T00:00:00")
    event_manager.publish(old)

    warning_events = event_manager.get_events(severity=EventSeverity.WARNING, limit=10)
    assert len(warning_events) == 4 and all(e.severity is EventSeverity.WARNING for e in warning_events)
    assert [e.details["parameter"] for e in warning_events] == ["p3", "p2", "p1", "p0"]  # newest first
    threshold_events = event_manager.get_events(category=EventCategory.THRESHOLD, limit=2)
    assert [e.details["parameter"] for e in threshold_events] == ["p3", "p2"]

    target = warning_events[0].event_id
    assert event_manager.acknowledge_event(target) is True
    assert event_manager.acknowledge_event(target) is False  # already acknowledged
    assert event_manager.acknowledge_event("event_id_123456") is False  # no such event
    assert [e.acknowledged for e in event_manager.get_events(severity=EventSeverity.WARNING)] == [
        True, False, False, False,
    ]

    assert event_manager.clear_events(older_than_days=30) == 1
    assert len(event_manager.get_events()) == 5
    assert event_manager.clear_events() == 5
    assert event_manager.get_events() == []


def test_6_five_events_from_a_worker_thread_are_delivered_five_times() -> None:
    received: list[tuple[str, Any]] = []

    def event_handler(event: Event) -> None:
        received.append((event.message, event.details["thread_id"]))

    event_manager.subscribe(event_handler, category=EventCategory.SYSTEM)

    def publish_worker() -> None:
        for i in range(5):
            event = Event(category=EventCategory.SYSTEM, severity=EventSeverity.INFO,
                          message=f"Worker thread event {i}", details={"thread_id": threading.current_thread().ident})
            event_manager.publish(event)

    worker = threading.Thread(target=publish_worker)
    worker.start()
    worker.join()
    assert [m for m, _ in received] == [f"Worker thread event {i}" for i in range(5)]
    assert {t for _, t in received} == {worker.ident}


def test_max_events_is_enforced_automatically() -> None:
    event_manager.config = event_manager.config.model_copy(update={"max_events": 50})
    ids = []
    for i in range(80):
        ev = Event(category=EventCategory.PROCESS, message=f"e{i}")
        ids.append(ev.event_id)
        event_manager.publish(ev)
    kept = event_manager.get_events(limit=1000)
    assert len(kept) == 50
    assert {e.event_id for e in kept} == set(ids[30:])  # the newest 50


def test_persistence_off_stores_nothing() -> None:
    event_manager.config = event_manager.config.model_copy(update={"persistence_enabled": False})
    seen: list[Event] = []
    event_manager.subscribe(seen.append)
    event_manager.publish(Event(message="x"))
    assert len(seen) == 1
    assert event_manager.get_events() == []


def test_never_silent_duplicate_subscribe_and_unknown_unsubscribe(caplog: pytest.LogCaptureFixture) -> None:
    from pywats_events import HandlerRegistrationError

    def h(event: Event) -> None:
        pass

    event_manager.subscribe(h, category=EventCategory.USER)
    with pytest.raises(HandlerRegistrationError, match="already subscribed"):
        event_manager.subscribe(h, category=EventCategory.USER)
    with pytest.raises(HandlerRegistrationError, match="not callable"):
        event_manager.subscribe("nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="EventCategory"):
        event_manager.subscribe(h, category="user")  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING)
    assert event_manager.unsubscribe(h, category=EventCategory.ERROR) is False
    assert "has no subscription" in caplog.text
    assert event_manager.unsubscribe(h, category=EventCategory.USER) is True


def test_unsubscribed_handler_gets_nothing_more() -> None:
    seen: list[str] = []

    def h(event: Event) -> None:
        seen.append(event.message)

    event_manager.subscribe(h)
    event_manager.publish(Event(message="one"))
    event_manager.unsubscribe(h)
    event_manager.publish(Event(message="two"))
    assert seen == ["one"]


def test_a_failing_subscriber_is_retried_then_dead_lettered_and_others_still_run() -> None:
    from pywats_events import RetryPolicy

    event_manager.bus.retry = RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0)
    ok: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("pager offline")

    event_manager.subscribe(broken, category=EventCategory.ERROR)
    event_manager.subscribe(lambda e: ok.append(e.message), category=EventCategory.ERROR)
    ev = ErrorEvent(error_type="X", error_message="y")
    event_manager.publish(ev)
    assert ok == ["Error: X - y"]
    entries = event_manager._store_call(lambda store: store.list_dead_letters())
    assert [(e.event.id, e.handler.startswith("notification:"), e.attempts) for e in entries] == [
        (ev.event_id, True, 2)
    ]
    assert "pager offline" in entries[0].error_message


def test_publish_from_inside_a_subscriber_does_not_wait_for_itself() -> None:
    seen: list[str] = []

    def cascade(event: Event) -> None:
        seen.append(event.message)
        if event.message == "first":
            event_manager.publish(Event(message="second"))  # same source, same lane: must not deadlock

    event_manager.subscribe(cascade)
    event_manager.publish(Event(message="first"))
    assert event_manager.flush(10) == 0
    assert seen == ["first", "second"]


def test_publish_inside_a_running_loop_returns_at_once_without_blocking_it() -> None:
    seen: list[str] = []
    event_manager.subscribe(lambda e: seen.append(e.message))

    async def app() -> float:
        t0 = time.perf_counter()
        event_manager.publish(Event(message="from async code"))
        return time.perf_counter() - t0

    elapsed = asyncio.run(app())
    assert elapsed < 1.0
    assert event_manager.flush(10) == 0
    assert seen == ["from async code"]


def test_every_kind_converts_to_a_bus_event_and_back_without_loss() -> None:
    from pywats_events import Event as BusEvent
    from pywats_events.notification import from_bus_event, to_bus_event

    kinds = [
        Event(category=EventCategory.PROCESS, message="m", details={"a": [1, 2]}),
        SystemStateEvent(previous_state="idle", new_state="running"),
        ThresholdEvent(parameter="t", threshold=1.5, actual_value=2.5, severity=EventSeverity.CRITICAL),
        OptimizationEvent(optimization_type="energy", potential_improvement=12.345, recommended_action="slow"),
        ErrorEvent(error_type="E", error_message="m", stacktrace="tb", source="plc-1"),
        UserActionEvent(user_id="u1", action="ack", action_details={"id": 3}),
    ]
    for note in kinds:
        bus_event = to_bus_event(note)
        assert bus_event.category == note.category.value
        back = from_bus_event(BusEvent.from_json_dict(json.loads(json.dumps(bus_event.to_json_dict()))))
        assert type(back) is type(note) and back == note, note
        assert Event.from_dict(note.to_dict()) == Event.from_dict(back.to_dict())
    # a bus event that did not start as a notification survives the trip the other way
    line = BusEvent(type="test.result", source="ict-1", payload={"result": "Failed"}, subjects=("SN1",),
                    correlation_id="tx-1", severity="warning")
    note = from_bus_event(line)
    assert note.category is EventCategory.PROCESS and note.severity is EventSeverity.WARNING
    again = to_bus_event(note)
    assert again.model_dump(exclude={"timestamp"}) == line.model_dump(exclude={"timestamp"})
    assert again.timestamp == line.timestamp


def test_eight_threads_publishing_ten_thousand_each_lose_nothing_and_never_deadlock() -> None:
    event_manager.config = event_manager.config.model_copy(update={"max_events": 100_000})
    count = 0
    lock = threading.Lock()

    def counter(event: Event) -> None:
        nonlocal count
        with lock:
            count += 1

    event_manager.subscribe(counter)
    per_thread, threads = 10_000, 8
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(per_thread):
                event_manager.publish(Event(category=EventCategory.PROCESS, source=f"worker-{n}", message=str(i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=240)
    elapsed = time.perf_counter() - t0
    assert not [t for t in pool if t.is_alive()], "a publisher thread is stuck (deadlock)"
    assert errors == []
    assert count == per_thread * threads
    assert len(event_manager.get_events(limit=100_000)) == per_thread * threads
    print(f"\n{per_thread * threads} events from {threads} threads in {elapsed:.1f} s: "
          f"{per_thread * threads / elapsed:,.0f} events/s")
