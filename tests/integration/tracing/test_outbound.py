"""Outbound context while tracing (issue 18.2 injection): the WATS client's requests are CLIENT spans under
the delivery's process span and carry their context to a real HTTP server; the helper a transport's
``send`` calls injects the current span; JSON log lines written during a delivery get its span id."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pywats_events import Event, EventBus, MockTransport, tracing
from pywats_events.logging_setup import JSONFormatter
from pywats_wats.client import WatsClient
from pywats_wats.errors import WatsUnavailableError

from .conftest import Spans, hex_span, hex_trace

_otel = pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")
SpanKind, StatusCode = _otel.SpanKind, _otel.StatusCode
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_wats_client_requests_are_client_spans_under_the_process_span(spans: Spans, start_app: Any) -> None:
    received: list[dict[str, str]] = []

    async def any_path(request: Request) -> JSONResponse:
        received.append(dict(request.headers))
        status = 503 if request.url.path.endswith("/down") else 200
        return JSONResponse([], status_code=status)

    url = await start_app(Starlette(routes=[Route("/{path:path}", any_path, methods=["GET", "POST"])]))
    client = WatsClient(url, "token")
    bus = EventBus()
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    failures: list[Exception] = []

    @bus.subscribe("test.result", name="wats", retry=None)
    async def to_wats(event: Event) -> None:
        await client.request("GET", "/api/App/Processes")
        try:
            await client.request("GET", "/api/down")
        except WatsUnavailableError as exc:
            failures.append(exc)

    body = json.dumps({"id": "ev-1", "type": "test.result", "source": "st"}).encode()
    async with bus:
        await mock.inject_raw(body, headers={"traceparent": TRACEPARENT})
    await client.aclose()
    (process,) = spans.named("process")
    ok, down = sorted(spans.named("GET"), key=lambda s: s.start_time)
    for span in (ok, down):
        assert span.kind is SpanKind.CLIENT and span.parent.span_id == process.context.span_id
        assert hex_trace(span) == hex_trace(process)
    assert ok.attributes["url.full"] == f"{url}/api/App/Processes"
    assert ok.attributes["http.response.status_code"] == 200 and ok.status.status_code is StatusCode.UNSET
    assert down.attributes["http.response.status_code"] == 503 and down.status.status_code is StatusCode.ERROR
    assert [h["traceparent"] for h in received] == [f"00-{hex_trace(s)}-{hex_span(s)}-01" for s in (ok, down)]
    assert failures and "503" in str(failures[0])


async def test_the_send_helper_injects_the_current_span_over_the_events_own_context(spans: Spans) -> None:
    event = Event(type="test.result", headers={"traceparent": TRACEPARENT})
    with tracing.producer_span("nats", "line.results", event) as produced:
        carrier: dict[str, Any] = {"Nats-Msg-Id": event.id, "TraceParent": "00-stale"}
        tracing.inject(carrier, event)
    (producer,) = spans.named("send line.results")
    assert carrier["traceparent"] == produced["traceparent"]
    assert carrier["traceparent"].startswith(f"00-{hex_trace(producer)}-{hex_span(producer)}-")
    assert "TraceParent" not in carrier and carrier["Nats-Msg-Id"] == event.id
    # (no current span: the event's own context is passed through)
    assert tracing.outbound_headers(event) == {"traceparent": TRACEPARENT}


async def test_json_log_lines_of_a_delivery_get_the_process_span_id(spans: Spans) -> None:
    records: list[dict[str, Any]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(json.loads(JSONFormatter().format(record)))

    keep = Keep()
    keep.addFilter(tracing.DeliveryContextFilter())
    logger = logging.getLogger("line.test")
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    tracing.enable_log_context()
    try:
        bus = EventBus()
        mock = bus.add_transport(MockTransport("line", decoder="event-json"))
        bus.subscribe("test.result", name="talks")(lambda event: logger.info("unit %s", event.id))
        async with bus:
            body = json.dumps({"id": "ev-9", "type": "test.result", "source": "st"}).encode()
            await mock.inject_raw(body, headers={"traceparent": TRACEPARENT})
    finally:
        tracing.disable_log_context()
        logger.removeHandler(keep)
    (process,) = spans.named("process")
    (line,) = records
    assert line["event_id"] == "ev-9" and line["handler"] == "talks" and line["transport"] == "line"
    assert line["trace_id"] == hex_trace(process) and line["span_id"] == hex_span(process)
