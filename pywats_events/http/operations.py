"""Operations routes: ``/healthz``, ``/readyz``, ``/metrics``, ``/status``, ``/status/available``,
``/openapi.json``.

``/healthz`` answers 200 while the process serves HTTP (liveness). ``/readyz`` answers 200 only when
the bus runs and every transport is CONNECTED (``EventBus.readiness``), else 503 with ``not_ready``
listing what is not (readiness: take the instance out of the load balancer, do not restart it).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from .. import jsonsafe
from .context import HTTPContext
from .openapi import build_openapi
from .security import check_bearer

__all__ = ["get_available", "get_healthz", "get_metrics", "get_openapi", "get_readyz", "get_status"]


def _json(data: Any, status: int = 200) -> Response:
    return Response(jsonsafe.dumps(data), status, media_type="application/json")


def _ctx(request: Request) -> HTTPContext:
    ctx: HTTPContext = request.app.state.ctx
    return ctx


async def get_healthz(request: Request) -> Response:
    """Liveness: ``{"status": "ok"}``."""
    return _json({"status": "ok"})


async def get_readyz(request: Request) -> Response:
    """Readiness: 200 ``{"ready": true, ...}`` or 503 ``{"ready": false, "not_ready": [...], ...}``."""
    bus = _ctx(request).bus
    ready, details = bus.readiness()
    # The store's Alembic revision ("0001"; None for a memory store): which schema this instance runs on.
    details["schema_version"] = getattr(bus.store, "schema_version", None)
    return _json({"ready": ready, **details}, 200 if ready else 503)


async def get_metrics(request: Request) -> Response:
    """Prometheus text exposition of the bus's registry (bus and HTTP metrics)."""
    ctx = _ctx(request)
    denied = check_bearer(request, ctx.settings.security("metrics").tokens)
    if denied is not None:
        return denied
    return Response(ctx.bus.metrics.render(), 200, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_status(request: Request) -> Response:
    """The status board overview (``StatusBoard.overview``)."""
    ctx = _ctx(request)
    denied = check_bearer(request, ctx.settings.security("status").tokens)
    if denied is not None:
        return denied
    return _json(ctx.board.overview())


async def get_available(request: Request) -> Response:
    """Assets ready for work offering ``?capability=X`` (all ready ones without it)."""
    ctx = _ctx(request)
    denied = check_bearer(request, ctx.settings.security("status").tokens)
    if denied is not None:
        return denied
    capability = request.query_params.get("capability") or None
    items = [a.to_json_dict() for a in ctx.board.available(capability)]
    return _json({"capability": capability, "count": len(items), "items": items})


async def get_openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of this app."""
    ctx = _ctx(request)
    doc = build_openapi(ctx.settings)
    for sub in ctx.bus.registry:  # paths of plug-in handlers' routes (see create_app)
        extra = getattr(sub.handler, "openapi_paths", None)
        doc["paths"].update(extra() if callable(extra) else {})
    return _json(doc)
