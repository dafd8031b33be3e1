"""What every route of the app needs: the bus, the settings, the webhook transport, the status board and
the HTTP-layer metrics. Built once by ``create_app``."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from ..bus import EventBus
from ..status_board import StatusBoard
from ..transports.webhook import WebhookTransport
from .settings import HTTPSettings
from .webhook_signature import ReplayGuard

__all__ = ["HTTPContext", "HTTPMetrics"]


class HTTPMetrics:
    """HTTP-layer metrics, registered in the bus's registry so ``/metrics`` shows them with the bus's.

    ``pywats_http_requests_total{route,status}``, ``pywats_http_request_duration_seconds{route}``,
    ``pywats_http_rejected_total{route,reason}`` (``unauthorized``, ``forbidden``, ``too_large``,
    ``invalid``, ``saturated``, ``unavailable``).

    Use ``HTTPMetrics.for_registry``: a registry takes each metric name once, and several apps may be
    built on one bus (tests, reloads).
    """

    _by_registry: weakref.WeakKeyDictionary[CollectorRegistry, HTTPMetrics] = weakref.WeakKeyDictionary()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "pywats_http_requests",
            "HTTP requests answered, by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "pywats_http_request_duration_seconds",
            "Time from request start to answer, in seconds (ingest includes settlement)",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.rejected = Counter(
            "pywats_http_rejected",
            "Requests refused, by route and reason",
            ["route", "reason"],
            registry=registry,
        )

        # Label lookups cost more than the increments; the label sets are few and bounded.
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        """Count one answer on ``route`` with ``status`` that took ``seconds``."""
        pair = self._children.get((route, status))
        if pair is None:
            pair = self._children[(route, status)] = (
                self.requests.labels(route, str(status)),
                self.duration.labels(route),
            )
        pair[0].inc()
        pair[1].observe(seconds)

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
