"""Receive and process spans through ``MockTransport``/``InboundMessage.headers`` (as the broker transports
fill them: AMQP headers with bytes values and any letter case, MQTT 5 user properties kept as a dict),
retries as span events, the outcome as status, and replays from the dead-letter queue that continue the
trace (issue 18.2, 18.4)."""

from __future__ import annotations

import asyncio
import json

import pytest

from pywats_events import DecodeError, Event, EventBus, MockTransport, register_decoder
from pywats_events.codec import DecodeContext
from pywats_events.retry import RetryPolicy
from pywats_events.sql_store import open_store
from tests.waiting import wait_for

from .conftest import Spans, hex_span, hex_trace

_otel = pytest.importorskip("opentelemetry.trace", reason="the otel extra is not installed")
SpanKind, StatusCode = _otel.SpanKind, _otel.StatusCode

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE}-{PARENT}-01"


def body(event_id: str = "ev-1") -> bytes:
    return json.dumps({"id": event_id, "type": "test.result", "source": "station-1"}).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": TRACEPARENT},
        {"Traceparent": TRACEPARENT.encode()},  # an AMQP header table: bytes, the sender's letter case
        {"mqtt_user_properties": {"traceparent": TRACEPARENT}},  # MQTT 5 user properties as a dict
    ],
    ids=["text", "amqp-bytes", "mqtt-user-properties"],
)
async def test_inbound_message_headers_make_the_receive_span_a_child_of_the_remote_parent(
    spans: Spans, headers: dict[str, object]
) -> None:
    bus = EventBus()
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    got: list[Event] = []
    bus.subscribe("test.result", name="keep")(got.append)
    async with bus:
        result = await mock.inject_raw(body(), headers=headers, origin="amqp://broker/q#key")
    assert result.handled == 1
    (receive,) = spans.named("receive")
    (process,) = spans.named("process")
    assert receive.name == "receive line" and receive.kind is SpanKind.CONSUMER
    assert hex_trace(receive) == TRACE and format(receive.parent.span_id, "016x") == PARENT
    assert receive.attributes["messaging.destination.name"] == "amqp://broker/q#key"
    assert process.parent.span_id == receive.context.span_id and hex_trace(process) == TRACE
    assert got[0].headers["traceparent"] == f"00-{TRACE}-{hex_span(receive)}-01"
    # every case variant of the old header is gone: one traceparent, the receive span's
    assert [k for k in got[0].headers if k.lower() == "traceparent"] == ["traceparent"]


async def test_retries_are_span_events_and_a_dead_letter_is_an_error_status_and_its_replay_continues_the_trace(
    spans: Spans, tmp_path: object
) -> None:
    bus = EventBus(open_store(f"sqlite:///{tmp_path}/dlq.db"), retry=RetryPolicy(max_attempts=3, initial_delay=0.01))
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    broken = True

    @bus.subscribe("test.result", name="flaky")
    async def flaky(event: Event) -> None:
        if broken:
            raise ConnectionError("MES not answering")

    async with bus:
        result = await mock.inject_raw(body(), headers={"traceparent": TRACEPARENT})
        assert result.dead_lettered == 1
        (receive,) = spans.named("receive")
        (failed,) = spans.named("process")
        assert failed.status.status_code is StatusCode.ERROR
        assert "dead-lettered (failed) after 3 attempt(s): ConnectionError: MES not answering" in (
            failed.status.description or ""
        )
        attempts = [e for e in failed.events if e.name == "attempt_failed"]
        assert [e.attributes["pywats.attempt"] for e in attempts] == [1, 2, 3]
        assert {e.attributes["exception.type"] for e in attempts} == {"ConnectionError"}
        assert failed.attributes["pywats.delivery.outcome"] == "dead_lettered"
        assert failed.attributes["pywats.delivery.attempts"] == 3

        (entry,) = await bus.dead_letters.list()
        assert entry.event is not None
        assert entry.event.headers["traceparent"] == f"00-{TRACE}-{hex_span(receive)}-01"

        broken = False
        assert await bus.dead_letters.replay(entry.id)
    replayed = [s for s in spans.named("process") if s.attributes.get("pywats.replay")]
    assert len(replayed) == 1
    assert hex_trace(replayed[0]) == TRACE
    assert replayed[0].parent.span_id == receive.context.span_id  # the original message's receive span
    assert replayed[0].status.status_code is StatusCode.OK


