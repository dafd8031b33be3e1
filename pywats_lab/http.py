"""REST routes of the lab wing, mounted into the bus's HTTP app when a ``lab-status-db`` handler is registered.

The HTTP app asks each registered handler for ``http_routes()`` and ``openapi_paths()``; the
``lab-status-db`` handler answers with these. Read routes use the credentials of the ``status`` route
group (``[http.routes.status]``); errors are RFC 9457 problem documents.

=================================================  ===========================================================
``GET /api/v2.0/EventService/ServerTime``            ``{"serverTime": "...Z"}`` (``EventClient.get_server_time``)
``GET /lab/containers``                              every container on the platform
``GET /lab/containers/{barcode}``                    one container (404 when unknown)
``GET /lab/containers/{barcode}/history``            its steps in start order
``GET /lab/devices/{device}/positions``              ``[{"position", "empty", "container"}]`` (the document's shape)
``POST /lab/estimates``                              ``{"confidence", "steps": [...]}`` -> ``{"durations": [...]}``
=================================================  ===========================================================

A step of ``POST /lab/estimates`` is ``{"name", "device", "data": {"fct": ...}}``, or for a move
``{"kind": "move", "origin_device", "target_device", "device" (the arm, optional)}``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pywats_events import jsonsafe
from pywats_events.http.problem import problem
from pywats_events.http.security import check_bearer

from .clients import SERVER_TIME_PATH
from .structures import ContainerInfo, DeviceInfo, MoveStep, ProcessStep

if TYPE_CHECKING:
    from .handlers import LabStatusDBHandler

__all__ = ["lab_routes", "openapi_paths"]

#: Most steps one ``POST /lab/estimates`` may ask for (count).
MAX_ESTIMATE_STEPS = 1000


def _json(data: Any, status: int = 200) -> Response:
    return Response(jsonsafe.dumps(data), status, media_type="application/json")


def _container(c: ContainerInfo) -> dict[str, Any]:
    return {
        "barcode": c.barcode, "name": c.name, "device": c.current_device, "position": c.current_pos,
        "lidded": c.lidded, "filled": c.filled, "start_device": c.start_device, "start_position": c.start_pos,
    }


def _denied(request: Request) -> Response | None:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return None
    return check_bearer(request, ctx.settings.security("status").tokens)


def _step(item: Any, i: int) -> ProcessStep:
    where = f"steps[{i}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object, got {type(item).__name__}")
    data = item.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError(f"{where}.data: expected an object")
    if item.get("kind") == "move":
        origin, target = item.get("origin_device"), item.get("target_device")
        if not isinstance(origin, str) or not isinstance(target, str) or not origin or not target:
            raise ValueError(f"{where}: a move needs origin_device and target_device (strings)")
        return MoveStep(
            name=str(item.get("name") or "move"), main_device=DeviceInfo(str(item.get("device") or "transfer")),
            data=data or {"fct": "move"}, origin_device=DeviceInfo(origin), target_device=DeviceInfo(target),
        )
    device = item.get("device")
    if not isinstance(device, str) or not device:
        raise ValueError(f"{where}.device: required (the executing device's name)")
    if "fct" not in data:
        raise ValueError(f"{where}.data.fct: required (the step's function)")
    return ProcessStep(name=str(item.get("name") or data["fct"]), main_device=DeviceInfo(device), data=data)


def lab_routes(handler: LabStatusDBHandler) -> list[Route]:
    """The Starlette routes, answering from ``handler``'s status DB."""

    async def server_time(request: Request) -> Response:
        return _json({"serverTime": datetime.now(UTC).isoformat().replace("+00:00", "Z")})

    async def list_containers(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        items = [_container(c) for c in await handler.db.aio.get_containers()]
        return _json({"count": len(items), "items": items})

    async def get_container(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        barcode = request.path_params["barcode"]
        found = await handler.db.aio.get_cont_info_by_barcode(barcode)
        if found is None:
            return problem(404, f"no container with barcode {barcode!r} on the platform")
        return _json(_container(found))

    async def container_history(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        barcode = request.path_params["barcode"]
        records = await handler.db.aio.get_container_history(barcode)
        if not records and await handler.db.aio.get_cont_info_by_barcode(barcode) is None:
            return problem(404, f"no container with barcode {barcode!r} in the status DB")
        return _json({"barcode": barcode, "steps": [asdict(r) for r in records]})

    async def positions(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        device = request.path_params["device"]
        aio = handler.db.aio
        out = []
        for pos in await aio.get_all_positions(device):
            container = await aio.get_container_at_position(device, pos)
            barcode = container.barcode if container else None
            out.append({"position": pos, "empty": container is None, "container": barcode})
        return _json(out)

    async def estimates(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        try:
            body = jsonsafe.loads(await request.body() or b"null")
        except ValueError as exc:
            return problem(400, f"invalid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("steps"), list):
            return problem(400, "expected {\"steps\": [...], \"confidence\": 0.95}", field="steps")
        if len(body["steps"]) > MAX_ESTIMATE_STEPS:
            return problem(413, f"at most {MAX_ESTIMATE_STEPS} steps per request", field="steps")
        confidence = body.get("confidence", 0.95)
        if not isinstance(confidence, int | float) or isinstance(confidence, bool) or not 0 < confidence <= 1:
            return problem(400, "confidence must be a number in (0, 1]", field="confidence")
        try:
            steps = [_step(item, i) for i, item in enumerate(body["steps"])]
        except ValueError as exc:
            return problem(400, str(exc), field=str(exc).split(":", 1)[0])
        durations = await handler.db.aio.get_estimated_durations(steps, float(confidence))
        return _json({"confidence": confidence, "durations": durations})

    return [
        Route(SERVER_TIME_PATH, server_time, methods=["GET"]),
        Route("/lab/containers", list_containers, methods=["GET"]),
        Route("/lab/containers/{barcode}", get_container, methods=["GET"]),
        Route("/lab/containers/{barcode}/history", container_history, methods=["GET"]),
        Route("/lab/devices/{device}/positions", positions, methods=["GET"]),
        Route("/lab/estimates", estimates, methods=["POST"]),
    ]


_CONTAINER = {
    "type": "object",
    "properties": {
        "barcode": {"type": "string"}, "name": {"type": "string"}, "device": {"type": "string"},
        "position": {"type": "integer"}, "lidded": {"type": "boolean"}, "filled": {"type": "boolean"},
        "start_device": {"type": "string"}, "start_position": {"type": "integer"},
    },
}
_DATE_TIME = {"type": "string", "format": "date-time"}
_CONFIDENCE = {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1}
_PROBLEM = {"description": "problem", "content": {"application/problem+json": {"schema": {"type": "object"}}}}


def _ok(schema: dict[str, Any], what: str = "OK") -> dict[str, Any]:
    return {"description": what, "content": {"application/json": {"schema": schema}}}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_paths() -> dict[str, Any]:
    """The OpenAPI 3 ``paths`` of the routes above (merged into the app's ``/openapi.json``)."""
    step = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": ["process", "move"]}, "name": {"type": "string"},
            "device": {"type": "string"}, "data": {"type": "object"}, "origin_device": {"type": "string"},
            "target_device": {"type": "string"},
        },
    }
    return {
        SERVER_TIME_PATH: {
            "get": {
                "summary": "The server's current time (EventClient.get_server_time)",
                "responses": {"200": _ok({"type": "object", "properties": {"serverTime": _DATE_TIME}})},
            }
        },
        "/lab/containers": {
            "get": {"summary": "Containers on the platform", "responses": {"200": _ok({"type": "object"})}}
        },
        "/lab/containers/{barcode}": {
            "get": {
                "summary": "A container by barcode",
                "parameters": [_param("barcode")],
                "responses": {"200": _ok(_CONTAINER), "404": _PROBLEM},
            }
        },
        "/lab/containers/{barcode}/history": {
            "get": {
                "summary": "A container's steps in start order",
                "parameters": [_param("barcode")],
                "responses": {"200": _ok({"type": "object"}), "404": _PROBLEM},
            }
        },
        "/lab/devices/{device}/positions": {
            "get": {
                "summary": "Positions of a device, empty or holding a container",
                "parameters": [_param("device")],
                "responses": {"200": _ok({"type": "array", "items": {"type": "object"}})},
            }
        },
        "/lab/estimates": {
            "post": {
                "summary": "Duration estimates (seconds) at a confidence; null without matching history",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["steps"],
                                "properties": {
                                    "confidence": _CONFIDENCE,
                                    "steps": {"type": "array", "items": step, "maxItems": MAX_ESTIMATE_STEPS},
                                },
                            }
                        }
                    },
                },
                "responses": {"200": _ok({"type": "object"}), "400": _PROBLEM, "413": _PROBLEM},
            }
        },
    }
