"""PUBACK ordering, stale connections and flow control, with ``pywats_mqtt.testing.MQTTTestBroker``.

The broker cannot show in which order PUBACKs arrived, so these checks look at what the transport hands
to the connection; the real-broker tests prove the end-to-end guarantees.
"""

from __future__ import annotations

import asyncio
import json

from pywats_events import Event, EventBus
from pywats_mqtt import MQTTTransport
from pywats_mqtt.testing import MQTTTestBroker

LANES = 16


def _sources_on_distinct_lanes(n: int) -> list[str]:
    # The bus picks a lane by hash(source) % lanes, and str hashes differ per process: choose sources
    # that land on different lanes, so that one blocked message never queues behind another.
    chosen: list[str] = []
    used: set[int] = set()
    k = 0
    while len(chosen) < n:
        name = f"s{k}"
        k += 1
        if hash(name) % LANES not in used:
            used.add(hash(name) % LANES)
            chosen.append(name)
    return chosen


SOURCES = _sources_on_distinct_lanes(10)


def publish(broker: MQTTTestBroker, mid: int, qos: int = 1) -> None:
    broker.publish("t/st", json.dumps({"seq": mid, "src": SOURCES[mid]}).encode(), qos=qos, mid=mid)


async def setup(**options: object) -> tuple[MQTTTransport, MQTTTestBroker, EventBus, dict[int, asyncio.Event]]:
    t = MQTTTransport("m", rules=[{"topic": "t/{station}", "type": "x.y", "source": "{payload.src}"}], **options)
    broker = MQTTTestBroker(t)
    bus = EventBus(concurrency=LANES, queue_size=64, emit_system_events=False)
    release: dict[int, asyncio.Event] = {i: asyncio.Event() for i in range(1, 10)}

    @bus.subscribe("x.y")
    async def handle(event: Event) -> None:
        await release[event.payload["seq"]].wait()

    bus.add_transport(t)
    await bus.start()  # the transport starts on the test broker: no connection attempt
    return t, broker, bus, release


async def settle(t: MQTTTransport, n: int) -> None:
    async with asyncio.timeout(5):
        while t.pending > n:  # noqa: ASYNC110 (pending has no event; it drops as futures resolve)
            await asyncio.sleep(0.005)


async def test_pubacks_go_out_in_arrival_order_even_when_settled_out_of_order() -> None:
    t, broker, bus, release = await setup(port=1, reconnect_initial=5, reconnect_max=5)
    try:
        for mid in (1, 2, 3):
            publish(broker, mid)
        release[3].set()
        release[2].set()
        await settle(t, 1)
        assert broker.pubacks == [], "2 and 3 are settled but 1 is not: nothing may be acknowledged yet"
        release[1].set()
        await settle(t, 0)
        assert broker.pubacks == [1, 2, 3]
    finally:
        await bus.stop()


async def test_out_of_order_acks_when_disabled() -> None:
    t, broker, bus, release = await setup(port=1, reconnect_initial=5, reconnect_max=5, ack_in_order=False)
    try:
        for mid in (1, 2):
            publish(broker, mid)
        release[2].set()
        await settle(t, 1)
        assert broker.pubacks == [2]
        release[1].set()
        await settle(t, 0)
        assert broker.pubacks == [2, 1]
    finally:
        await bus.stop()


async def test_message_from_a_lost_connection_is_not_acknowledged_on_the_new_one() -> None:
    t, broker, bus, release = await setup(port=1, reconnect_initial=5, reconnect_max=5)
    try:
        publish(broker, 1)
        broker.drop_connection("test: connection dropped")  # the broker will redeliver message 1 to the new connection
        release[1].set()
        await settle(t, 0)
        assert broker.pubacks == []
    finally:
        await bus.stop()


async def test_reading_pauses_at_max_inflight_and_resumes_when_messages_settle() -> None:
    t, broker, bus, release = await setup(port=1, reconnect_initial=5, reconnect_max=5, max_inflight=2)
    try:
        publish(broker, 1)
        assert not broker.reading_paused
        publish(broker, 2)
        assert broker.reading_paused and t.pending == 2
        release[1].set()
        await settle(t, 1)
        assert not broker.reading_paused
        assert broker.pubacks == [1]
        release[2].set()
    finally:
        await bus.stop()


async def test_qos0_messages_are_handled_without_acknowledgement() -> None:
    t, broker, bus, release = await setup(port=1, reconnect_initial=5, reconnect_max=5)
    try:
        publish(broker, 4, qos=0)
        release[4].set()
        await settle(t, 0)
        assert broker.pubacks == []
    finally:
        await bus.stop()
