"""The bus: routing, subscriptions, ordering, concurrency, sync handlers, backpressure, idempotency, stop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pywats_events import (
    BaseHandler,
    BusClosedError,
    Event,
    EventBus,
    HandlerRegistrationError,
    MockTransport,
    Severity,
    TransportState,
)
from tests.waiting import wait_for


def ev(type_: str = "test.result", source: str = "st-1", **kw: object) -> Event:
    return Event(type=type_, source=source, **kw)  # type: ignore[arg-type]


async def test_type_patterns_route_to_the_right_handlers() -> None:
    bus = EventBus()
    got: dict[str, list[str]] = {"assets": [], "cfx": [], "all": [], "exact": []}

    @bus.subscribe("asset.*")
    async def assets(e: Event) -> None:
        got["assets"].append(e.type)

    @bus.subscribe("CFX.Production.*")
    async def cfx(e: Event) -> None:
        got["cfx"].append(e.type)

    @bus.subscribe("*")
    async def everything(e: Event) -> None:
        got["all"].append(e.type)

    @bus.subscribe("test.result")
    async def exact(e: Event) -> None:
        got["exact"].append(e.type)

    types = ["asset.fault", "asset.fault_cleared", "CFX.Production.TestAndInspection.UnitsTested", "test.result"]
    async with bus:
        for t in types:
            await bus.publish(ev(t))
    assert got["assets"] == ["asset.fault", "asset.fault_cleared"]
    assert got["cfx"] == ["CFX.Production.TestAndInspection.UnitsTested"]
    assert got["all"] == types
    assert got["exact"] == ["test.result"]


async def test_filters_by_severity_category_source_and_predicate() -> None:
    bus = EventBus()
    seen: dict[str, list[str]] = {k: [] for k in ("sev", "cat", "src", "pred")}

    @bus.subscribe(severity="error")
    async def sev(e: Event) -> None:
        seen["sev"].append(e.id)

    @bus.subscribe(category="asset")
    async def cat(e: Event) -> None:
        seen["cat"].append(e.id)

    @bus.subscribe(source=["st-2"])
    async def src(e: Event) -> None:
        seen["src"].append(e.id)

    @bus.subscribe("test.result", predicate=lambda e: e.payload.get("result") == "fail")
    async def pred(e: Event) -> None:
        seen["pred"].append(e.id)

    a = ev("asset.fault", severity=Severity.CRITICAL)
    b = ev("asset.state_changed", source="st-2")
    c = ev("test.result", payload={"result": "fail"}, severity=Severity.WARNING)
    d = ev("test.result", payload={"result": "pass"}, source="st-2")
    async with bus:
        for e in (a, b, c, d):
            await bus.publish(e)
    assert seen["sev"] == [a.id]
    assert seen["cat"] == [a.id, b.id]
    assert seen["src"] == [b.id, d.id]
    assert seen["pred"] == [c.id]


async def test_priority_orders_handlers_of_one_event_and_unregister_removes() -> None:
    bus = EventBus()
    order: list[str] = []

    class Low(BaseHandler):
        priority = -5

        async def handle(self, event: Event) -> None:
            order.append("low")

    class High(BaseHandler):
        priority = 10

        async def handle(self, event: Event) -> None:
            order.append("high")

    bus.register(Low())
    bus.register(High())

    @bus.subscribe()
    async def middle(e: Event) -> None:
        order.append("middle")

    async with bus:
        await bus.publish(ev())
        assert order == ["high", "middle", "low"]
        bus.unregister("High")
        order.clear()
        result = await bus.publish(ev())
    assert order == ["middle", "low"]
    assert result.handled == 2


async def test_class_handlers_get_lifecycle_calls() -> None:
    calls: list[str] = []

    class Life(BaseHandler):
        event_types = ("x.*",)

        async def on_start(self) -> None:
            calls.append("start")

        async def handle(self, event: Event) -> None:
            calls.append("handle")

        async def on_stop(self) -> None:
            calls.append("stop")

    bus = EventBus()
    bus.register(Life())
    async with bus:
        await bus.publish(ev("x.y"))
    assert calls == ["start", "handle", "stop"]


async def test_on_stop_is_bounded_by_the_handlers_stop_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # STOP_GRACE bounds on_stop by default (here 0.1 s instead of 2 s, so the test is quick); a handler
    # with a longer stop_timeout gets that instead, and one that overruns its bound is abandoned.
    import pywats_events.bus as bus_module

    monkeypatch.setattr(bus_module, "STOP_GRACE", 0.1)
    finished: list[str] = []

    class SlowStop(BaseHandler):
        event_types = ("x.*",)

        async def handle(self, event: Event) -> None:
            return None

        async def on_stop(self) -> None:
            await asyncio.sleep(0.4)
            finished.append(self.name)

    patient = SlowStop()
    patient.name, patient.stop_timeout = "patient", 3.0
    hasty = SlowStop()
    hasty.name = "hasty"
    bus = EventBus(emit_system_events=False)
    bus.register(patient)
    bus.register(hasty)
    async with bus:
        await bus.publish(ev("x.y"))
    assert finished == ["patient"]


def test_registration_errors_are_specific() -> None:
    bus = EventBus()

    async def h(e: Event) -> None:
        pass

    bus.register(h, name="h")
    with pytest.raises(HandlerRegistrationError, match="already registered"):
        bus.register(h, name="h")
    with pytest.raises(HandlerRegistrationError, match="severity"):
        bus.register(h, name="h2", min_severity="loud")
    with pytest.raises(HandlerRegistrationError, match="whitespace"):
        bus.register(h, name="h3", event_types=["bad pattern"])
    with pytest.raises(HandlerRegistrationError, match="callable"):
        bus.register(42, name="h4")  # type: ignore[arg-type]


async def test_sync_handlers_run_in_a_worker_thread_not_on_the_loop() -> None:
    bus = EventBus()
    loop_thread = threading.get_ident()
    threads: list[int] = []

    @bus.subscribe()
    def blocking(e: Event) -> None:
        time.sleep(0.05)  # would stall every other handler if run on the loop
        threads.append(threading.get_ident())

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    async with bus:
        t = asyncio.create_task(ticker())
        await bus.publish(ev())
        t.cancel()
    assert threads and threads[0] != loop_thread
    assert ticks >= 3  # the loop kept running while the handler slept


async def test_same_ordering_key_is_handled_in_arrival_order_across_lanes() -> None:
    bus = EventBus(concurrency=8)
    seen: dict[str, list[int]] = {}

    @bus.subscribe("test.*")
    async def record(e: Event) -> None:
        await asyncio.sleep(0.001 * (e.payload["n"] % 3))  # uneven durations would reorder a free-for-all
        seen.setdefault(e.source, []).append(e.payload["n"])

    mock = MockTransport()
    bus.add_transport(mock)
    async with bus:
        futures = [await mock.inject_nowait((ev(source=f"st-{n % 4}", payload={"n": n}),)) for n in range(200)]
        await asyncio.gather(*futures)
    for source, ns in seen.items():
        assert ns == sorted(ns), source
    assert sum(len(v) for v in seen.values()) == 200


async def test_different_keys_run_concurrently_up_to_the_limit() -> None:
    bus = EventBus(concurrency=4)
    running = 0
    peak = 0

    @bus.subscribe("test.*")
    async def slow(e: Event) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    mock = MockTransport()
    bus.add_transport(mock)
    async with bus:
        start = time.monotonic()
        futures = [await mock.inject_nowait((ev(source=f"st-{n}"),)) for n in range(64)]
        await asyncio.gather(*futures)
        elapsed = time.monotonic() - start
    assert 2 <= peak <= 4
    assert elapsed < 64 * 0.05 / 2  # far faster than one at a time


async def test_backpressure_keeps_the_queue_bounded_while_a_fast_source_floods_a_slow_handler() -> None:
    bus = EventBus(concurrency=2, queue_size=16)
    handled = 0
    max_depth = 0

    @bus.subscribe("test.*")
    async def slow(e: Event) -> None:
        nonlocal handled, max_depth
        max_depth = max(max_depth, bus.queue_depth())
        await asyncio.sleep(0.002)
        handled += 1

    mock = MockTransport()
    bus.add_transport(mock)
    async with bus:
        futures = []
        submitted_ahead = 0
        for n in range(400):
            futures.append(await mock.inject_nowait((ev(source=f"st-{n % 7}"),)))
            submitted_ahead = max(submitted_ahead, len(futures) - handled)
            max_depth = max(max_depth, bus.queue_depth())
        results = await asyncio.gather(*futures)
    assert handled == 400 and all(r.handled == 1 for r in results)  # nothing dropped
    assert max_depth <= 16
    # the source could never get more than the queue bound plus the events being handled ahead
    assert submitted_ahead <= 16 + 2 + 1


async def test_idempotency_records_make_a_redelivered_message_a_no_op_for_finished_handlers() -> None:
    bus = EventBus()
    calls: list[str] = []

    @bus.subscribe("test.*", name="a")
    async def a(e: Event) -> None:
        calls.append("a")

    @bus.subscribe("test.*", name="b")
    async def b(e: Event) -> None:
        calls.append("b")

    mock = MockTransport()
    bus.add_transport(mock)
    event = ev()
    async with bus:
        first = await mock.inject(event)
        again = await mock.inject(event, redelivered=True)

        # a handler registered later still gets the redelivered copy
        @bus.subscribe("test.*", name="c")
        async def c(e: Event) -> None:
            calls.append("c")

        third = await mock.inject(event, redelivered=True)
    assert (first.handled, again.handled, again.skipped) == (2, 0, 2)
    assert (third.handled, third.skipped) == (1, 2)
    assert calls == ["a", "b", "c"]


async def test_unrouted_events_are_counted_and_settled() -> None:
    bus = EventBus()

    @bus.subscribe("asset.*")
    async def h(e: Event) -> None:
        pass

    async with bus:
        result = await bus.publish(ev("test.result"), ev("asset.fault"))
    assert (result.events, result.unrouted, result.handled) == (2, 1, 1)


async def test_submit_refuses_work_when_the_bus_is_not_running() -> None:
    bus = EventBus()
    with pytest.raises(BusClosedError):
        await bus.publish(ev())


async def test_stop_drains_queued_work_within_the_timeout() -> None:
    bus = EventBus(concurrency=1)
    done: list[int] = []

    @bus.subscribe("test.*")
    async def h(e: Event) -> None:
        await asyncio.sleep(0.01)
        done.append(e.payload["n"])

    mock = MockTransport()
    bus.add_transport(mock)
    await bus.start()
    futures = [await mock.inject_nowait((ev(payload={"n": n}),)) for n in range(20)]
    await bus.stop(drain_timeout=5)
    assert done == list(range(20))
    assert all(f.done() and f.result().handled == 1 for f in futures)


async def test_transport_state_changes_become_system_events_and_readiness() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []

    @bus.subscribe("system.transport_*")
    async def watch(e: Event) -> None:
        seen.append((e.type, e.payload["new_state"]))

    mock = MockTransport("line1")
    bus.add_transport(mock)
    async with bus:
        await wait_for(lambda: ("system.transport_connected", "connected") in seen)
        assert bus.readiness()[0] is True
        await mock.simulate_disconnect("broker went away")
        ready, details = bus.readiness()
        assert ready is False and "transport line1: reconnecting" in details["not_ready"]
        await wait_for(lambda: ("system.transport_disconnected", "reconnecting") in seen)
        await mock.simulate_reconnect()
        await wait_for(lambda: seen.count(("system.transport_connected", "connected")) == 2)
        assert bus.readiness()[0] is True
        await mock.simulate_error("certificate expired")
        await wait_for(lambda: ("system.transport_error", "error") in seen)
    assert mock.state is TransportState.DISCONNECTED


async def test_metrics_count_what_happened() -> None:
    bus = EventBus()

    @bus.subscribe()
    async def h(e: Event) -> None:
        pass

    mock = MockTransport()
    bus.add_transport(mock)
    async with bus:
        for _ in range(3):
            await mock.inject(ev())
        await mock.inject_raw(b"\xff\xfe not json")
        text = bus.metrics.render().decode()
    assert 'pywats_events_received_total{transport="mock",type="test.result"} 3.0' in text
    assert 'pywats_deliveries_handled_total{handler="h"}' in text
    assert 'pywats_raw_dead_lettered_total{transport="mock"} 1.0' in text
    assert 'pywats_handler_duration_seconds_count{handler="h"}' in text
    assert 'pywats_breaker_state{handler="h"} 0.0' in text
    assert "pywats_queue_capacity 4096.0" in text


async def test_a_submit_cancelled_half_way_never_settles_its_message() -> None:
    bus = EventBus(concurrency=1, queue_size=2)
    release = asyncio.Event()

    @bus.subscribe("test.*")
    async def blocked(e: Event) -> None:
        await release.wait()

    async with bus:
        first = await bus.submit([ev(), ev()])  # fills the only lane (one running, one queued... then full)
        second = await bus.submit([ev()])
        assert bus.saturated
        task = asyncio.create_task(bus.submit([ev(), ev(), ev()]))
        await asyncio.sleep(0.05)
        assert not task.done()  # waiting for room: backpressure
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert (await first).handled == 2 and (await second).handled == 1
    assert not bus.saturated


async def test_saturated_reports_one_full_lane() -> None:
    bus = EventBus(concurrency=4, queue_size=8)  # two slots per lane
    release = asyncio.Event()

    @bus.subscribe("test.*")
    async def blocked(e: Event) -> None:
        await release.wait()

    async with bus:
        futures = [await bus.submit([ev(source="one-station")]) for _ in range(3)]
        assert bus.queue_depth() == 2 and bus.saturated  # the other lanes are empty, this one is full
        release.set()
        await asyncio.gather(*futures)
