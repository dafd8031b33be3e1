"""Prometheus metrics of one bus, exposed through prometheus-client from a registry of its own.

Names: ``pywats_events_received_total{transport,type}``, ``pywats_deliveries_handled_total{handler}``,
``pywats_deliveries_retried_total{handler}``, ``pywats_deliveries_dead_lettered_total{handler,reason}``,
``pywats_deliveries_skipped_total{handler}`` (idempotent no-ops), ``pywats_handler_duration_seconds{handler}``
(histogram), ``pywats_breaker_state{handler}`` (0 closed, 1 half-open, 2 open), ``pywats_queue_depth``,
``pywats_queue_capacity``, ``pywats_transport_state{transport,state}`` (1 for the current state),
``pywats_raw_dead_lettered_total{transport}`` (undecodable input).

The hot path only bumps plain integers in dicts; prometheus-client builds the metric families at scrape
time (a custom collector). A labelled prometheus ``Counter.inc`` takes a lock per call, which at tens of
thousands of events per second is a measurable share of the bus's own cost.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .breaker import BreakerState
from .transport import TransportState

__all__ = ["BusMetrics"]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}

#: Handler-duration histogram bucket upper bounds, in seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Distinct (transport, type) pairs counted before new types are counted as ``other``.
MAX_TYPE_LABELS = 5000


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(DURATION_BUCKETS) + 1)
        self.total = 0.0


class BusMetrics(Collector):
    """Counters, gauges and histograms of one bus; ``render()`` gives the Prometheus text format.

    Args:
        queue_depth: callable returning the number of queued events (read at scrape time).
        queue_capacity: the bus's queue bound, in events.
    """

    def __init__(self, queue_depth: Callable[[], int], queue_capacity: int) -> None:
        self._queue_depth = queue_depth
        self._queue_capacity = queue_capacity
        self.received: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.handled: defaultdict[str, int] = defaultdict(int)
        self.retried: defaultdict[str, int] = defaultdict(int)
        self.skipped: defaultdict[str, int] = defaultdict(int)
        self.dead_lettered: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.raw_dead_lettered: defaultdict[str, int] = defaultdict(int)
        self.durations: dict[str, _Histogram] = {}
        self.breaker_states: dict[str, BreakerState] = {}
        self.transport_states: dict[str, TransportState] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- recording (hot path) ----------------------------------------------------------------
    def count_received(self, transport: str, event_type: str) -> None:
        """One event received through ``transport``."""
        key = (transport, event_type)
        if key not in self.received and len(self.received) >= MAX_TYPE_LABELS:
            key = (transport, "other")
        self.received[key] += 1

    def observe_handled(self, handler: str, seconds: float) -> None:
        """One successful call of ``handler`` that took ``seconds``."""
        self.handled[handler] += 1
        h = self.durations.get(handler)
        if h is None:
            h = self.durations[handler] = _Histogram()
        h.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        h.total += seconds

    def count_retry(self, handler: str) -> None:
        """One retry attempt of ``handler``."""
        self.retried[handler] += 1

    def count_skipped(self, handler: str) -> None:
        """One delivery skipped because its idempotency record shows it already succeeded."""
        self.skipped[handler] += 1

    def count_dead_letter(self, handler: str, reason: str) -> None:
        """One delivery of ``handler`` dead-lettered for ``reason``."""
        self.dead_lettered[(handler, reason)] += 1

    def count_raw_dead_letter(self, transport: str) -> None:
        """One undecodable input from ``transport`` stored."""
        self.raw_dead_lettered[transport] += 1

    def set_breaker(self, handler: str, state: BreakerState) -> None:
        """Record the breaker state of ``handler``."""
        self.breaker_states[handler] = state

    def set_transport(self, transport: str, state: TransportState) -> None:
        """Record the state of ``transport``."""
        self.transport_states[transport] = state

    # -- exposition --------------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        """Build the metric families (called by prometheus-client at scrape time)."""
        c = CounterMetricFamily(
            "pywats_events_received", "Events received, by transport and type", labels=["transport", "type"]
        )
        for (t, ty), n in list(self.received.items()):
            c.add_metric([t, ty], n)
        yield c
        for name, doc, data in (
            ("pywats_deliveries_handled", "Deliveries that succeeded", self.handled),
            ("pywats_deliveries_retried", "Retry attempts", self.retried),
            ("pywats_deliveries_skipped", "Deliveries skipped by idempotency records", self.skipped),
        ):
            c = CounterMetricFamily(name, doc, labels=["handler"])
            for handler, n in list(data.items()):
                c.add_metric([handler], n)
            yield c
        c = CounterMetricFamily(
            "pywats_deliveries_dead_lettered", "Deliveries moved to the dead-letter queue", labels=["handler", "reason"]
        )
        for (h, r), n in list(self.dead_lettered.items()):
            c.add_metric([h, r], n)
        yield c
        c = CounterMetricFamily(
            "pywats_raw_dead_lettered", "Undecodable inputs stored as raw dead letters", labels=["transport"]
        )
        for t, n in list(self.raw_dead_lettered.items()):
            c.add_metric([t], n)
        yield c
        hist = HistogramMetricFamily(
            "pywats_handler_duration_seconds", "Handler call duration in seconds", labels=["handler"]
        )
        for handler, histogram in list(self.durations.items()):
            buckets, acc = [], 0
            for bound, n in zip((*DURATION_BUCKETS, float("inf")), histogram.counts, strict=True):
                acc += n
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), acc))
            hist.add_metric([handler], buckets, histogram.total)
        yield hist
        g = GaugeMetricFamily(
            "pywats_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", labels=["handler"]
        )
        for handler, bstate in list(self.breaker_states.items()):
            g.add_metric([handler], _BREAKER_VALUE[bstate])
        yield g
        g = GaugeMetricFamily(
            "pywats_transport_state", "1 for the transport's current state", labels=["transport", "state"]
        )
        for t, cur in list(self.transport_states.items()):
            for tstate in TransportState:
                g.add_metric([t, tstate.value], 1 if tstate is cur else 0)
        yield g
        yield GaugeMetricFamily("pywats_queue_depth", "Events queued in the bus", value=self._queue_depth())
        yield GaugeMetricFamily(
            "pywats_queue_capacity", "Bound of the bus queue, in events", value=self._queue_capacity
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
