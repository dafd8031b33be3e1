"""The engine's fast paths against their plain forms: bucket widths other than the default give the
brute-force figures (stays across many buckets set in one update; window sums by lookup, by filtering
and over whole dicts)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywats_events import Event
from pywats_events.analytics import AnalyticsEngine, resolve_window

from .brute_force import assert_matches, brute_force
from .test_properties import BASE, streams, windows


@pytest.mark.parametrize("bucket_s", [7, 1800])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=streams(), win=windows, now_s=st.integers(0, 5 * 3600))
def test_figures_equal_brute_force_at_other_bucket_widths(
    bucket_s: int, events: list[Event], win: tuple[int, int] | None, now_s: int
) -> None:
    # 7 s: most stays cross many buckets and windows hold many; 1800 s: most stays stay in one bucket.
    engine = AnalyticsEngine(bucket_s=bucket_s)
    engine.apply_all(events)
    now = BASE + timedelta(seconds=now_s)
    if win is None:
        w = resolve_window(until=BASE + timedelta(hours=6), now=now, bucket_s=bucket_s)
    else:
        since = BASE + timedelta(minutes=win[0])
        w = resolve_window(since=since, until=since + timedelta(minutes=win[1]), now=now, bucket_s=bucket_s)
    assert_matches(engine.report(w), brute_force(events, w.since_us, w.until_us, w.now_us))
