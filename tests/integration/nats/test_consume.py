"""NATSTransport against the real JetStream server: stream and durable consumer, settle-then-ack, nak with
delay, in_progress against AckWait, max_deliver into the dead-letter queue, de-duplication of
redeliveries, and send with Nats-Msg-Id."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence

import pytest

from pywats_events import Event, EventBus, MemoryStore, StoreError, TransportState
from pywats_nats import NATSPublishError, NATSTransport
from tests.integration.nats.conftest import Run, wait_for, wait_state

pytestmark = [pytest.mark.services]


class FailingStore(MemoryStore):
    """Idempotency writes fail ``failures`` times (a database that drops out), so settlement fails."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def mark_completed(self, records: Sequence[tuple[str, str]]) -> None:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise StoreError("database unavailable (test)")
        await super().mark_completed(records)


def result(seq: int) -> bytes:
    return json.dumps({"seq": seq, "serial": f"SN{seq:05d}"}).encode()


async def test_creates_stream_and_durable_consumer_and_acknowledges_every_message(run: Run) -> None:
    t = run.transport()
    bus = EventBus()
    seen: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        seen.append(event)

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.CONNECTED
        await run.publish([(f"results.ict-{i % 3}", result(i)) for i in range(50)])
        await wait_for(lambda: t.stats["acked"] == 50, what="50 acks")
        info = await run.consumer_info()
    assert info.config.durable_name == run.durable
    assert info.num_ack_pending == 0 and info.num_pending == 0 and info.num_redelivered == 0
    assert sorted(e.payload["seq"] for e in seen) == list(range(50))
    first = next(e for e in seen if e.payload["seq"] == 0)
    assert first.type == "test.result" and first.source == "ict-0"
    assert first.headers["nats_stream"] == run.stream and first.headers["nats_delivered"] == 1
    assert (await run.stream_info()).config.subjects == [f"{run.prefix}.>"]


async def test_binds_to_an_existing_stream_and_reports_error_while_it_is_missing(run: Run) -> None:
    t = run.transport(create_stream=False, stream_subjects=[])
    bus = EventBus()
    seen: list[int] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        seen.append(event.payload["seq"])

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.ERROR
        assert f"stream {run.stream!r} does not exist" in (t.state_detail or "")
        async with run.client() as nc:
            await nc.jetstream().add_stream(name=run.stream, subjects=[f"{run.prefix}.>"])
        await wait_state(t, TransportState.CONNECTED)  # the background connector keeps trying
        await run.publish([("results.ict-1", result(1))])
        await wait_for(lambda: seen == [1], what="the message from the bound stream")


async def test_acknowledges_only_after_the_bus_settled_the_message(run: Run) -> None:
    t = run.transport()
    bus = EventBus()
    entered = asyncio.Event()
    release = asyncio.Event()

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        entered.set()
        await release.wait()

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(1))])
        await asyncio.wait_for(entered.wait(), 10)
        await asyncio.sleep(0.3)
        held = await run.consumer_info()
        assert held.num_ack_pending == 1 and t.stats["acked"] == 0  # being handled: not acknowledged
        release.set()
        await wait_for(lambda: t.stats["acked"] == 1, what="the ack after settlement")
        await wait_for(lambda: t.pending == 0, what="nothing pending")
        done = await run.consumer_info()
    assert done.num_ack_pending == 0 and done.delivered.stream_seq == 1


async def test_failed_settlement_is_nacked_with_growing_delay_and_redelivered(run: Run) -> None:
    t = run.transport(nak_delay=0.5, max_deliver=5)
    bus = EventBus(store=FailingStore(failures=2))
    calls: list[tuple[int, float]] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append((event.headers["nats_delivered"], time.monotonic()))

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(1))])
        await wait_for(lambda: t.stats["acked"] == 1, timeout=20, what="the third delivery to be acked")
        info = await run.consumer_info()
    assert [n for n, _ in calls] == [1, 2, 3]
    assert t.stats["nacked"] == 2
    # The server held the message back for the nak delay: 0.5 s, then 1 s (nak_delay * 2**(n-1)).
    assert calls[1][1] - calls[0][1] >= 0.45
    assert calls[2][1] - calls[1][1] >= 0.95
    assert info.num_ack_pending == 0 and info.num_redelivered == 0


