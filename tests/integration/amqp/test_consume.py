"""CFXTransport consuming from the real RabbitMQ: routing, headers, acknowledgement after settlement,
dead-lettering of undecodable input and poison messages, own redelivery counting."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Sequence

import aio_pika
import pytest

from pywats_cfx.decoder import decode_cfx
from pywats_cfx.transport import DELIVERY_COUNT_HEADER, CFXTransport
from pywats_events.breaker import BreakerPolicy
from pywats_events.bus import EventBus
from pywats_events.codec import DecodeContext, register_decoder
from pywats_events.event import Event
from pywats_events.retry import RetryPolicy
from pywats_events.store import MemoryStore
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, queue_depth, wait_for
from tests.services import AMQP_URL

UNITS_TESTED = "CFX.Production.TestAndInspection.UnitsTested"


def rk(names: AmqpNames, message: str = UNITS_TESTED) -> str:
    return f"{names.handle}.{message}"


async def test_envelopes_single_batch_and_gzip_reach_the_handler_with_amqp_headers(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    got: list[Event] = []

    @bus.subscribe("test.result")
    async def record(event: Event) -> None:
        got.append(event)

    async with bus:
        single = envelope_bytes(1, source=amqp.handle)
        await publisher.publish(
            single,
            rk(amqp),
            message_id="m-1",
            content_type="application/json",
            app_id="tester",
            headers={"cfx-topic": "CFX.Production.TestAndInspection", "cfx-handle": amqp.handle},
        )
        await publisher.publish(envelope_bytes(2, source=amqp.handle, gzip=True), rk(amqp), content_encoding="gzip")
        await publisher.publish(envelope_bytes(3, source=amqp.handle, gzip=True), rk(amqp))  # gzip by magic only
        batch = json.dumps([json.loads(envelope_bytes(i, source=amqp.handle)) for i in (4, 5, 6)]).encode()
        await publisher.publish(gzip.compress(batch), rk(amqp), content_encoding="gzip")
        await wait_for(lambda: len(got) == 6, 20, "6 test.result events")
    first = next(e for e in got if e.headers.get("amqp.message_id") == "m-1")
    assert first.headers["amqp.routing_key"] == rk(amqp)
    assert first.headers["amqp.exchange"] == amqp.exchange
    assert first.headers["amqp.content_type"] == "application/json"
    assert first.headers["amqp.app_id"] == "tester"
    assert first.headers["amqp.redelivered"] is False
    assert first.headers["cfx-topic"] == "CFX.Production.TestAndInspection"
    assert first.headers["cfx-handle"] == amqp.handle
    assert first.headers["transport"] == "cfx"
    assert first.source == amqp.handle
    assert sorted(e.payload.get("unit_id", "") for e in got) == sorted({e.payload.get("unit_id", "") for e in got})
    assert sum(1 for e in got if e.headers.get("amqp.content_encoding") == "gzip") == 4
    assert transport.stats["settled"] == 4
    assert await queue_depth(amqp.queue) == 0


async def test_ack_waits_for_settlement_and_never_covers_an_unsettled_message(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    """A slow message followed by fast ones: the fast ones are acked (batched, multiple=True), the slow one
    is not; stopping while it is unsettled leaves exactly it in the queue, flagged redelivered."""
    transport = CFXTransport("cfx", **amqp.transport_options(stop_timeout=0.3))
    bus = EventBus(concurrency=4)
    bus.add_transport(transport)
    gate = asyncio.Event()
    slow_source = f"{amqp.handle}.slow"
    handled: list[str] = []

    @bus.subscribe("test.result")
    async def handler(event: Event) -> None:
        if event.source == slow_source:
            await gate.wait()
        handled.append(event.source)

    # Events of one source share a lane (arrival order); keep the fast sources off the slow one's lane.
    lane = hash(slow_source) % bus.concurrency
    fast = [s for s in (f"{amqp.handle}.fast{i}" for i in range(40)) if hash(s) % bus.concurrency != lane][:3]
    await bus.start()
    try:
        await publisher.publish(envelope_bytes(0, source=slow_source), rk(amqp))
        await publisher.publish_many((envelope_bytes(i, source=fast[i % 3]), rk(amqp)) for i in range(1, 61))
        await wait_for(lambda: transport.stats["settled"] == 60, 20, "the 60 fast messages to settle")
        assert slow_source not in handled
    finally:
        await transport.stop()  # gives up on the slow one after stop_timeout; broker gets it back
        gate.set()
        await bus.stop()
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(amqp.queue, passive=True)
        msg = await q.get(timeout=5)
        assert msg is not None
        assert msg.redelivered
        assert json.loads(msg.body)["Source"] == slow_source
        await msg.ack()
        assert await q.get(fail=False) is None


async def test_undecodable_and_unknown_encoding_are_dead_lettered_with_reason_and_acked(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    store = MemoryStore()
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus(store=store)
    bus.add_transport(transport)
    good: list[Event] = []
    bus.subscribe("test.result")(lambda e: good.append(e))  # type: ignore[func-returns-value]
    async with bus:
        await publisher.publish(b"this is not json", rk(amqp))
        await publisher.publish(envelope_bytes(1, source=amqp.handle), rk(amqp), content_encoding="br")
        await publisher.publish(b'{"MessageName": "CFX.X"}', rk(amqp))  # no MessageBody
        await publisher.publish(envelope_bytes(2, source=amqp.handle), rk(amqp))
        await wait_for(lambda: transport.stats["raw_dead_lettered"] == 3 and len(good) == 1, 20, "3 dead letters")
        entries = await store.list_dead_letters(limit=10)
    assert await queue_depth(amqp.queue) == 0  # all four acked, none requeued
    by_type = {e.error_type: e for e in entries}
    assert set(by_type) == {"InvalidJSONError", "UnsupportedContentEncodingError", "MissingFieldError"}
    enc = by_type["UnsupportedContentEncodingError"]
    assert "unsupported content-encoding 'br'" in enc.error_message
    assert enc.raw_body == envelope_bytes(1, source=amqp.handle)
    assert enc.headers["pywats-decoder"] == "cfx"
    assert enc.headers["amqp.routing_key"] == rk(amqp)
    assert all(e.reason == "decode_error" and e.transport == "cfx" for e in entries)


async def test_handler_failing_for_good_is_dead_lettered_by_the_bus_and_acked_not_requeued(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    store = MemoryStore()
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus(
        store=store,
        retry=RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01),
        breaker=BreakerPolicy(enabled=False),
    )
    bus.add_transport(transport)
    calls: list[str] = []

    @bus.subscribe("test.result", name="always-fails")
    async def fails(event: Event) -> None:
        calls.append(event.id)
        raise RuntimeError("database of test results rejects this unit")

    async with bus:
        await publisher.publish_many((envelope_bytes(i, source=amqp.handle), rk(amqp)) for i in range(5))
        await wait_for(lambda: transport.stats["settled"] == 5, 20, "5 settlements")
        assert await store.count_dead_letters(handler="always-fails", reason="failed") == 5
    assert await queue_depth(amqp.queue) == 0
    assert len(calls) == 10  # 2 attempts each, and never again: the message was not requeued
    assert transport.stats["received"] == 5


class _FailingMarks(MemoryStore):
    """A store whose idempotency writes fail: every settlement of the bus fails (store outage)."""

    def mark_completed(self, records: Sequence[tuple[str, str]]) -> Awaitable[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_exception(OSError("disk full"))
        return fut


async def test_settlement_failures_are_counted_in_our_header_and_parked_after_max_deliveries(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    transport = CFXTransport("cfx", **amqp.transport_options(max_deliveries=3, requeue_delay=0.05))
    bus = EventBus(store=_FailingMarks())
    bus.add_transport(transport)
    calls: list[bool] = []

    @bus.subscribe("test.result")
    async def handler(event: Event) -> None:
        calls.append(bool(event.headers.get("amqp.redelivered")))

    async with bus:
        await publisher.publish(envelope_bytes(7, source=amqp.handle), rk(amqp), message_id="poison-1")
        await wait_for(lambda: transport.stats["parked"] == 1, 20, "the message to be parked")
    assert len(calls) == 3  # first delivery + 2 requeues, then parked: not requeued forever
    assert transport.stats["requeued"] == 2
    assert await queue_depth(amqp.queue) == 0
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        dlq = await ch.declare_queue(amqp.dlq, passive=True)
        parked = await dlq.get(timeout=5)
        assert parked is not None
        await parked.ack()
    assert parked.message_id == "poison-1"
    assert parked.headers[DELIVERY_COUNT_HEADER] == 2
    assert "settlement failed 3 time(s): OSError: disk full" in str(parked.headers["x-pywats-reason"])
    assert parked.headers["x-pywats-original-routing-key"] == rk(amqp)
    assert parked.body == envelope_bytes(7, source=amqp.handle)


async def test_redelivered_message_skips_handlers_that_already_finished(amqp: AmqpNames, publisher: Publisher) -> None:
    """The same message delivered twice (broker redelivery after a crash) runs each handler once."""
    store = MemoryStore()
    runs: list[str] = []

    async def run_once() -> None:
        transport = CFXTransport("cfx", **amqp.transport_options())
        bus = EventBus(store=store)
        bus.add_transport(transport)
        bus.subscribe("test.result", name="writer")(lambda e: runs.append(e.id))  # type: ignore[func-returns-value]
        async with bus:
            await wait_for(lambda: transport.stats["settled"] == 1, 20, "one settlement")

    body = envelope_bytes(11, source=amqp.handle)
    await CFXTransport("declare", **amqp.transport_options()).declare_topology()
    await publisher.publish(body, rk(amqp))
    await run_once()
    # The same envelope again, marked as a redelivery by our own header: the bus consults idempotency.
    await publisher.publish(body, rk(amqp), headers={DELIVERY_COUNT_HEADER: 1})
    await run_once()
    assert len(runs) == 1


@pytest.mark.parametrize("gz", [False, True])
async def test_publish_envelope_writes_what_the_cfx_sdk_writes_and_round_trips(amqp: AmqpNames, gz: bool) -> None:
    from pywats_cfx.explorer import generate_envelope

    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    got: list[Event] = []
    bus.subscribe("test.result")(lambda e: got.append(e))  # type: ignore[func-returns-value]
    env = generate_envelope("units-tested", seq=3, source=amqp.handle)
    async with bus:
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            ch = await conn.channel()
            spy = await ch.declare_queue(exclusive=True)
            await spy.bind(amqp.exchange, "#")
            await transport.publish_envelope(env, gzip=gz)
            msg = await spy.get(timeout=5)
            assert msg is not None
            await msg.ack()
        await wait_for(lambda: len(got) == 1, 20, "the published envelope to come back")
    assert msg.routing_key == f"{amqp.handle}.{UNITS_TESTED}"
    assert msg.message_id == env["UniqueID"]
    assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert msg.content_type == "application/json"
    assert msg.content_encoding == ("gzip" if gz else None)
    assert msg.headers == {
        "cfx-topic": "CFX.Production.TestAndInspection",
        "cfx-message": UNITS_TESTED,
        "cfx-handle": amqp.handle,
    }
    body = gzip.decompress(msg.body) if gz else msg.body
    assert json.loads(body) == env
    assert got[0].headers["amqp.message_id"] == env["UniqueID"]


async def test_send_republishes_a_cfx_event_as_its_envelope(amqp: AmqpNames) -> None:
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    got: list[Event] = []
    bus.subscribe("CFX.*")(lambda e: got.append(e))  # type: ignore[func-returns-value]
    async with bus:
        event = Event(type="CFX.Vendor.CustomThing", source=amqp.handle, payload={"Value": 42})
        await bus.send(event, "cfx")
        await wait_for(lambda: len(got) == 1, 20, "the sent event to come back")
    assert got[0].id == event.id
    assert got[0].payload == {"Value": 42}
    assert got[0].headers["amqp.routing_key"] == f"{amqp.handle}.CFX.Vendor.CustomThing"


class _FlakyLookups(MemoryStore):
    """A store whose idempotency lookups fail the first ``n`` times (a database failover)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.failures_left = n

    async def completed_handlers(self, event_ids: Sequence[str]) -> dict[str, set[str]]:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise OSError("connection to the database lost")
        return await super().completed_handlers(event_ids)


