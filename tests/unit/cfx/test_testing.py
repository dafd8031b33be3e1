"""``pywats_cfx.testing.CFXTestBroker``: AMQP deliveries through the real transport, decoder and ack
window, without a broker (issue 10, deliverable 6)."""

from __future__ import annotations

import asyncio
import gzip

from pywats_cfx import CFXTransport, envelope_to_bytes
from pywats_cfx.explorer import generate_envelope
from pywats_cfx.testing import AckFrame, CFXTestBroker
from pywats_events import Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.store import DeadLetterReason


def heartbeat(seq: int) -> bytes:
    return envelope_to_bytes(generate_envelope("heartbeat", seq=seq))


async def test_delivery_is_decoded_by_the_cfx_decoder_with_its_amqp_headers_and_acked_after_the_handler() -> None:
    transport = CFXTransport(queue="q")
    broker = CFXTestBroker(transport)
    bus = EventBus(emit_system_events=False)
    bus.add_transport(transport)
    seen: list[Event] = []
    release = asyncio.Event()

    @bus.subscribe("system.heartbeat")
    async def handle(event: Event) -> None:
        await release.wait()
        seen.append(event)

    async with bus:
        tag = broker.deliver(
            gzip.compress(heartbeat(1)), routing_key="line1.CFX.Heartbeat", content_encoding="gzip",
            headers={"cfx-topic": "CFX.Heartbeat"}, redelivered=True,
        )
        await asyncio.sleep(0.1)
        assert broker.outcome(tag) is None, "acked before the handler finished"
        release.set()
        assert await broker.settled(tag) == "ack"
    [event] = seen
    assert event.source == generate_envelope("heartbeat", seq=1)["Source"]  # the envelope names its source
    assert event.headers["amqp.routing_key"] == "line1.CFX.Heartbeat"
    assert event.headers["amqp.redelivered"] is True and event.headers["cfx-topic"] == "CFX.Heartbeat"
    assert broker.frames == [AckFrame("ack", tag, multiple=True)]


async def test_undecodable_and_unsupported_encoding_are_dead_lettered_whole_then_acked() -> None:
    store = MemoryStore()
    transport = CFXTransport(queue="q")
    broker = CFXTestBroker(transport)
    bus = EventBus(store, emit_system_events=False)
    bus.add_transport(transport)
    async with bus:
        bad = broker.deliver(b'{"MessageName": "CFX.Nope"', routing_key="st.CFX.Nope")
        br = broker.deliver(heartbeat(2), routing_key="st.CFX.Heartbeat", content_encoding="br")
        assert [await broker.settled(bad), await broker.settled(br)] == ["ack", "ack"]
        entries = sorted(await store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR), key=lambda e: e.origin)
    assert [e.raw_body for e in entries] == [heartbeat(2), b'{"MessageName": "CFX.Nope"']  # by routing key
    assert [e.origin.rsplit("#", 1)[1] for e in entries] == ["st.CFX.Heartbeat", "st.CFX.Nope"]
    assert "content-encoding" in entries[0].error_message


async def test_failed_settlement_is_requeued_with_its_delivery_count_not_nacked_in_a_loop() -> None:
    class BrokenStore(MemoryStore):
        async def add_dead_letters(self, entries: object) -> None:
            raise OSError("disk full")

    transport = CFXTransport(queue="q", requeue_delay=0.0)
    broker = CFXTestBroker(transport)
    bus = EventBus(BrokenStore(), retry=RetryPolicy(max_attempts=1), emit_system_events=False)
    bus.add_transport(transport)

    @bus.subscribe("system.heartbeat")
    async def fails(event: Event) -> None:
        raise RuntimeError("no")

    async with bus:
        tag = broker.deliver(heartbeat(3), routing_key="st.CFX.Heartbeat")
        assert await broker.settled(tag) == "ack"  # acked only once the copy is republished
    [copy] = broker.republished
    assert copy.exchange == "" and copy.routing_key == "q" and copy.body == heartbeat(3)
    assert copy.headers["x-pywats-delivery-count"] == 1
