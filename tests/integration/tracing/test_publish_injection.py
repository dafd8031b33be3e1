"""``pywats-events publish`` sends a W3C ``traceparent`` with every message (issue 18.2 injection): as an
AMQP header (real RabbitMQ), an MQTT 5 user property (real Mosquitto) and an HTTP header (a real local
server); the report names the trace id. With tracing on, it is the context of a PRODUCER span."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import aiomqtt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pywats_events import tracing
from pywats_events.commissioning.publish import load_message, publish_message
from pywats_events.config import load_settings

from .conftest import Spans, hex_span, hex_trace

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def settings(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "publish.toml"
    path.write_text(text)
    return load_settings(path)


@pytest.mark.usefixtures("rabbitmq")
async def test_amqp_publish_carries_a_traceparent_header_named_in_the_report(tmp_path: Path) -> None:
    exchange, queue = f"trace-test-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    cfg = settings(tmp_path, f'[[transports]]\nkind = "cfx"\nname = "line"\nexchange = "{exchange}"\n')
    conn = await aio_pika.connect(AMQP)
    async with conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, auto_delete=True)
        q = await ch.declare_queue(queue, auto_delete=True)
        await q.bind(ex, "#")
        report = await publish_message(cfg, "line", load_message(None, "fault"))
        message = await q.get(timeout=10)
        await message.ack()
    (trace_id,) = report["trace_ids"]
    assert trace_id is not None
    assert tracing.trace_id_of(message.headers) == trace_id
    assert message.headers["cfx-message"] == "CFX.ResourcePerformance.FaultOccurred"  # the others stay


@pytest.mark.usefixtures("mosquitto")
async def test_mqtt5_publish_carries_the_traceparent_as_a_user_property(tmp_path: Path) -> None:
    topic = f"pywats-trace-test/{uuid.uuid4().hex[:8]}/fault"
    cfg = settings(
        tmp_path, '[[transports]]\nkind = "mqtt"\nname = "sensors"\nrules = [{topic = "x/#", type = "x.y"}]\n'
    )
    ev = tmp_path / "ev.json"
    ev.write_text('{"type": "asset.fault", "source": "FCT1", "id": "ev-1"}')
    async with aiomqtt.Client("127.0.0.1", 1883, protocol=aiomqtt.ProtocolVersion.V5) as sub:
        await sub.subscribe(topic, qos=1)
        report = await publish_message(cfg, "sensors", load_message(ev, None), topic=topic)
        async with asyncio.timeout(10):
            message = await anext(aiter(sub.messages))
    user = dict(getattr(message.properties, "UserProperty", None) or [])
    (trace_id,) = report["trace_ids"]
    assert trace_id is not None and tracing.trace_id_of(user) == trace_id


async def _recorder(start_app: Any, received: list[dict[str, str]]) -> int:
    async def take(request: Request) -> JSONResponse:
        received.append(dict(request.headers))
        return JSONResponse({"accepted": 1, "event_ids": [], "settlement": {}})

    url = await start_app(Starlette(routes=[Route("/events", take, methods=["POST"])]))
    return int(url.rsplit(":", 1)[1])


async def test_http_publish_carries_a_fresh_traceparent_when_not_tracing(tmp_path: Path, start_app: Any) -> None:
    received: list[dict[str, str]] = []
    port = await _recorder(start_app, received)
    cfg = settings(tmp_path, f"[http]\nport = {port}\n")
    ev = tmp_path / "ev.json"
    ev.write_text('{"type": "asset.fault", "source": "FCT1"}')
    report = await publish_message(cfg, "http", load_message(ev, None))
    assert report["trace_id"] is not None
    assert tracing.trace_id_of(received[0]) == report["trace_id"]


async def test_http_publish_sends_the_producer_spans_context_when_tracing(
    tmp_path: Path, start_app: Any, spans: Spans
) -> None:
    received: list[dict[str, str]] = []
    port = await _recorder(start_app, received)
    cfg = settings(tmp_path, f"[http]\nport = {port}\n")
    ev = tmp_path / "ev.json"
    ev.write_text('{"type": "asset.fault", "source": "FCT1"}')
    report = await publish_message(cfg, "http", load_message(ev, None))
    (producer,) = spans.named("send")
    assert producer.kind.name == "PRODUCER"
    # (the flags byte is the SDK's: sampled, and random trace id where it sets W3C level 2's bit)
    assert received[0]["traceparent"].rsplit("-", 1)[0] == f"00-{hex_trace(producer)}-{hex_span(producer)}"
    assert report["trace_id"] == hex_trace(producer)
