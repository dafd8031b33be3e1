"""What every route of the app needs: the bus, the settings, the webhook transport, the status board and
the HTTP-layer metrics. Built once by ``create_app``."""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ..bus import EventBus
from ..status_board import StatusBoard
from .settings import HTTPSettings
from .webhook import WebhookTransport
from .webhook_signature import ReplayGuard

__all__ = ["HTTPContext", "HTTPMetrics"]


#: ``pywats_http_request_duration_seconds`` bucket upper bounds, in seconds.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class HTTPMetrics(Collector):
    """HTTP-layer metrics, registered in the bus's registry so ``/metrics`` shows them with the bus's.

    ``pywats_http_requests_total{route,status}``, ``pywats_http_request_duration_seconds{route}``,
    ``pywats_http_rejected_total{route,reason}`` (``unauthorized``, ``forbidden``, ``too_large``,
    ``invalid``, ``saturated``, ``unavailable``).

    Every answer is counted (``observe``): that bumps plain integers, and the request and duration families
    are built at scrape time (as ``BusMetrics`` does), since a labelled prometheus-client ``Counter.inc``
    and ``Histogram.observe`` take a lock each per request. Refusals are rare and stay a ``Counter``.

    Use ``HTTPMetrics.for_registry``: a registry takes each metric name once, and several apps may be
    built on one bus (tests, reloads).
    """

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, HTTPMetrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests: dict[tuple[str, int], int] = {}
        #: Per route: answers per duration bucket (the last one: beyond every bound), and their seconds summed.
        self._durations: dict[str, list[Any]] = {}
        self.rejected = Counter(
            "pywats_http_rejected",
            "Requests refused, by route and reason",
            ["route", "reason"],
            registry=registry,
        )
        registry.register(self)

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answer on ``route`` with ``status`` that took ``seconds``."""
        key = (route, status)
        requests = self._requests
        requests[key] = requests.get(key, 0) + 1
        h = self._durations.get(route)
        if h is None:
            h = self._durations[route] = [[0] * (len(DURATION_BUCKETS) + 1), 0.0]
        h[0][bisect_left(DURATION_BUCKETS, seconds)] += 1
        h[1] += seconds

    def collect(self) -> Iterator[Metric]:
        """Build the request and duration families (called by prometheus-client at scrape time)."""
        c = CounterMetricFamily(
            "pywats_http_requests", "HTTP requests answered, by route and status", labels=["route", "status"]
        )
        for (route, status), n in list(self._requests.items()):
            c.add_metric([route, str(status)], n)
        yield c
        hist = HistogramMetricFamily(
            "pywats_http_request_duration_seconds",
            "Time from request start to answer, in seconds (ingest includes settlement)",
            labels=["route"],
        )
        for route, (counts, total) in list(self._durations.items()):
            buckets, acc = [], 0
            for bound, n in zip((*DURATION_BUCKETS, float("inf")), counts, strict=True):
                acc += n
                buckets.append((floatToGoString(bound), acc))
            hist.add_metric([route], buckets, total)
        yield hist

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> HTTPMetrics:
        """The metrics of ``registry``, created on first use."""
        metrics = cls._by_registry.get(registry)
        if metrics is None:
            metrics = cls._by_registry[registry] = cls(registry)
        return metrics


@dataclass
class HTTPContext:
    """Shared state of one app (``request.app.state.ctx``)."""

    bus: EventBus
    settings: HTTPSettings
    transport: WebhookTransport
    board: StatusBoard
    metrics: HTTPMetrics
    #: Standard Webhooks ids accepted recently (replays answered 409).
    replay: ReplayGuard = field(default_factory=ReplayGuard)
