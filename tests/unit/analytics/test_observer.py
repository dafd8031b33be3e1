"""The analytics as a bus observer (the default, ``observe = true``): each event reaches the engine once
without a delivery of its own, figures equal those of the subscribed mode and the brute force, an unusable
event still becomes a dead letter of the ``analytics`` handler naming the field (replayable to it by
name), a failing engine never stops the bus, and the inbox stays bounded without dropping anything."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from pywats_events import Event, EventBus, MockTransport
from pywats_events.analytics import resolve_window
from pywats_events.analytics.handler import REPLAY_TYPE, AnalyticsHandler
from pywats_events.analytics.testing import simulated_line
from pywats_events.store import MemoryStore
from tests.unit.analytics.brute_force import assert_matches, brute_force

LINE = simulated_line(stations=3, hours=6, seed=5)


async def test_observed_figures_equal_subscribed_and_brute_force_without_a_second_delivery() -> None:
    reports = []
    for observe in (True, False):
        bus = EventBus(MemoryStore(), emit_system_events=False)
        mock = MockTransport()
        bus.add_transport(mock)
        seen: list[str] = []

        async def other(event: Event, seen: list[str] = seen) -> None:
            seen.append(event.id)

        bus.register(other, name="other", event_types=["*"])
        handler = AnalyticsHandler(persist=False, observe=observe)
        bus.register(handler)
        async with bus:
            result = await mock.inject_many(LINE)
            # Observing: one delivery per event (the other handler's); subscribed: two per analytics event.
            assert result.handled == (len(LINE) if observe else 2 * len(LINE))
            await mock.inject(LINE[3])  # a redelivered copy changes nothing
            end = LINE[-1].timestamp + timedelta(minutes=1)
            w = resolve_window(until=end, now=end, bucket_s=60)
            reports.append(handler.engine.report(w))
        assert len(seen) == len(LINE) + 1
    observed, subscribed = reports
    assert_matches(observed, brute_force(LINE, w.since_us, w.until_us, w.now_us))
    assert observed["assets"] == subscribed["assets"] and observed["line"] == subscribed["line"]


async def test_unusable_observed_event_is_dead_lettered_naming_the_field_and_replayable_by_name() -> None:
    store = MemoryStore()
    bus = EventBus(store, emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    handler = AnalyticsHandler(persist=False, apply_interval_s=0.02)
    bus.register(handler)
    bad = Event(type="test.result", source="s", payload={"result": "pass"})
    async with bus:
        result = await mock.inject(bad)
        assert result.dead_lettered == 0 and result.unrouted == 1  # the message settles without analytics
        for _ in range(200):  # the background task applies the inbox and writes the dead letter
            dead = await store.list_dead_letters(handler="analytics")
            if dead:
                break
            await asyncio.sleep(0.02)
        assert len(dead) == 1 and dead[0].attempts == 1 and dead[0].reason == "failed"
        assert "payload.unit_id" in dead[0].error_message and bad.id in dead[0].error_message
        assert dead[0].event is not None and dead[0].event.id == bad.id
        assert bus.metrics is not None and handler.dead_lettered == 1
        # Replay reaches the handler by name; the payload is still unusable, so the entry stays.
        assert await bus.dead_letters.replay(dead[0].id) is False
        assert len(await store.list_dead_letters(handler="analytics")) == 1
        ok = await mock.inject(LINE[0])  # the bus goes on
        assert ok.unrouted == 1
    assert handler.engine.events == 1
    assert handler.event_types == (REPLAY_TYPE,)


async def test_a_crashing_engine_is_a_dead_letter_not_a_stopped_bus(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    bus = EventBus(store, emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    handler = AnalyticsHandler(persist=False)
    bus.register(handler)

    def broken(event: Event) -> bool:
        raise RuntimeError("engine bug")

    # Every event type's reader crashes (the engine dispatches by type, in apply and apply_batch alike).
    monkeypatch.setattr(handler._engine, "_dispatch", dict.fromkeys(handler._engine._dispatch, broken))
    async with bus:
        result = await mock.inject_many(LINE[:5])
        assert result.unrouted == 5
    dead = await store.list_dead_letters(handler="analytics")  # written at stop at the latest
    assert len(dead) == 5 and {d.error_type for d in dead} == {"RuntimeError"}


async def test_backlog_bound_applies_on_the_spot_and_loses_nothing() -> None:
    bus = EventBus(MemoryStore(), emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    # A background interval longer than the test: only the bound makes the inbox apply.
    handler = AnalyticsHandler(persist=False, max_backlog=50, apply_interval_s=3600)
    bus.register(handler)
    async with bus:
        await mock.inject_many(LINE[:500])
        assert len(handler._inbox) <= 50
        assert handler._engine.events >= 450
        assert handler.engine.events == 500  # a read applies the rest first


@pytest.mark.parametrize("observe", [True, False])
async def test_refused_late_and_duplicate_events_are_counted_in_prometheus(observe: bool) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from pywats_events.analytics.gauges import AnalyticsGauges

    bus = EventBus(MemoryStore(), emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    handler = AnalyticsHandler(persist=False, observe=observe, history_size=3)
    bus.register(handler)
    registry = CollectorRegistry()
    AnalyticsGauges(handler).register(registry)
    states = [e for e in LINE if e.type == "asset.state_changed" and e.source == "Line1.Station0"][:5]
    async with bus:
        await mock.inject_many(states[1:])  # 4 changes, history_size 3: the oldest is dropped
        await mock.inject(states[0])  # older than the kept history: refused as late
        await mock.inject(states[4])  # a copy
        await mock.inject(Event(type="test.result", source="s", payload={"result": "pass"}))  # no unit id
        text = generate_latest(registry).decode()
    values = {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith("pywats_")}
    assert values["pywats_analytics_events_applied_total"] == 4
    assert values['pywats_analytics_events_refused_total{reason="late"}'] == 1
    assert values['pywats_analytics_events_refused_total{reason="unusable"}'] == 1
    assert values["pywats_analytics_duplicates_total"] == 1
    assert values["pywats_analytics_inbox_events"] >= 0


async def test_only_the_bus_loop_applies_the_inbox_a_scraper_thread_reads_as_of_the_last_apply() -> None:
    bus = EventBus(MemoryStore(), emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    handler = AnalyticsHandler(persist=False, apply_interval_s=3600)
    bus.register(handler)
    async with bus:
        await mock.inject_many(LINE[:20])
        assert await asyncio.to_thread(handler.catch_up) == 0 and len(handler._inbox) == 20
        assert handler.catch_up() == 20 and handler._engine.events == 20