async def test_last_allowed_delivery_that_cannot_settle_ends_in_the_dead_letter_queue(run: Run) -> None:
    t = run.transport(max_deliver=3, nak_delay=0.1, ack_wait=2)
    bus = EventBus(store=FailingStore(failures=1_000))
    calls: list[int] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event.headers["nats_delivered"])

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(7))], headers=[{"Nats-Msg-Id": "station-msg-7"}])
        await wait_for(lambda: t.stats["max_deliver"] == 1, timeout=20, what="the dead letter at max_deliver")
        await wait_for(lambda: t.stats["acked"] == 1, what="its ack")
        await asyncio.sleep(2.5)  # longer than AckWait: had it not been acknowledged it would come back
        entries = await bus.dead_letters.list(reason="max_deliver")
        info = await run.consumer_info()
    assert calls == [1, 2, 3]
    assert t.stats["received"] == 3 and t.stats["nacked"] == 2
    assert len(entries) == 1
    entry = entries[0]
    assert entry.raw_body == result(7)
    assert entry.transport == "nats" and entry.headers["nats_delivered"] == 3
    assert "delivery 3 of max_deliver 3" in (entry.error_message or "")
    assert entry.origin.endswith(f"/{run.prefix}.results.ict-1#station-msg-7")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_in_progress_keeps_a_long_delivery_from_being_redelivered(run: Run) -> None:
    t = run.transport(ack_wait=1.5, in_progress_interval=0.4)
    bus = EventBus()
    calls: list[int] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event.headers["nats_delivered"])
        await asyncio.sleep(4.0)  # more than twice AckWait

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(1))])
        await wait_for(lambda: t.stats["acked"] == 1, timeout=20, what="the ack of the slow message")
        info = await run.consumer_info()
    assert calls == [1]  # no second delivery while the first was being worked on
    assert t.stats["in_progress"] >= 4
    assert info.num_redelivered == 0 and info.num_ack_pending == 0


class LosesFirstAck(NATSTransport):
    """Drops the first acknowledgement, as a connection that dies right after the bus settled a message."""

    lost = 0

    async def _send_ack(self, d):  # type: ignore[no-untyped-def]
        if not self.lost:
            self.lost += 1

            async def never_arrives() -> None:
                return None

            d.msg.ack = never_arrives  # the +ACK is lost on the way to the server
        await super()._send_ack(d)


async def test_redelivered_copy_of_a_settled_message_is_skipped_by_idempotency(run: Run) -> None:
    t = LosesFirstAck("nats", **run.options(ack_wait=1))
    bus = EventBus()
    calls: list[str] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event.id)

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(1))])
        await wait_for(lambda: t.stats["redelivered"] == 1 and t.stats["acked"] == 2, what="the redelivery")
        info = await run.consumer_info()
    assert len(calls) == 1  # the redelivered copy kept its event id (stream sequence): the handler was skipped
    assert info.num_ack_pending == 0


