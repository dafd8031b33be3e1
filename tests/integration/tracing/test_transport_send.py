"""A transport's own ``send`` continues the trace (issue 18.2 injection): a handler that sends through the CFX
(real RabbitMQ), MQTT 5 (real Mosquitto) or NATS (real JetStream) transport inside a traced delivery makes a
PRODUCER span under the delivery's process span, and the message on the wire carries that span's W3C
``traceparent``; without tracing the event's own context is passed through. The bus's ``system.dead_letter``
notice carries the dead-lettered message's trace context."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aio_pika
import aiomqtt
import pytest

from pywats_events import Event, EventBus, MockTransport, RetryPolicy, Transport, tracing
from pywats_events.tracing import trace_id_of
from tests.integration.amqp.broker import AmqpNames, delete_names
from tests.integration.mqtt.broker import SHARED_PORT
from tests.integration.mqtt.conftest import Run as MqttRun
from tests.integration.nats.conftest import NATS_HOST, NATS_PORT
from tests.integration.nats.conftest import Run as NatsRun
from tests.services import AMQP_URL, MOSQUITTO, RABBITMQ, require_service

from .conftest import Spans, hex_span, hex_trace

pytestmark = [pytest.mark.services]

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACESTATE = "vendor=abc"


@pytest.fixture
async def amqp_names() -> AsyncIterator[AmqpNames]:
    require_service("RabbitMQ", RABBITMQ)
    tag = uuid.uuid4().hex[:10]
    names = AmqpNames(exchange=f"test-cfx-{tag}", queue=f"test-pywats-{tag}", handle=f"Test.Trace.{tag}")
    yield names
    await delete_names(names)


@pytest.fixture
def mqtt_run() -> Iterator[MqttRun]:
    require_service("Mosquitto", MOSQUITTO)
    run = MqttRun(SHARED_PORT)
    try:
        yield run
    finally:
        run.cleanup()


@pytest.fixture
async def nats_run() -> AsyncIterator[NatsRun]:
    require_service("NATS JetStream", (NATS_HOST, NATS_PORT))
    run = NatsRun(f"nats://{NATS_HOST}:{NATS_PORT}")
    try:
        yield run
    finally:
        await run.cleanup()


async def deliver_and_send(out: Transport, headers: dict[str, str]) -> Event:
    """Run a bus with ``out`` and a mock intake; one message with ``headers`` comes in, and its handler
    sends a new event through ``out.send``. Returns the event sent."""
    bus = EventBus()
    bus.add_transport(out)
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    sent = Event(type="trace.forwarded", source="ict-1", payload={"serial": "SN1"})

    @bus.subscribe("test.result", name="forward", retry=None)
    async def forward(event: Event) -> None:
        await out.send(sent)

    body = json.dumps({"id": "ev-in", "type": "test.result", "source": "ict-1"}).encode()
    async with bus:
        result = await mock.inject_raw(body, headers=headers)
    assert result.handled == 1, result
    return sent


def assert_child_of_the_delivery(spans: Spans, traceparent: str | None, system: str, destination: str) -> None:
    (process,) = spans.named("process forward")
    (producer,) = spans.named("send ")
    assert producer.kind.name == "PRODUCER" and producer.parent is not None
    assert producer.parent.span_id == process.context.span_id and hex_trace(producer) == hex_trace(process)
    assert hex_trace(process) == TRACEPARENT.split("-")[1]  # the incoming message's trace, continued
    assert producer.attributes["messaging.system"] == system
    assert producer.attributes["messaging.destination.name"] == destination
    assert traceparent is not None
    assert traceparent.rsplit("-", 1)[0] == f"00-{hex_trace(producer)}-{hex_span(producer)}"


# -- CFX / AMQP 0-9-1 (RabbitMQ) -------------------------------------------------------------------------
async def amqp_send(names: AmqpNames, headers: dict[str, str]) -> tuple[Event, aio_pika.abc.AbstractIncomingMessage]:
    from pywats_cfx import CFXTransport

    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        observer = await ch.declare_queue(f"{names.queue}.observer", auto_delete=True)
        await observer.bind(ex, "#")
        # (its own queue binds a key nothing is sent with: the observer alone receives the message)
        out = CFXTransport("cfx", **names.transport_options(binding_keys=["nothing.here"]))
        sent = await deliver_and_send(out, headers)
        message = await observer.get(timeout=10)
        await message.ack()
    return sent, message


async def test_cfx_send_in_a_traced_delivery_carries_the_producer_span_under_the_process_span(
    spans: Spans, amqp_names: AmqpNames
) -> None:
    sent, message = await amqp_send(amqp_names, {"traceparent": TRACEPARENT})
    assert message.message_id == sent.id and message.headers["pywats-event-type"] == "trace.forwarded"
    traceparent = message.headers.get("traceparent")
    assert_child_of_the_delivery(spans, str(traceparent), "rabbitmq", amqp_names.exchange)


async def test_cfx_send_without_tracing_passes_the_events_own_context_through(amqp_names: AmqpNames) -> None:
    assert not tracing.active
    _, message = await amqp_send(amqp_names, {"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    # (the sent event is new: it has no context of its own, so nothing is invented)
    assert "traceparent" not in message.headers


async def test_cfx_send_of_an_event_with_context_passes_it_through_without_tracing(amqp_names: AmqpNames) -> None:
    from pywats_cfx import CFXTransport

    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        ch = await conn.channel()
        ex = await ch.declare_exchange(amqp_names.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        observer = await ch.declare_queue(f"{amqp_names.queue}.observer", auto_delete=True)
        await observer.bind(ex, "#")
        out = CFXTransport("cfx", **amqp_names.transport_options(binding_keys=["nothing.here"]))
        bus = EventBus()
        bus.add_transport(out)
        event = Event(type="trace.forwarded", headers={"TraceParent": TRACEPARENT, "tracestate": TRACESTATE})
        async with bus:
            await out.send(event)
        message = await observer.get(timeout=10)
        await message.ack()
    assert message.headers["traceparent"] == TRACEPARENT and message.headers["tracestate"] == TRACESTATE


# -- MQTT 5 (Mosquitto) ----------------------------------------------------------------------------------
async def test_mqtt5_send_in_a_traced_delivery_carries_the_producer_span_as_a_user_property(
    spans: Spans, mqtt_run: MqttRun
) -> None:
    topic = f"{mqtt_run.prefix}/out/trace.forwarded"
    out = mqtt_run.transport(
        rules=[{"topic": f"{mqtt_run.prefix}/in/#", "type": "x.y"}],
        publish_topic=f"{mqtt_run.prefix}/out/{{type}}",
        publish_qos=1,
    )
    async with aiomqtt.Client("127.0.0.1", SHARED_PORT, protocol=aiomqtt.ProtocolVersion.V5) as observer:
        await observer.subscribe(f"{mqtt_run.prefix}/out/#", qos=1)
        sent = await deliver_and_send(out, {"traceparent": TRACEPARENT})
        async with asyncio.timeout(10):
            message = await anext(aiter(observer.messages))
    assert str(message.topic) == topic
    assert Event.from_json_dict(json.loads(message.payload)).id == sent.id  # type: ignore[arg-type]
    assert getattr(message.properties, "ContentType", None) == "application/json"
    user = dict(getattr(message.properties, "UserProperty", None) or [])
    assert_child_of_the_delivery(spans, user.get("traceparent"), "mqtt", topic)


# -- NATS JetStream --------------------------------------------------------------------------------------
async def nats_send(run: NatsRun, headers: dict[str, str]) -> tuple[Event, Any]:
    out = run.transport(publish_subject=f"{run.prefix}.out.{{type}}", filter_subject=f"{run.prefix}.results.>")
    sent = await deliver_and_send(out, headers)
    async with run.client() as nc:
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{run.prefix}.out.>", durable=f"{run.durable}-reader", stream=run.stream)
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack()
    return sent, msg


async def test_nats_send_in_a_traced_delivery_carries_the_producer_span_as_a_header(
    spans: Spans, nats_run: NatsRun
) -> None:
    sent, msg = await nats_send(nats_run, {"traceparent": TRACEPARENT})
    assert msg.headers["Nats-Msg-Id"] == sent.id  # the de-duplication header stays
    subject = f"{nats_run.prefix}.out.trace.forwarded"
    assert_child_of_the_delivery(spans, msg.headers.get("traceparent"), "nats", subject)


# -- system.dead_letter notices --------------------------------------------------------------------------
async def dead_letter_notices(body: bytes, headers: dict[str, str]) -> list[Event]:
    """One message with ``headers`` through a bus whose only handler fails (no retry); the notices."""
    bus = EventBus(retry=RetryPolicy(max_attempts=1))
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    notices: list[Event] = []
    got = asyncio.Event()

    @bus.subscribe("test.result", name="broken")
    async def broken(event: Event) -> None:
        raise RuntimeError("MES refused SN1")

    @bus.subscribe("system.dead_letter", name="alert")
    async def alert(event: Event) -> None:
        notices.append(event)
        got.set()

    async with bus:
        await mock.inject_raw(body, headers=headers)
        async with asyncio.timeout(10):
            await got.wait()
    return notices


EVENT_BODY = json.dumps({"id": "ev-dl", "type": "test.result", "source": "ict-1"}).encode()


async def test_a_dead_letter_notice_carries_the_dead_lettered_events_context_without_tracing() -> None:
    assert not tracing.active
    (notice,) = await dead_letter_notices(EVENT_BODY, {"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert notice.causation_id == "ev-dl" and notice.payload["handler"] == "broken"
    assert notice.headers["traceparent"] == TRACEPARENT and notice.headers["tracestate"] == TRACESTATE


async def test_a_dead_letter_notice_of_undecodable_input_carries_the_raw_messages_context() -> None:
    (notice,) = await dead_letter_notices(b"{not json", {"traceparent": TRACEPARENT})
    assert notice.payload["handler"] is None and notice.payload["reason"] == "decode_error"
    assert trace_id_of(notice.headers) == TRACEPARENT.split("-")[1]


async def test_a_dead_letter_notice_is_processed_in_the_dead_lettered_messages_trace(spans: Spans) -> None:
    (notice,) = await dead_letter_notices(EVENT_BODY, {"traceparent": TRACEPARENT})
    (receive,) = spans.named("receive line")
    (failed,) = spans.named("process broken")
    (alert,) = spans.named("process alert")
    assert failed.status.status_code.name == "ERROR"
    assert failed.parent is not None and failed.parent.span_id == receive.context.span_id
    # the notice carries the message's context (its receive span): it is processed beside the failed delivery
    assert notice.headers["traceparent"].rsplit("-", 1)[0] == f"00-{hex_trace(receive)}-{hex_span(receive)}"
    assert alert.parent is not None and alert.parent.span_id == receive.context.span_id
    assert hex_trace(alert) == hex_trace(failed) == TRACEPARENT.split("-")[1]
