"""``create_app``: the one Starlette app of the service (ingest, operations, status board, admin)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..bus import EventBus
from ..status_board import StatusBoard
from .analytics import analytics_routes
from .context import HTTPContext, HTTPMetrics
from .docs import docs_routes
from .ingest import post_cfx, post_event_service, post_events
from .operations import get_available, get_healthz, get_metrics, get_openapi, get_readyz, get_status
from .problem import problem
from .settings import HTTPSettings
from .webhook import WebhookTransport

__all__ = ["create_app", "find_status_board", "find_webhook_transport"]

log = logging.getLogger(__name__)

_KNOWN_PATHS = frozenset(
    {
        "/events",
        "/cfx",
        "/api/v2.0/EventService",
        "/healthz",
        "/readyz",
        "/metrics",
        "/status",
        "/status/available",
        "/openapi.json",
    }
)


def find_webhook_transport(bus: EventBus) -> WebhookTransport | None:
    """The first ``WebhookTransport`` attached to ``bus``, or ``None``."""
    for t in bus.transports.values():
        if isinstance(t, WebhookTransport):
            return t
    return None


def find_status_board(bus: EventBus) -> StatusBoard | None:
    """The first ``StatusBoard`` registered on ``bus``, or ``None``."""
    for sub in bus.registry:
        if isinstance(sub.handler, StatusBoard):
            return sub.handler
    return None


class _RequestMetrics:
    """Pure ASGI middleware counting answers by route and status (no per-request task, unlike
    ``BaseHTTPMiddleware``, which matters on the ingest path)."""

    def __init__(self, app: ASGIApp, metrics: HTTPMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = (
            path if path in _KNOWN_PATHS
            else "/admin" if path.startswith("/admin/")
            else "/console" if path == "/" or path.startswith("/console/")
            else "other"
        )  # fmt: skip
        status = [500]
        t0 = time.perf_counter()

        # A plain function handing back send's awaitable: no coroutine of its own per message.
        def send_wrapper(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe(route, status[0], time.perf_counter() - t0)


class _Endpoint:
    """A ``request -> response`` coroutine as a plain ASGI app, for the ingest routes. Starlette's
    ``request_response`` (what ``Route`` wraps a function in) adds an exception-handling layer of its own
    around each call, the same one ``ExceptionMiddleware`` already puts around the router: an exception
    here reaches the app's handlers through that one (problem details, 500 logged)."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Request], Awaitable[Response]]) -> None:
        self.func = func

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.func(Request(scope, receive, send))
        await response(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return problem(
        exc.status_code, exc.detail if isinstance(exc.detail, str) else None, headers=dict(exc.headers or {})
    )


async def _console_off(request: Request) -> Response:
    return problem(404, "the operator console is off; set [http.console] enabled = true and give it tokens")


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error; see the service log")


def create_app(bus: EventBus, settings: HTTPSettings | None = None) -> Starlette:
    """Build the HTTP app serving ``bus``.

    The bus's ``WebhookTransport`` receives the ingest routes (one named ``http`` is attached when the bus
    has none) and its ``StatusBoard`` serves ``/status`` (one is registered when there is none). HTTP
    metrics join the bus's Prometheus registry. The admin API is served only when
    ``settings.admin_token`` is set.

    Args:
        bus: the event bus (running or not; ingest answers 503 until it runs and the server serves).
        settings: HTTP settings (default ``HTTPSettings()``: environment, then defaults).

    Returns:
        A Starlette (ASGI) application; ``app.state.ctx`` is its ``HTTPContext``.
    """
    settings = settings or HTTPSettings()
    transport = find_webhook_transport(bus)
    if transport is None:
        transport = WebhookTransport("http")
        bus.add_transport(transport)
    board = find_status_board(bus)
    if board is None:
        board = StatusBoard()
        bus.register(board)
    metrics = HTTPMetrics.for_registry(bus.metrics.registry)
    routes: list[BaseRoute] = [
        Route("/events", _Endpoint(post_events), methods=["POST"]),
        Route("/cfx", _Endpoint(post_cfx), methods=["POST"]),
        Route("/api/v2.0/EventService", _Endpoint(post_event_service), methods=["POST"]),
        Route("/healthz", get_healthz, methods=["GET"]),
        Route("/readyz", get_readyz, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/status", get_status, methods=["GET"]),
        Route("/status/available", get_available, methods=["GET"]),
        Route("/openapi.json", get_openapi, methods=["GET"]),
        *analytics_routes(bus),
        *docs_routes(),
    ]
    for sub in bus.registry:  # plug-in handlers that serve routes (pywats_lab: containers, estimates)
        extra = getattr(sub.handler, "http_routes", None)
        routes.extend(extra() if callable(extra) else ())
    if settings.admin_token is not None:
        from ..admin import Admin
        from .admin import admin_routes

        routes.extend(admin_routes(Admin(bus)))
    if settings.console.enabled:
        from .console.views import console_routes

        routes.extend(console_routes(settings.console, bus))
    else:
        routes.append(Route("/", _console_off, methods=["GET"]))
    handlers: dict[Any, Any] = {HTTPException: _http_error, Exception: _internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.ctx = HTTPContext(bus=bus, settings=settings, transport=transport, board=board, metrics=metrics)
    app.add_middleware(_RequestMetrics, metrics=metrics)
    return app