async def test_send_publishes_with_nats_msg_id_and_the_stream_keeps_one_copy(run: Run) -> None:
    t = run.transport(publish_subject=f"{run.prefix}.out.{{type}}", filter_subject=f"{run.prefix}.results.>")
    bus = EventBus()
    bus.add_transport(t)
    event = Event(type="test.result", source="ict-1", payload={"serial": "SN1"})
    async with bus:
        await t.send(event)
        await t.send(event)  # a retry after a lost PubAck: JetStream drops the duplicate
        async with run.client() as nc:
            js = nc.jetstream()
            info = await js.stream_info(run.stream)
            sub = await js.pull_subscribe(f"{run.prefix}.out.>", durable=f"{run.durable}-reader", stream=run.stream)
            msgs = await sub.fetch(1, timeout=5)
        with pytest.raises(NATSPublishError, match="no JetStream stream captures subject"):
            other = NATSTransport("other", **run.options(durable=f"{run.durable}-b", publish_subject="nowhere.{type}"))
            bus.add_transport(other)
            await other.start()
            try:
                await other.send(event)
            finally:
                await other.stop()
    assert info.state.messages == 1
    assert msgs[0].subject == f"{run.prefix}.out.test.result"
    assert msgs[0].headers is not None and msgs[0].headers["Nats-Msg-Id"] == event.id
    assert Event.from_json_dict(json.loads(msgs[0].data)).id == event.id


async def test_send_before_start_raises_a_clear_error(run: Run) -> None:
    t = run.transport()
    with pytest.raises(NATSPublishError, match="not started"):
        await t.send(Event(type="test.result", source="x"))


async def test_undecodable_and_unrouted_messages_are_dead_lettered_whole_and_acknowledged(run: Run) -> None:
    t = run.transport()
    bus = EventBus()
    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", b"{not json"), ("elsewhere.x", b"{}")])
        await wait_for(lambda: t.stats["acked"] == 2, what="both acked")
        decode = await bus.dead_letters.list(reason="decode_error")
        unrouted = await bus.dead_letters.list(reason="unrouted")
        info = await run.consumer_info()
    assert [e.raw_body for e in decode] == [b"{not json"]
    assert "invalid JSON" in (decode[0].error_message or "")
    assert [e.raw_body for e in unrouted] == [b"{}"]
    assert info.num_ack_pending == 0


async def test_message_dead_lettered_at_max_deliver_replays_with_its_event_id(run: Run) -> None:
    t = run.transport(max_deliver=2, nak_delay=0.1)
    bus = EventBus(store=FailingStore(failures=2))  # both deliveries fail to settle, then the store is back
    ids: list[str] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        ids.append(event.id)

    bus.add_transport(t)
    async with bus:
        await run.publish([("results.ict-1", result(3))], headers=[{"Nats-Msg-Id": "station-msg-3"}])
        await wait_for(lambda: t.stats["max_deliver"] == 1, timeout=20, what="the dead letter")
        [entry] = await bus.dead_letters.list(reason="max_deliver")
        assert await bus.dead_letters.replay(entry.id) is True
        left = await bus.dead_letters.count()
    assert len(ids) == 3 and len(set(ids)) == 1  # two deliveries and the replay: one event id throughout
    assert left == 0


async def test_connects_in_the_background_when_no_server_answers_at_start(run: Run) -> None:
    t = run.transport(servers=["nats://127.0.0.1:1"], reconnect_initial=0.1, reconnect_max=0.2)
    bus = EventBus()
    errors: list[Event] = []

    @bus.subscribe("system.transport_error")
    async def on_error(event: Event) -> None:
        errors.append(event)

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.RECONNECTING
        assert "cannot connect" in (t.state_detail or "")
        await asyncio.sleep(0.5)
        assert t.state is TransportState.RECONNECTING
    assert t.state is TransportState.DISCONNECTED
    assert errors == []  # an unreachable server is transient (reconnecting), not an error


async def test_plain_client_sees_stream_sequence_based_ids_stay_stable(run: Run) -> None:
    """Two transports reading the same message through different durables derive the same event id."""
    ids: dict[str, str] = {}
    for name in ("a", "b"):
        t = run.transport(name, durable=f"{run.durable}-{name}")
        bus = EventBus()

        @bus.subscribe("test.result")
        async def handle(event: Event, _name: str = name) -> None:
            ids[_name] = event.id

        bus.add_transport(t)
        async with bus:
            if name == "a":
                await run.publish([("results.ict-1", result(1))])
            await wait_for(lambda _n=name: _n in ids, what=f"transport {name}")  # type: ignore[misc]
    assert ids["a"] == ids["b"]
