"""Property tests: the incremental engine equals a brute-force computation over the same event stream,
whatever the delivery order and however many duplicates arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats_events import Event
from pywats_events.analytics import AnalyticsEngine, resolve_window
from pywats_events.analytics.states import CATEGORIES

from .brute_force import assert_matches, brute_force

BASE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
STATIONS = ["SMT.Oven.SN1", "ICT.Tester.SN2", "Lab.Reader.M3"]
BUCKET_S = 60


def _at(offset_us: int) -> datetime:
    return BASE + timedelta(microseconds=offset_us)


offsets = st.integers(min_value=0, max_value=4 * 3600 * 1_000_000)


@st.composite
def streams(draw: st.DrawFn) -> list[Event]:
    events: list[Event] = []
    n = 0

    def ev(type_: str, source: str, at: int, payload: dict[str, object]) -> Event:
        nonlocal n
        n += 1
        return Event(id=f"e{n}", type=type_, source=source, timestamp=_at(at), payload=payload)

    for _ in range(draw(st.integers(0, 25))):
        s = draw(st.sampled_from(STATIONS))
        cat = draw(st.sampled_from(CATEGORIES))
        events.append(ev("asset.state_changed", s, draw(offsets), {"asset_id": s, "new_category": cat}))
    for i in range(draw(st.integers(0, 6))):
        s = draw(st.sampled_from(STATIONS))
        t0 = draw(offsets)
        events.append(ev("asset.fault", s, t0, {"asset_id": s, "fault_id": f"f{i}", "code": f"E{i % 3}"}))
        if draw(st.booleans()):
            d = draw(st.integers(0, 3600 * 1_000_000))
            events.append(ev("asset.fault_cleared", s, t0 + d, {"asset_id": s, "fault_id": f"f{i}"}))
    for _ in range(draw(st.integers(0, 15))):
        s = draw(st.sampled_from(STATIONS))
        unit = draw(st.sampled_from(["U1", "U2", "U3", "U4"]))
        result = draw(st.sampled_from(["pass", "fail"]))
        events.append(ev("test.result", s, draw(offsets), {"unit_id": unit, "result": result}))
    for i in range(draw(st.integers(0, 8))):
        s = draw(st.sampled_from(STATIONS))
        t0 = draw(offsets)
        d = draw(st.integers(0, 600 * 1_000_000))
        events.append(ev("production.work_started", s, t0, {"transaction_id": f"w{i}"}))
        events.append(ev("production.work_completed", s, t0 + d, {"transaction_id": f"w{i}", "result": "completed"}))
    # Out-of-order and duplicate delivery: any permutation, some events delivered again.
    order = draw(st.permutations(events))
    dups = draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    mixed = list(order)
    for d in dups:
        mixed.insert(draw(st.integers(0, len(mixed))), d)
    return mixed


windows = st.one_of(
    st.none(),
    st.tuples(st.integers(0, 4 * 60), st.integers(1, 5 * 60)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), windows, st.integers(0, 5 * 3600))
def test_every_figure_equals_brute_force_in_any_order_with_duplicates(
    events: list[Event], win: tuple[int, int] | None, now_s: int
) -> None:
    engine = AnalyticsEngine(bucket_s=BUCKET_S)
    engine.apply_all(events)
    now = BASE + timedelta(seconds=now_s)
    if win is None:
        w = resolve_window(until=BASE + timedelta(hours=6), now=now, bucket_s=BUCKET_S)
    else:
        start_min, length_min = win
        since = BASE + timedelta(minutes=start_min)
        w = resolve_window(since=since, until=since + timedelta(minutes=length_min), now=now, bucket_s=BUCKET_S)
    report = engine.report(w)
    assert_matches(report, brute_force(events, w.since_us, w.until_us, w.now_us))


@settings(max_examples=100, deadline=None)
@given(streams())
def test_delivery_order_does_not_change_the_report(events: list[Event]) -> None:
    w = resolve_window(until=BASE + timedelta(hours=6), now=BASE + timedelta(hours=5), bucket_s=BUCKET_S)
    forward, backward = AnalyticsEngine(bucket_s=BUCKET_S), AnalyticsEngine(bucket_s=BUCKET_S)
    forward.apply_all(events)
    backward.apply_all(reversed(events))
    a, b = forward.report(w), backward.report(w)
    a.pop("duplicates"), b.pop("duplicates")
    assert a == b