async def test_failed_idempotency_lookup_requeues_with_our_counter_then_succeeds(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    transport = CFXTransport("cfx", **amqp.transport_options(requeue_delay=0.05))
    bus = EventBus(store=_FlakyLookups(2))
    bus.add_transport(transport)
    calls: list[str] = []
    bus.subscribe("test.result")(lambda e: calls.append(e.id))  # type: ignore[func-returns-value]
    async with bus:
        # Marked as a redelivery, so the bus consults the (failing) idempotency records first.
        await publisher.publish(envelope_bytes(8, source=amqp.handle), rk(amqp), headers={DELIVERY_COUNT_HEADER: 0})
        await wait_for(lambda: len(calls) == 1, 20, "the message to be handled once the store is back")
        await wait_for(lambda: transport.stats["settled"] == 1, 20, "its settlement")
    assert transport.stats["requeued"] == 2
    assert len(calls) == 1
    assert await queue_depth(amqp.queue) == 0


def _buggy_decoder(body: bytes, ctx: DecodeContext) -> list[Event]:
    if body.startswith(b"boom"):
        raise KeyError("MessageBody")  # a decoder bug, not a DecodeError
    return decode_cfx(body, ctx)


async def test_a_decoder_bug_dead_letters_the_message_and_consuming_goes_on(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    register_decoder("test-buggy", _buggy_decoder)
    store = MemoryStore()
    transport = CFXTransport("cfx", **amqp.transport_options(decoder="test-buggy"))
    bus = EventBus(store=store)
    bus.add_transport(transport)
    got: list[Event] = []
    bus.subscribe("test.result")(lambda e: got.append(e))  # type: ignore[func-returns-value]
    async with bus:
        await publisher.publish(b"boom", rk(amqp))
        await publisher.publish(envelope_bytes(9, source=amqp.handle), rk(amqp))
        await wait_for(lambda: len(got) == 1 and transport.stats["raw_dead_lettered"] == 1, 20, "both messages")
        (entry,) = await store.list_dead_letters()
    assert "decoder failed: KeyError" in entry.error_message
    assert entry.raw_body == b"boom" and entry.headers["pywats-decoder"] == "test-buggy"
    assert await queue_depth(amqp.queue) == 0


async def test_deliveries_reach_the_session_without_a_task_each(
    amqp: AmqpNames, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiormq would run the consumer callback (on_deliver_async) in a task per delivery; the transport
    # replaces that step on its channel with a plain call, in delivery order.
    from pywats_cfx import transport as transport_module

    async def no_task_path(self: object, message: object) -> None:
        raise AssertionError("delivery went through aiormq's per-delivery task")

    monkeypatch.setattr(transport_module._Session, "on_deliver_async", no_task_path)
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    got: list[str] = []

    @bus.subscribe("test.result")
    async def record(event: Event) -> None:
        got.append(event.id)

    async with bus:
        for i in range(20):
            await publisher.publish(envelope_bytes(i, source=amqp.handle), rk(amqp))
        await wait_for(lambda: len(got) == 20, 20, "20 test.result events")
        await transport.wait_acked(20)
    assert len(set(got)) == 20
    assert await queue_depth(amqp.queue) == 0
