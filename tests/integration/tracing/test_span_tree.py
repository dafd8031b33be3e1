"""The span tree of one CFX message end to end (issue 18.2), with the SDK's in-memory exporter: an HTTP
POST of an IPC-CFX envelope carrying a W3C ``traceparent`` to the webhook intake (a real uvicorn server)
→ the receive span (child of the remote parent) → a process span per (event, handler) → the HTTP
forwarder's CLIENT span, whose context reaches a real local HTTP server in the request's ``traceparent``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pywats_events import Event, EventBus
from pywats_events.http.client import EVENT_SERVICE_PATH, HttpForwarder
from tests.cfx_samples import SAMPLES
from tests.waiting import wait_for

from .conftest import Spans, hex_span, hex_trace

_otel = pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")
SpanKind, StatusCode = _otel.SpanKind, _otel.StatusCode

REMOTE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REMOTE_PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{REMOTE_TRACE}-{REMOTE_PARENT}-01"


def recorder_app(received: list[dict[str, str]]) -> Starlette:
    """A stand-in remote event service that keeps the headers of every request."""

    async def take(request: Request) -> JSONResponse:
        await request.body()
        received.append(dict(request.headers))
        return JSONResponse({"accepted": 1})

    return Starlette(routes=[Route(EVENT_SERVICE_PATH, take, methods=["POST"])])


async def test_cfx_post_with_traceparent_gives_receive_process_and_forwarder_spans_in_one_trace(
    spans: Spans, start_service: Any, start_app: Any
) -> None:
    received: list[dict[str, str]] = []
    remote = await start_app(recorder_app(received))
    bus = EventBus()
    seen: list[Event] = []

    @bus.subscribe("test.result", name="recorder")
    async def recorder(event: Event) -> None:
        seen.append(event)

    bus.register(HttpForwarder(remote, event_types=("test.result",)))
    service = await start_service(bus=bus)
    envelope = (SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json").read_bytes()
    answer = await service.client.post(
        "/cfx",
        content=envelope,
        headers={"content-type": "application/json", "traceparent": TRACEPARENT, "tracestate": "vendor=abc"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["settlement"]["handled"] == 4  # 2 units tested x (recorder, forwarder)
    await wait_for(lambda: len(spans.named("receive")) == 1)

    # receive: CONSUMER, child of the remote parent from the HTTP headers, tracestate kept.
    (receive,) = spans.named("receive")
    assert receive.kind is SpanKind.CONSUMER
    assert hex_trace(receive) == REMOTE_TRACE
    assert receive.parent is not None and receive.parent.is_remote
    assert format(receive.parent.span_id, "016x") == REMOTE_PARENT
    assert receive.context.trace_state.get("vendor") == "abc"
    assert receive.attributes["messaging.system"] == "http"
    assert receive.attributes["messaging.destination.name"] == "/cfx"
    assert receive.attributes["pywats.settle.handled"] == 4

    # process: one per (event, handler), children of the receive span, status OK.
    process = spans.named("process")
    assert sorted((s.attributes["messaging.message.id"], s.attributes["pywats.handler"]) for s in process) == sorted(
        (e.id, h) for e in seen for h in ("recorder", "http-forwarder")
    )
    assert len(process) == 4
    for span in process:
        assert span.kind is SpanKind.CONSUMER
        assert hex_trace(span) == REMOTE_TRACE
        assert span.parent is not None and span.parent.span_id == receive.context.span_id
        assert span.status.status_code is StatusCode.OK

    # The events carry the receive span's context in their headers (trace id kept for replays).
    for event in seen:
        assert event.headers["traceparent"] == f"00-{REMOTE_TRACE}-{hex_span(receive)}-01"
        assert event.headers["tracestate"] == "vendor=abc"

    # forwarder: a CLIENT span under each forwarder process span; the remote server got its context.
    clients = spans.named("POST")
    assert len(clients) == 2 and len(received) == 2
    forwarder_process = {s.context.span_id for s in process if s.attributes["pywats.handler"] == "http-forwarder"}
    assert {c.parent.span_id for c in clients if c.parent is not None} == forwarder_process
    sent = sorted(h["traceparent"] for h in received)
    assert sent == sorted(f"00-{REMOTE_TRACE}-{hex_span(c)}-01" for c in clients)
    assert all(h["tracestate"] == "vendor=abc" for h in received)
    for c in clients:
        assert c.kind is SpanKind.CLIENT
        assert c.attributes["http.response.status_code"] == 200
        assert c.attributes["url.full"] == remote + EVENT_SERVICE_PATH


async def test_cfx_post_without_traceparent_starts_a_trace_at_the_receive_span(
    spans: Spans, start_service: Any
) -> None:
    bus = EventBus()
    bus.subscribe("test.result", name="noop")(lambda event: None)
    service = await start_service(bus=bus)
    envelope = json.loads((SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__2.json").read_bytes())
    answer = await service.client.post("/cfx", json=envelope)
    assert answer.status_code == 200, answer.text
    await wait_for(lambda: len(spans.named("receive")) == 1 and len(spans.named("process")) == 1)
    (receive,) = spans.named("receive")
    (process,) = spans.named("process")
    assert receive.parent is None
    assert process.parent is not None and process.parent.span_id == receive.context.span_id


async def test_undecodable_cfx_post_ends_the_receive_span_in_error_naming_the_dead_letter(
    spans: Spans, start_service: Any
) -> None:
    service = await start_service(bus=EventBus())
    answer = await service.client.post(
        "/cfx", content=b'{"MessageName": "CFX.Nope", "broken', headers={"traceparent": TRACEPARENT}
    )
    assert answer.status_code == 400
    entry_id = answer.json()["dead_letter_id"]
    await wait_for(lambda: len(spans.named("receive")) == 1)
    (receive,) = spans.named("receive")
    assert hex_trace(receive) == REMOTE_TRACE
    assert receive.status.status_code is StatusCode.ERROR
    assert receive.attributes["pywats.dead_letter.id"] == entry_id
    entry = await service.bus.dead_letters.get(entry_id)
    assert entry.headers["traceparent"] == f"00-{REMOTE_TRACE}-{hex_span(receive)}-01"