async def test_entry_read_back_from_the_store_after_a_restart_still_continues_the_trace(
    spans: Spans, tmp_path: object
) -> None:
    url = f"sqlite:///{tmp_path}/dlq.db"
    bus = EventBus(open_store(url), retry=RetryPolicy(max_attempts=1))
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))

    def fails(event: Event) -> None:
        raise ValueError("bad unit")

    bus.subscribe("test.result", name="h")(fails)
    async with bus:
        await mock.inject_raw(body(), headers={"traceparent": TRACEPARENT})
    (receive,) = spans.named("receive")

    again = EventBus(open_store(url))
    again.subscribe("test.result", name="h")(lambda event: None)
    async with again:
        (entry,) = await again.dead_letters.list()
        assert await again.dead_letters.replay(entry.id)
    replayed = [s for s in spans.named("process") if s.attributes.get("pywats.replay")]
    assert [hex_trace(s) for s in replayed] == [TRACE]
    assert replayed[0].parent.span_id == receive.context.span_id


async def test_undecodable_input_replayed_after_the_decoder_is_fixed_continues_the_trace(spans: Spans) -> None:
    fixed = False

    def picky(data: bytes, ctx: DecodeContext) -> list[Event]:
        if not fixed:
            raise DecodeError("unknown dialect", ctx.origin)
        return [Event(type="test.result", source="station-9", headers=dict(ctx.headers))]

    register_decoder("tracing-picky", picky)
    bus = EventBus()
    mock = bus.add_transport(MockTransport("line", decoder="tracing-picky"))
    got: list[Event] = []
    bus.subscribe("test.result", name="keep")(got.append)
    async with bus:
        result = await mock.inject_raw(b"<unit/>", headers={"traceparent": TRACEPARENT})
        assert result.dead_lettered == 1
        (receive,) = spans.named("receive")
        assert receive.status.status_code is StatusCode.ERROR
        (entry,) = await bus.dead_letters.list()
        assert entry.headers["traceparent"] == f"00-{TRACE}-{hex_span(receive)}-01"
        fixed = True
        assert await bus.dead_letters.replay(entry.id)
    (process,) = spans.named("process")
    assert hex_trace(process) == TRACE and process.parent.span_id == receive.context.span_id
    assert got[0].headers["traceparent"] == entry.headers["traceparent"]


async def test_bus_publish_without_trace_context_makes_root_process_spans(spans: Spans) -> None:
    bus = EventBus()
    bus.subscribe("test.result", name="a")(lambda event: None)
    async with bus:
        await bus.publish(Event(type="test.result", source="s"))
    (process,) = spans.named("process")
    assert process.parent is None and process.attributes["pywats.transport"] == "publish"
    assert not spans.named("receive")  # publish is no transport message


async def test_a_message_the_bus_refuses_ends_its_receive_span_in_error(spans: Spans) -> None:
    from pywats_events import BusClosedError, InboundMessage, SettleResult

    class Message(InboundMessage):
        async def ack(self, result: SettleResult) -> None:
            raise AssertionError("a refused message must not be acked")

        async def settle_failed(self, exc: BaseException) -> None:
            raise AssertionError("nothing was submitted: the caller gives it back")

    bus = EventBus()  # not started
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))
    with pytest.raises(BusClosedError):
        await mock.intake(Message(body(), origin="q", decoder="event-json", headers={"traceparent": TRACEPARENT}))
    await wait_for(lambda: len(spans.named("receive")) == 1)  # (a future's callbacks run on the next loop turn)
    (receive,) = spans.named("receive")
    assert receive.status.status_code is StatusCode.ERROR and "not running" in (receive.status.description or "")
    assert hex_trace(receive) == TRACE


async def test_an_event_a_handler_publishes_continues_the_handlers_trace(spans: Spans) -> None:
    bus = EventBus()
    mock = bus.add_transport(MockTransport("line", decoder="event-json"))

    derived: list[asyncio.Future[object]] = []

    @bus.subscribe("test.result", name="derive")
    async def derive(event: Event) -> None:
        # Not awaited here: its settlement may need this handler's lane (same ordering key).
        derived.append(asyncio.ensure_future(bus.publish(Event(type="unit.passed", source=event.source))))

    bus.subscribe("unit.passed", name="mes")(lambda event: None)
    async with bus:
        await mock.inject_raw(body(), headers={"traceparent": TRACEPARENT})
        await asyncio.wait_for(derived[0], 10)
    by_handler = {s.attributes["pywats.handler"]: s for s in spans.named("process")}
    assert by_handler["mes"].parent.span_id == by_handler["derive"].context.span_id
    assert hex_trace(by_handler["mes"]) == TRACE
