"""Analytics routes: ``/analytics/report``, ``/analytics/assets/{asset}``, ``/analytics/history``,
``/analytics/estimate``, served from the bus's ``AnalyticsHandler`` (handler kind ``analytics``).

They use the ``status`` route group's credentials (the same audience as ``/status``). Without an
analytics handler on the bus they answer 404 with a problem saying how to add one. Mounting them also
registers the analytics gauges on the bus's Prometheus registry (``/metrics``).

Query parameters: ``since`` / ``until`` (ISO 8601, or ``-8h``), ``window`` (``shift`` or ``day``),
``asset``, ``state`` (a state name or SEMI E10 category), ``source`` (``memory`` or ``store`` for the
history), ``limit``, ``recipe``, ``confidence`` (0 < c <= 1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import jsonsafe
from ..analytics.errors import AnalyticsWindowError
from ..analytics.gauges import AnalyticsGauges
from ..analytics.handler import AnalyticsHandler
from ..analytics.states import epoch_us
from ..analytics.window import Window, parse_time, resolve_window
from ..bus import EventBus
from ..errors import StoreError
from .context import HTTPContext
from .problem import problem
from .security import check_bearer
from .settings import HTTPSettings

__all__ = ["analytics_paths", "analytics_routes", "find_analytics"]

_NOT_CONFIGURED = 'no analytics handler on this bus; add [[handlers]] kind = "analytics" to the configuration'


def find_analytics(bus: EventBus) -> AnalyticsHandler | None:
    """The first ``AnalyticsHandler`` registered on ``bus``, or ``None``."""
    for sub in bus.registry:
        if isinstance(sub.handler, AnalyticsHandler):
            return sub.handler
    return None


def _json(data: Any) -> Response:
    return Response(jsonsafe.dumps(data), 200, media_type="application/json")


def _window(request: Request, h: AnalyticsHandler) -> Window:
    q = request.query_params
    since = parse_time(q["since"], where="since") if q.get("since") else None
    until = parse_time(q["until"], where="until") if q.get("until") else None
    return resolve_window(
        since=since, until=until, window=q.get("window"), bucket_s=h.engine.bucket_s, shift_starts=h.shift_starts
    )


Endpoint = Callable[[Request, AnalyticsHandler], Awaitable[Response]]


def _guarded(bus: EventBus, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        ctx: HTTPContext = request.app.state.ctx
        denied = check_bearer(request, ctx.settings.security("status").tokens)
        if denied is not None:
            return denied
        h = find_analytics(bus)
        if h is None:
            return problem(404, _NOT_CONFIGURED)
        try:
            return await endpoint(request, h)
        except (AnalyticsWindowError, ValueError) as exc:
            return problem(400, str(exc))
        except StoreError as exc:
            return problem(503, str(exc))

    return route


async def _report(request: Request, h: AnalyticsHandler) -> Response:
    asset = request.query_params.get("asset")
    return _json(h.engine.report(_window(request, h), [asset] if asset else None))


async def _asset(request: Request, h: AnalyticsHandler) -> Response:
    asset = request.path_params["asset"]
    if asset not in h.engine.asset_ids():
        return problem(404, f"no analytics for asset {asset!r}")
    w = _window(request, h)
    return _json({"asset": asset, "window": w.to_json_dict(), **h.engine.asset_report(asset, w)})


async def _history(request: Request, h: AnalyticsHandler) -> Response:
    q = request.query_params
    limit = int(q.get("limit", "1000"))
    if not 1 <= limit <= 100_000:
        raise ValueError(f"limit must be 1..100000, got {limit}")
    since = parse_time(q["since"], where="since") if q.get("since") else None
    until = parse_time(q["until"], where="until") if q.get("until") else None
    source = q.get("source", "memory")
    now_us = epoch_us(parse_time("-0s", where="now"))
    if source == "store":
        if h.history_store is None:
            return problem(404, "the analytics history is not persisted (memory store, or persist = false)")
        rows = await h.history_store.intervals(
            q.get("asset"), state=q.get("state"), since=since, until=until, limit=limit
        )
    elif source == "memory":
        rows = []
        for iv in h.engine.history.intervals(
            q.get("asset"),
            state=q.get("state"),
            since_us=epoch_us(since) if since else None,
            until_us=epoch_us(until) if until else None,
        ):
            rows.append(iv)
            if len(rows) >= limit:
                break
    else:
        raise ValueError(f"source must be 'memory' or 'store', got {source!r}")
    return _json({"source": source, "items": [iv.to_json_dict(now_us) for iv in rows]})


async def _estimate(request: Request, h: AnalyticsHandler) -> Response:
    q = request.query_params
    asset = q.get("asset")
    if not asset:
        raise ValueError("asset is required")
    confidence = float(q.get("confidence", "0.95"))
    recipe = q.get("recipe") or None
    est = h.engine.cycles.estimate(asset, recipe, confidence)
    return _json({"asset": asset, "recipe": recipe, "confidence": confidence, "estimate_s": est})


def analytics_routes(bus: EventBus) -> list[Route]:
    """The routes above for ``bus``; registers the analytics gauges when the bus has the handler."""
    h = find_analytics(bus)
    if h is not None:
        AnalyticsGauges(h).register(bus.metrics.registry)
    return [
        Route("/analytics/report", _guarded(bus, _report), methods=["GET"]),
        Route("/analytics/assets/{asset:path}", _guarded(bus, _asset), methods=["GET"]),
        Route("/analytics/history", _guarded(bus, _history), methods=["GET"]),
        Route("/analytics/estimate", _guarded(bus, _estimate), methods=["GET"]),
    ]


def analytics_paths(settings: HTTPSettings) -> dict[str, Any]:
    """OpenAPI path items of the routes (security follows the ``status`` group)."""
    sec: list[dict[str, list[str]]] = [{"bearer": []}] if settings.security("status").tokens else []
    s = {"type": "string"}
    win = [
        {"name": "since", "in": "query", "schema": s, "description": "ISO 8601 or -<n>[smhd]"},
        {"name": "until", "in": "query", "schema": s, "description": "ISO 8601 or -<n>[smhd]"},
        {"name": "window", "in": "query", "schema": {"type": "string", "enum": ["shift", "day"]}},
    ]
    figures = {
        "type": "object",
        "description": "Per-asset figures; null when not computable",
        "properties": {
            "time_in_state_s": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"}},
            "availability": {"type": "number", "nullable": True},
            "utilization": {"type": "number", "nullable": True},
            "error_rate": {"type": "number", "nullable": True},
            "faults": {"type": "integer"},
            "mtbf_s": {"type": "number", "nullable": True},
            "mttr_s": {"type": "number", "nullable": True},
            "first_pass_yield": {"type": "number", "nullable": True},
            "units_tested": {"type": "integer"},
            "cycle_time_s": {
                "type": "object",
                "properties": {
                    "p50": {"type": "number", "nullable": True},
                    "p95": {"type": "number", "nullable": True},
                },
            },
        },
    }

    def prob(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }

    def op(summary: str, params: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "security": sec,
                "parameters": params,
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": schema}}},
                    "400": prob("Invalid parameter"),
                    "404": prob("No analytics handler, or unknown asset"),
                    "401": prob("Credentials missing"),
                    "403": prob("Credentials not accepted"),
                    "503": prob("The history store is unavailable"),
                },
            }
        }

    return {
        "/analytics/report": op(
            "Line and lab analytics over a window (SEMI E10 times, MTBF/MTTR, yield, cycle time, OEE)",
            [*win, {"name": "asset", "in": "query", "schema": s}],
            {"type": "object", "properties": {"assets": {"type": "object", "additionalProperties": figures}}},
        ),
        "/analytics/assets/{asset}": op(
            "Analytics of one asset over a window",
            [{"name": "asset", "in": "path", "required": True, "schema": s}, *win],
            figures,
        ),
        "/analytics/history": op(
            "Status history: state intervals with start, end and duration",
            [
                {"name": "asset", "in": "query", "schema": s},
                {"name": "state", "in": "query", "schema": s},
                {"name": "since", "in": "query", "schema": s},
                {"name": "until", "in": "query", "schema": s},
                {"name": "source", "in": "query", "schema": {"type": "string", "enum": ["memory", "store"]}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100000}},
            ],
            {"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}},
        ),
        "/analytics/estimate": op(
            "Expected cycle time at a confidence (nearest-rank quantile of history; null without history)",
            [
                {"name": "asset", "in": "query", "required": True, "schema": s},
                {"name": "recipe", "in": "query", "schema": s},
                {
                    "name": "confidence",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1},
                },
            ],
            {"type": "object", "properties": {"estimate_s": {"type": "number", "nullable": True}}},
        ),
    }
