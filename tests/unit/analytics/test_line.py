"""A generated 24-hour line (several stations, faults, retests) and a lab day: the engine and the bus
handler equal the brute-force computation, whatever the delivery order."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta

import pytest

from pywats_events import EventBus, MockTransport
from pywats_events.analytics import AnalyticsEngine, resolve_window
from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.analytics.testing import simulated_lab_day, simulated_line
from pywats_events.codec import DecodeContext
from pywats_events.lab import decode_lab_event, event_to_lab_message

from .brute_force import assert_matches, brute_force

LINE = simulated_line(stations=4, hours=24, seed=7)
START = LINE[0].timestamp.replace(hour=0, minute=0, second=0, microsecond=0)
END = START + timedelta(hours=24)


def _shuffled_with_duplicates(events: list, seed: int) -> list:
    rnd = random.Random(seed)
    mixed = events + rnd.sample(events, len(events) // 10)
    rnd.shuffle(mixed)
    return mixed


def test_generated_line_has_faults_retests_and_several_stations() -> None:
    types = {e.type for e in LINE}
    assert {"asset.fault", "asset.fault_cleared", "test.result", "production.work_completed"} <= types
    units = [e.payload["unit_id"] for e in LINE if e.type == "test.result"]
    assert len(units) > len(set(units)), "the line must retest some units"
    assert len({e.source for e in LINE}) == 4


@pytest.mark.parametrize("window", ["day", "shift", None])
def test_24_hour_line_report_equals_brute_force_with_shuffled_duplicate_delivery(window: str | None) -> None:
    engine = AnalyticsEngine(bucket_s=60, history_size=100_000)
    engine.apply_all(_shuffled_with_duplicates(LINE, 3))
    until = END - timedelta(hours=3) if window == "shift" else END
    w = resolve_window(until=until, window=window, now=END, bucket_s=60)
    report = engine.report(w)
    expected = brute_force(LINE, w.since_us, w.until_us, w.now_us)
    assert_matches(report, expected)
    for figures in report["assets"].values():
        assert figures["availability"] is not None and 0 < figures["availability"] <= 1
        assert figures["cycle_time_s"]["p50"] is not None
    tested = [a for a, f in report["assets"].items() if f["units_tested"]]
    assert tested and all(report["assets"][a]["first_pass_yield"] < 1 for a in tested)
    assert report["line"]["faults"] == sum(f["faults"] for f in report["assets"].values())


async def test_bus_handler_report_equals_engine_fed_directly() -> None:
    bus = EventBus(None, idempotency=False, emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    handler = AnalyticsHandler(history_size=100_000, persist=False)
    bus.register(handler)
    async with bus:
        result = await mock.inject_many(_shuffled_with_duplicates(LINE, 5))
    assert result.dead_lettered == 0
    w = resolve_window(until=END, window="day", now=END, bucket_s=60)
    assert_matches(handler.engine.report(w), brute_force(LINE, w.since_us, w.until_us, w.now_us))


def test_lab_day_utilization_and_error_rate_are_busy_and_error_time_over_total() -> None:
    day = simulated_lab_day(modules=3, hours=24, seed=4)
    # Through the lab decoder: each update posted as a lab event message, as an event service sends it.
    decoded = []
    for e in day:
        body = json.dumps(event_to_lab_message(e)).encode()
        decoded.extend(decode_lab_event(body, DecodeContext(origin="test")))
    assert [e.payload["new_category"] for e in decoded] == [e.payload["new_category"] for e in day]
    engine = AnalyticsEngine(bucket_s=60)
    engine.apply_all(decoded)
    end = day[-1].timestamp
    w = resolve_window(until=end + timedelta(minutes=1), now=end, bucket_s=60)
    report = engine.report(w)
    for module in {e.source for e in day}:
        mine = [e for e in day if e.source == module]
        busy = error = total = 0.0
        for a, b in zip(mine, [*mine[1:], None], strict=True):
            d = ((b.timestamp if b else end) - a.timestamp).total_seconds()
            total += d
            busy += d if a.payload["new_state_name"] == "Busy" else 0
            error += d if a.payload["new_state_name"] == "Error" else 0
        figures = report["assets"][module]
        assert figures["kind"] == "lab_module"
        assert figures["utilization"] == pytest.approx(busy / total, abs=1e-9)
        assert figures["error_rate"] == pytest.approx(error / total, abs=1e-9)
        assert 0 < figures["error_rate"] < figures["utilization"]


def test_lab_step_durations_are_busy_stays_and_follow_late_updates() -> None:
    day = simulated_lab_day(modules=2, hours=6, seed=9)
    rnd = random.Random(1)
    shuffled = day[:]
    rnd.shuffle(shuffled)
    engine = AnalyticsEngine(bucket_s=60)
    engine.apply_all(shuffled)
    end = day[-1].timestamp + timedelta(minutes=1)
    w = resolve_window(until=end, now=end, bucket_s=60)
    report = engine.report(w)
    for module in {e.source for e in day}:
        mine = [e for e in day if e.source == module]
        steps = sorted(
            (b.timestamp - a.timestamp).total_seconds()
            for a, b in itertools.pairwise(mine)
            if a.payload["new_state_name"] == "Busy"
        )
        figures = report["assets"][module]
        assert figures["cycles"] == len(steps) > 0
        assert figures["cycle_time_s"]["p50"] == pytest.approx(steps[(len(steps) + 1) // 2 - 1], abs=1e-6)
        assert engine.cycles.estimate(module, None, 1.0) == pytest.approx(steps[-1], abs=1e-6)
