"""Prometheus metrics of one bus (prometheus-client), in a registry of its own.

Names: ``pywats_events_received_total{transport,type}``, ``pywats_deliveries_handled_total{handler}``,
``pywats_deliveries_retried_total{handler}``, ``pywats_deliveries_dead_lettered_total{handler,reason}``,
``pywats_deliveries_skipped_total{handler}`` (idempotent no-ops), ``pywats_handler_duration_seconds{handler}``,
``pywats_breaker_state{handler}`` (0 closed, 1 half-open, 2 open), ``pywats_queue_depth``,
``pywats_queue_capacity``, ``pywats_transport_state{transport,state}`` (1 for the current state),
``pywats_raw_dead_lettered_total{transport}`` (undecodable input).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .breaker import BreakerState
from .transports.base import TransportState

__all__ = ["BusMetrics"]

_BREAKER_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class BusMetrics:
    """Counters, gauges and histograms of one bus; ``render()`` gives the Prometheus text format.

    Args:
        queue_depth: callable returning the number of queued events (read at scrape time).
        queue_capacity: the bus's queue bound, in events.
    """

    def __init__(self, queue_depth: Callable[[], int], queue_capacity: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(
            "pywats_events_received", "Events received, by transport and type", ["transport", "type"], registry=r
        )
        self.handled = Counter("pywats_deliveries_handled", "Deliveries that succeeded", ["handler"], registry=r)
        self.retried = Counter("pywats_deliveries_retried", "Retry attempts", ["handler"], registry=r)
        self.skipped = Counter(
            "pywats_deliveries_skipped", "Deliveries skipped by idempotency records", ["handler"], registry=r
        )
        self.dead_lettered = Counter(
            "pywats_deliveries_dead_lettered",
            "Deliveries moved to the dead-letter queue",
            ["handler", "reason"],
            registry=r,
        )
        self.raw_dead_lettered = Counter(
            "pywats_raw_dead_lettered", "Undecodable inputs stored as raw dead letters", ["transport"], registry=r
        )
        self.duration = Histogram(
            "pywats_handler_duration_seconds",
            "Handler call duration in seconds",
            ["handler"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.breaker_state = Gauge(
            "pywats_breaker_state", "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["handler"], registry=r
        )
        self.transport_state = Gauge(
            "pywats_transport_state", "1 for the transport's current state", ["transport", "state"], registry=r
        )
        depth = Gauge("pywats_queue_depth", "Events queued in the bus", registry=r)
        depth.set_function(lambda: float(queue_depth()))
        Gauge("pywats_queue_capacity", "Bound of the bus queue, in events", registry=r).set(queue_capacity)
        self._received_children: dict[tuple[str, str], Counter] = {}
        self._handler_children: dict[str, tuple[Counter, Histogram]] = {}

    def count_received(self, transport: str, event_type: str) -> None:
        """One event received."""
        key = (transport, event_type)
        child = self._received_children.get(key)
        if child is None:
            if len(self._received_children) > 5000:  # bound label cardinality on unbounded type names
                key = (transport, "other")
            child = self._received_children[key] = self.received.labels(*key)
        child.inc()

    def observe_handled(self, handler: str, seconds: float) -> None:
        """One successful call of ``handler`` that took ``seconds``."""
        pair = self._handler_children.get(handler)
        if pair is None:
            pair = self._handler_children[handler] = (self.handled.labels(handler), self.duration.labels(handler))
        pair[0].inc()
        pair[1].observe(seconds)

    def set_breaker(self, handler: str, state: BreakerState) -> None:
        """Record the breaker state of ``handler``."""
        self.breaker_state.labels(handler).set(_BREAKER_VALUE[state])

    def set_transport(self, transport: str, state: TransportState) -> None:
        """Record the state of ``transport``."""
        for s in TransportState:
            self.transport_state.labels(transport, s.value).set(1 if s is state else 0)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
