"""Prometheus gauges of the analytics, over the current shift, registered on the bus's registry.

Names (labels are bounded: ``asset`` is one of at most ``max_gauge_assets`` assets, sorted by id; further
assets are left out and counted in ``pywats_analytics_assets_not_exported``; ``category`` is one of the
six SEMI E10 categories):

- ``pywats_analytics_time_in_state_seconds{asset,category}``
- ``pywats_analytics_availability{asset}``, ``pywats_analytics_utilization{asset}``,
  ``pywats_analytics_error_rate{asset}``, ``pywats_analytics_first_pass_yield{asset}`` (0..1)
- ``pywats_analytics_faults{asset}`` (count), ``pywats_analytics_mtbf_seconds{asset}``,
  ``pywats_analytics_mttr_seconds{asset}``, ``pywats_analytics_cycle_time_p95_seconds{asset}``,
  ``pywats_analytics_oee{asset}``

Counts since the process started (no ``asset`` label):

- ``pywats_analytics_events_applied_total``: events that changed a figure;
- ``pywats_analytics_events_refused_total{reason}``: events the engine could not use and that were
  dead-lettered, ``reason`` ``unusable`` (a payload lacking what a figure needs, or an engine error) or
  ``late`` (a state change older than the history kept in memory);
- ``pywats_analytics_duplicates_total``: redelivered copies recognized and ignored;
- ``pywats_analytics_inbox_events`` (gauge): observed events waiting to be applied at scrape time.

A figure that cannot be computed has no sample (a missing series, not a false 0). Computed at scrape
time from the engine's buckets; the hot path pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .states import CATEGORIES
from .window import resolve_window

if TYPE_CHECKING:
    from .handler import AnalyticsHandler

__all__ = ["AnalyticsGauges"]

_SCALARS = (
    ("availability", "pywats_analytics_availability", "SEMI E10 operational availability this shift (0..1)"),
    ("utilization", "pywats_analytics_utilization", "SEMI E10 total utilization this shift (0..1)"),
    ("error_rate", "pywats_analytics_error_rate", "Share of time in unscheduled downtime this shift (0..1)"),
    ("first_pass_yield", "pywats_analytics_first_pass_yield", "First-pass yield this shift (0..1)"),
    ("faults", "pywats_analytics_faults", "Faults this shift (count)"),
    ("mtbf_s", "pywats_analytics_mtbf_seconds", "SEMI E10 MTBFp this shift, seconds"),
    ("mttr_s", "pywats_analytics_mttr_seconds", "Mean time to repair this shift, seconds"),
)


class AnalyticsGauges(Collector):
    """Collector exposing an ``AnalyticsHandler``'s figures (see the module docstring).

    Args:
        handler: the analytics handler.
    """

    def __init__(self, handler: AnalyticsHandler) -> None:
        self.handler = handler

    def register(self, registry: CollectorRegistry) -> None:
        """Add these gauges to ``registry`` (once per registry; a second call does nothing)."""
        if not getattr(registry, "_pywats_analytics", False):
            registry.register(self)
            registry._pywats_analytics = True  # type: ignore[attr-defined]

    def collect(self) -> Iterator[Metric]:
        """Build the gauge families (called by prometheus-client at scrape time)."""
        h = self.handler
        waiting = len(h._inbox)
        engine = h.engine  # applies the inbox first
        yield GaugeMetricFamily(
            "pywats_analytics_inbox_events", "Observed events waiting to be applied (count)", value=waiting
        )
        yield CounterMetricFamily(
            "pywats_analytics_events_applied", "Events that changed an analytics figure", value=engine.events
        )
        refused = CounterMetricFamily(
            "pywats_analytics_events_refused",
            "Events the analytics could not use, dead-lettered (unusable payload or engine error; late change)",
            labels=["reason"],
        )
        late = engine.history.too_late
        refused.add_metric(["unusable"], max(0, h.refused - late))
        refused.add_metric(["late"], late)
        yield refused
        yield CounterMetricFamily(
            "pywats_analytics_duplicates",
            "Redelivered copies recognized and ignored",
            value=engine.history.duplicates
            + engine.faults.duplicates
            + engine.yields.duplicates
            + engine.cycles.duplicates,
        )
        ids = engine.asset_ids()
        shown = ids[: h.max_gauge_assets]
        w = resolve_window(window="shift", bucket_s=engine.bucket_s, shift_starts=h.shift_starts)
        reports: dict[str, dict[str, Any]] = {a: engine.asset_report(a, w) for a in shown}
        tis = GaugeMetricFamily(
            "pywats_analytics_time_in_state_seconds",
            "Seconds in each SEMI E10 category this shift",
            labels=["asset", "category"],
        )
        for a, r in reports.items():
            if r["time_in_state_s"] is not None:
                for c in CATEGORIES:
                    tis.add_metric([a, c], r["time_in_state_s"][c])
        yield tis
        for key, name, doc in _SCALARS:
            g = GaugeMetricFamily(name, doc, labels=["asset"])
            for a, r in reports.items():
                if r[key] is not None:
                    g.add_metric([a], r[key])
            yield g
        g = GaugeMetricFamily(
            "pywats_analytics_cycle_time_p95_seconds", "95th percentile cycle time this shift", labels=["asset"]
        )
        for a, r in reports.items():
            if r["cycle_time_s"]["p95"] is not None:
                g.add_metric([a], r["cycle_time_s"]["p95"])
        yield g
        g = GaugeMetricFamily("pywats_analytics_oee", "OEE this shift (0..1)", labels=["asset"])
        for a, r in reports.items():
            if r["oee"] is not None and r["oee"]["oee"] is not None:
                g.add_metric([a], r["oee"]["oee"])
        yield g
        yield GaugeMetricFamily(
            "pywats_analytics_assets_not_exported",
            "Assets left out of the gauges by max_gauge_assets",
            value=len(ids) - len(shown),
        )
