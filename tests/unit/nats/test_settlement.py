"""The transport's ack logic through ``pywats_nats.testing`` (no server): what is acknowledged when, nak
delays, max_deliver, in_progress, redeliveries, and what ``send`` publishes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from pywats_events import Event, EventBus, MemoryStore, StoreError
from pywats_nats.testing import NATSTestTransport, TestMessage
from tests.waiting import wait_for

SUBJECT = "line1.ict-1.results"
RULES = [{"subject": "line1.{station}.results", "type": "test.result", "source": "{station}"}]


class FailingStore(MemoryStore):
    """Idempotency writes fail ``failures`` times, so settlement fails; dead-letter writes fail if told."""

    def __init__(self, failures: int, dead_letters_fail: bool = False) -> None:
        super().__init__()
        self.failures = failures
        self.dead_letters_fail = dead_letters_fail

    async def mark_completed(self, records: Sequence[tuple[str, str]]) -> None:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise StoreError("database unavailable (test)")
        await super().mark_completed(records)

    async def add_dead_letters(self, entries):  # type: ignore[no-untyped-def,override]
        if self.dead_letters_fail:
            raise StoreError("database unavailable (test)")
        await super().add_dead_letters(entries)


def make(store: MemoryStore | None = None, **options: object) -> tuple[EventBus, NATSTestTransport, list[Event]]:
    bus = EventBus(store=store)
    t = NATSTestTransport(rules=RULES, **options)  # type: ignore[arg-type]
    seen: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        seen.append(event)

    bus.add_transport(t)
    return bus, t, seen


async def test_message_is_acknowledged_once_its_event_is_handled() -> None:
    bus, t, seen = make()
    async with bus:
        msg = await t.deliver(SUBJECT, b'{"serial": "SN1"}', headers={"Nats-Msg-Id": "m-1", "Line": "1"})
        assert await msg.settled() == "ack"
    assert msg.acks == ["ack"]
    [ev] = seen
    assert ev.source == "ict-1" and ev.headers["nats_msg_id"] == "m-1"
    assert ev.headers["nats_headers"] == {"Line": "1"} and ev.headers["nats_delivered"] == 1


async def test_no_ack_while_the_handler_runs() -> None:
    bus = EventBus()
    t = NATSTestTransport(rules=RULES)
    release = asyncio.Event()

    @bus.subscribe("test.result")
    async def slow(event: Event) -> None:
        await release.wait()

    bus.add_transport(t)
    async with bus:
        msg = await t.deliver(SUBJECT, b"{}")
        await asyncio.sleep(0.1)
        assert msg.acks == [] and t.pending == 1
        release.set()
        assert await msg.settled() == "ack"
        await wait_for(lambda: t.pending == 0)


async def test_failed_settlement_naks_with_a_delay_that_doubles_per_delivery() -> None:
    bus, t, _ = make(FailingStore(failures=10), nak_delay=0.5, nak_delay_max=1.5, max_deliver=10)
    async with bus:
        delays = []
        for n in (1, 2, 3, 4):
            msg = await t.deliver(SUBJECT, b"{}", delivered=n, seq=1)
            assert await msg.settled() == "nak"
            delays.extend(msg.nak_delays)
    assert delays == [0.5, 1.0, 1.5, 1.5]  # nak_delay * 2**(n-1), at most nak_delay_max


async def test_last_allowed_delivery_is_dead_lettered_whole_and_acknowledged() -> None:
    bus, t, _ = make(FailingStore(failures=10), max_deliver=3)
    async with bus:
        msg = await t.deliver(SUBJECT, b'{"serial": "SN9"}', delivered=3, seq=42)
        assert await msg.settled() == "ack"
        [entry] = await bus.dead_letters.list(reason="max_deliver")
    assert entry.raw_body == b'{"serial": "SN9"}' and entry.headers["nats_seq"] == 42
    assert "delivery 3 of max_deliver 3" in (entry.error_message or "")
    assert t.stats["max_deliver"] == 1


async def test_last_delivery_when_even_the_dead_letter_store_fails_is_left_to_jetstream() -> None:
    bus, t, _ = make(FailingStore(failures=10, dead_letters_fail=True), max_deliver=2)
    async with bus:
        msg = await t.deliver(SUBJECT, b"{}", delivered=2, seq=5)
        assert await msg.settled() == "nak"  # never acknowledged: the message stays in the stream
    assert t.stats["max_deliver"] == 0


async def test_undecodable_message_is_dead_lettered_and_acknowledged_and_unrouted_gets_its_reason() -> None:
    bus, t, seen = make()
    async with bus:
        bad = await t.deliver(SUBJECT, b"\xff\xfe")
        nowhere = await t.deliver("line2.other", b"{}")
        assert await bad.settled() == "ack" and await nowhere.settled() == "ack"
        decode = await bus.dead_letters.list(reason="decode_error")
        unrouted = await bus.dead_letters.list(reason="unrouted")
    assert seen == []
    assert [e.raw_body for e in decode] == [b"\xff\xfe"] and "invalid UTF-8" in (decode[0].error_message or "")
    assert [e.raw_body for e in unrouted] == [b"{}"] and unrouted[0].headers["nats_subject"] == "line2.other"


async def test_undecodable_message_whose_dead_letter_write_fails_is_nacked() -> None:
    bus, t, _ = make(FailingStore(failures=0, dead_letters_fail=True), max_deliver=5)
    async with bus:
        msg = await t.deliver(SUBJECT, b"{bad")
        assert await msg.settled() == "nak"


async def test_redelivered_copy_of_a_handled_message_is_acknowledged_without_running_the_handler() -> None:
    bus, t, seen = make()
    async with bus:
        first = await t.deliver(SUBJECT, b"{}", seq=7)
        await first.settled()
        again = await t.deliver(SUBJECT, b"{}", seq=7, delivered=2)
        assert await again.settled() == "ack"
    assert len(seen) == 1


async def test_same_msg_id_in_two_stream_messages_is_one_event() -> None:
    bus, t, seen = make()
    async with bus:
        a = await t.deliver(SUBJECT, b"{}", headers={"Nats-Msg-Id": "r-1"})
        await a.settled()
        b = await t.deliver(SUBJECT, b"{}", headers={"Nats-Msg-Id": "r-1"}, delivered=2)
        await b.settled()
    assert len(seen) == 1


async def test_redelivery_arriving_while_the_first_copy_is_in_the_bus_is_settled_with_it() -> None:
    bus = EventBus()
    t = NATSTestTransport(rules=RULES)
    release = asyncio.Event()
    calls: list[int] = []

    @bus.subscribe("test.result")
    async def slow(event: Event) -> None:
        calls.append(event.headers["nats_delivered"])
        await release.wait()

    bus.add_transport(t)
    async with bus:
        first = await t.deliver(SUBJECT, b"{}", seq=3)
        await wait_for(lambda: calls == [1])
        twin: TestMessage = await t.deliver(SUBJECT, b"{}", seq=3, delivered=2)
        await asyncio.sleep(0.05)
        assert twin.acks == [] and first.acks == []
        release.set()
        assert await first.settled() == "ack" and await twin.settled() == "ack"
    assert calls == [1]  # the second copy never reached the handler


async def test_in_progress_is_sent_while_a_delivery_takes_long() -> None:
    bus = EventBus()
    t = NATSTestTransport(rules=RULES, ack_wait=1.0, in_progress_interval=0.2)

    @bus.subscribe("test.result")
    async def slow(event: Event) -> None:
        await asyncio.sleep(1.0)

    bus.add_transport(t)
    async with bus:
        msg = await t.deliver(SUBJECT, b"{}")
        assert await msg.settled() == "ack"
    progress = msg.acks.count("in_progress")
    assert progress >= 3 and msg.acks[-1] == "ack"


async def test_fast_delivery_sends_no_in_progress() -> None:
    bus, t, _ = make(ack_wait=1.0, in_progress_interval=0.5)
    async with bus:
        msg = await t.deliver(SUBJECT, b"{}")
        await msg.settled()
        await asyncio.sleep(0.6)
    assert msg.acks == ["ack"]


async def test_send_publishes_event_json_with_the_event_id_as_nats_msg_id() -> None:
    bus, t, _ = make(publish_subject="pywats.{category}.{type}")
    event = Event(type="test.result", source="ict-1")
    async with bus:
        await t.send(event)
    [out] = t.published
    assert out.subject == "pywats.test.test.result" and out.msg_id == event.id
    assert Event.from_json_dict(json.loads(out.body)).id == event.id


async def test_send_refuses_a_subject_that_is_not_valid() -> None:
    from pywats_nats import NATSPublishError

    bus, t, _ = make(publish_subject="out.{source}")
    async with bus:
        with pytest.raises(NATSPublishError, match="not a valid NATS subject"):
            await t.send(Event(type="test.result", source="has space"))


async def test_deliver_before_start_says_what_to_do() -> None:
    t = NATSTestTransport(rules=RULES)
    with pytest.raises(RuntimeError, match="add it to a bus"):
        await t.deliver(SUBJECT, b"{}")
