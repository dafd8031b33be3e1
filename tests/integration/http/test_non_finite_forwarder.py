"""Non-finite numbers (issue 11.4) in the HTTP forwarder's requests: strict RFC 8259 JSON, NaN as "NaN"."""

from __future__ import annotations

from typing import Any

from pywats_events import EventBus
from pywats_events.http import HttpForwarder
from pywats_events.store import MemoryStore
from tests.integration.core.test_non_finite import EXPECTED, nan_event, strict


async def test_forwarder_body_is_strict_json(start_app: Any) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    bodies: list[bytes] = []

    async def endpoint(request: Request) -> JSONResponse:
        bodies.append(await request.body())
        return JSONResponse({"accepted": 1})

    url = await start_app(Starlette(routes=[Route("/api/v2.0/EventService", endpoint, methods=["POST"])]))
    bus = EventBus(MemoryStore())
    bus.register(HttpForwarder(url, name="fw"))
    async with bus:
        assert (await bus.publish(nan_event())).handled == 1
    (body,) = bodies
    assert strict(body)["data"] == EXPECTED
