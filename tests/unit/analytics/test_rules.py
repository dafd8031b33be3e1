"""The analytics rules at their edges: bad input is dead-lettered by name, too-late changes are refused,
the estimator's nearest-rank rule, windows, and null for what cannot be computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pywats_events import Event, EventBus, MockTransport
from pywats_events.analytics import (
    AnalyticsEngine,
    AnalyticsInputError,
    AnalyticsWindowError,
    TooLateError,
    parse_time,
    quantile,
    resolve_window,
)
from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.store import MemoryStore

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def state(asset: str, minutes: float, cat: str, eid: str | None = None) -> Event:
    return Event(
        id=eid or f"{asset}-{minutes}-{cat}",
        type="asset.state_changed",
        source=asset,
        timestamp=T0 + timedelta(minutes=minutes),
        payload={"asset_id": asset, "new_category": cat},
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (Event(type="asset.state_changed", source="s", payload={"new_category": "BUSY"}), "new_category"),
        (Event(type="test.result", source="s", payload={"result": "pass"}), "unit_id"),
        (Event(type="test.result", source="s", payload={"unit_id": "U1"}), "result"),
        (Event(type="production.work_started", source="s", payload={}), "transaction_id"),
    ],
)
async def test_unusable_payload_is_dead_lettered_naming_the_field(event: Event, field: str) -> None:
    store = MemoryStore()
    bus = EventBus(store, emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    bus.register(AnalyticsHandler(persist=False, observe=False))  # subscribed: the settle result counts it
    async with bus:
        result = await mock.inject(event)
        dead = await store.list_dead_letters(handler="analytics")
    assert result.dead_lettered == 1
    assert len(dead) == 1 and dead[0].attempts == 1  # unrecoverable: not retried
    assert f"payload.{field}" in dead[0].error_message and event.id in dead[0].error_message


def test_e10_code_without_category_gives_the_category() -> None:
    engine = AnalyticsEngine()
    engine.apply(Event(type="asset.state_changed", source="s", timestamp=T0, payload={"new_state": 5300}))
    assert engine.history.current("s").category == "USD"  # type: ignore[union-attr]


def test_change_older_than_the_kept_history_is_refused_and_counted() -> None:
    engine = AnalyticsEngine(history_size=3)
    for i, cat in enumerate(["SBY", "PRD", "SBY", "PRD"]):
        engine.apply(state("s", 10 + i, cat))
    with pytest.raises(TooLateError, match="rebuild"):
        engine.apply(state("s", 1, "USD"))
    # Within the kept history a late change still lands in its place.
    engine.apply(state("s", 12.5, "USD"))
    w = resolve_window(since=T0, until=T0 + timedelta(minutes=14), now=T0 + timedelta(minutes=14))
    r = engine.report(w)
    assert r["late_refused"] == 1
    assert r["assets"]["s"]["time_in_state_s"]["USD"] == 30.0
    assert r["assets"]["s"]["time_in_state_s"]["SBY"] == 90.0  # 10..11 and 12..12.5


def test_nothing_known_is_null_not_zero() -> None:
    engine = AnalyticsEngine()
    engine.apply(Event(type="test.result", source="ict", timestamp=T0, payload={"unit_id": "U", "result": "fail"}))
    w = resolve_window(until=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    f = engine.report(w)["assets"]["ict"]
    assert f["time_in_state_s"] is None and f["availability"] is None and f["utilization"] is None
    assert f["mtbf_s"] is None and f["mttr_s"] is None and f["cycle_time_s"] == {"p50": None, "p95": None}
    assert f["first_pass_yield"] == 0.0 and f["units_tested"] == 1


def test_retest_counts_first_pass_and_final_yield_by_time_not_arrival() -> None:
    engine = AnalyticsEngine()
    tr = [("a", 5, "pass"), ("b", 1, "fail"), ("c", 9, "pass")]  # arrival order differs from time order
    for eid, m, res in tr:
        engine.apply(
            Event(
                id=eid,
                type="test.result",
                source="ict",
                timestamp=T0 + timedelta(minutes=m),
                payload={"unit_id": "U1", "result": res, "recipe": "R1"},
            )
        )
    w = resolve_window(until=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    f = engine.report(w)["assets"]["ict"]
    assert (f["units_tested"], f["first_pass_yield"], f["final_yield"], f["retests"]) == (1, 0.0, 1.0, 2)
    assert f["yield_by"]["recipe"]["R1"]["first_pass_yield"] == 0.0


def test_quantile_is_nearest_rank_and_none_without_history() -> None:
    assert quantile([], 0.95) is None
    xs = [float(i) for i in range(1, 21)]  # 1..20
    assert quantile(xs, 0.95) == 19.0  # ceil(0.95 * 20) = 19th
    assert quantile(xs, 0.5) == 10.0
    assert quantile(xs, 1.0) == 20.0  # the longest seen
    assert quantile([7.0], 0.01) == 7.0
    with pytest.raises(ValueError, match="confidence"):
        quantile(xs, 0)


def test_estimator_uses_station_and_recipe_history() -> None:
    engine = AnalyticsEngine()
    assert engine.cycles.estimate("oven", "R1") is None
    for i, d in enumerate([60, 70, 80, 90, 600]):
        start = T0 + timedelta(hours=i)
        for type_, at in (
            ("production.work_started", start),
            ("production.work_completed", start + timedelta(seconds=d)),
        ):
            engine.apply(
                Event(
                    type=type_,
                    source="oven",
                    timestamp=at,
                    payload={"transaction_id": f"t{i}", "recipe": "R1" if d < 600 else "R2"},
                )
            )
    assert engine.cycles.estimate("oven", "R1", 0.95) == 90.0
    assert engine.cycles.estimate("oven", "R1", 0.5) == 70.0
    assert engine.cycles.estimate("oven", None, 1.0) == 600.0
    assert engine.cycles.estimate("oven", "R3") is None


def test_fault_pairs_out_of_order_give_mttr_mtbf_and_pareto() -> None:
    engine = AnalyticsEngine()
    engine.apply(state("m", 0, "PRD"))
    evs = [
        ("asset.fault_cleared", 20, "f1", None),
        ("asset.fault", 10, "f1", "E-JAM"),
        ("asset.fault", 30, "f2", "E-FEED"),
        ("asset.fault_cleared", 60, "f2", None),
        ("asset.fault", 30, "f2", "E-FEED"),  # redelivered copy under a new id: same fault
    ]
    for type_, m, fid, code in evs:
        engine.apply(
            Event(
                type=type_,
                source="m",
                timestamp=T0 + timedelta(minutes=m),
                payload={"asset_id": "m", "fault_id": fid, "code": code},
            )
        )
    w = resolve_window(since=T0, until=T0 + timedelta(minutes=120), now=T0 + timedelta(minutes=120))
    f = engine.report(w)["assets"]["m"]
    assert f["faults"] == 2 and f["repairs"] == 2
    assert f["mttr_s"] == (600 + 1800) / 2
    assert f["mtbf_s"] == 7200 / 2
    assert [t["code"] for t in f["top_faults"]] == ["E-FEED", "E-JAM"]
    with pytest.raises(AnalyticsInputError, match="before it occurred"):
        engine.apply(
            Event(type="asset.fault_cleared", source="m", timestamp=T0, payload={"asset_id": "m", "fault_id": "f3"})
        )
        engine.apply(
            Event(
                type="asset.fault",
                source="m",
                timestamp=T0 + timedelta(minutes=1),
                payload={"asset_id": "m", "fault_id": "f3"},
            )
        )


def test_windows_shift_day_and_errors() -> None:
    now = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    w = resolve_window(window="shift", now=now)
    assert w.to_json_dict()["since"] == "2026-03-02T14:00:00+00:00"
    w = resolve_window(window="shift", now=datetime(2026, 3, 2, 3, 0, tzinfo=UTC))
    assert w.to_json_dict()["since"] == "2026-03-01T22:00:00+00:00"
    assert resolve_window(window="day", now=now).to_json_dict()["since"] == "2026-03-02T00:00:00+00:00"
    with pytest.raises(AnalyticsWindowError, match="'week'"):
        resolve_window(window="week", now=now)
    with pytest.raises(AnalyticsWindowError, match="after"):
        resolve_window(since=now, until=now - timedelta(hours=1), now=now)
    with pytest.raises(AnalyticsWindowError, match="--since"):
        parse_time("yesterday", where="--since")
    assert parse_time("2026-03-02T06:00:00", where="x") == T0
    assert abs(parse_time("-1h", where="x") - (datetime.now(UTC) - timedelta(hours=1))) < timedelta(seconds=5)


def test_cycle_times_by_recipe_with_and_without_recipe() -> None:
    engine = AnalyticsEngine()
    for i, recipe in enumerate(["R1", None, "R2", "R1"]):
        payload = {"transaction_id": f"t{i}", **({"recipe": recipe} if recipe else {})}
        start = T0 + timedelta(minutes=10 * i)
        engine.apply(Event(type="production.work_started", source="oven", timestamp=start, payload=payload))
        engine.apply(
            Event(
                type="production.work_completed",
                source="oven",
                timestamp=start + timedelta(seconds=60 + i),
                payload=payload,
            )
        )
    w = resolve_window(until=T0 + timedelta(hours=1), now=T0 + timedelta(hours=1))
    f = engine.report(w)["assets"]["oven"]
    assert f["cycles"] == 4 and f["cycle_time_s"] == {"p50": 61.0, "p95": 63.0}
    assert f["cycle_time_by_recipe"] == {
        "R1": {"cycles": 2, "p50": 60.0, "p95": 63.0},
        "R2": {"cycles": 1, "p50": 62.0, "p95": 62.0},
    }
