"""``pywats_mqtt.testing.MQTTTestBroker``: PUBLISH packets through the real MQTTTransport mapping rules,
size limit and ordered-PUBACK logic, without a broker (issue 10, deliverable 6)."""

from __future__ import annotations

import asyncio

from pywats_events import Event, EventBus, MemoryStore, TransportState
from pywats_events.store import DeadLetterReason
from pywats_mqtt import MQTTTransport
from pywats_mqtt.testing import MQTTTestBroker
from tests.waiting import wait_for


async def test_publish_is_mapped_by_the_rules_with_its_properties_and_acked_only_after_the_handler() -> None:
    transport = MQTTTransport(rules=[{"topic": "plant/{station}/result", "type": "test.result", "source": "{station}"}])
    broker = MQTTTestBroker(transport)
    bus = EventBus(emit_system_events=False)
    bus.add_transport(transport)
    seen: list[Event] = []
    release = asyncio.Event()

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        await release.wait()
        seen.append(event)

    async with bus:
        mid = broker.publish(
            "plant/ict-1/result", b'{"result": "pass"}', qos=1, dup=True,
            user_properties={"line": "L1"}, content_type="application/json",
        )
        await asyncio.sleep(0.1)
        assert broker.pubacks == [], "PUBACK before the handler finished"
        release.set()
        await broker.acked(mid)
        q0 = broker.publish("plant/ict-2/result", b'{"result": "fail"}', qos=0)
        await broker.settled()
    assert broker.pubacks == [mid] and q0 not in broker.pubacks  # QoS 0 is never acknowledged
    first = seen[0]
    assert (first.type, first.source, first.payload) == ("test.result", "ict-1", {"result": "pass"})
    assert first.headers["mqtt_topic"] == "plant/ict-1/result" and first.headers["mqtt_dup"] is True
    assert first.headers["mqtt_user_properties"] == {"line": "L1"}
    assert first.headers["mqtt_content_type"] == "application/json"
    assert [e.source for e in seen] == ["ict-1", "ict-2"]


async def test_undecodable_payload_is_dead_lettered_whole_then_acknowledged_in_order() -> None:
    store = MemoryStore()
    transport = MQTTTransport(rules=[{"topic": "plant/{station}/result", "type": "test.result", "source": "{station}"}])
    broker = MQTTTestBroker(transport)
    bus = EventBus(store, emit_system_events=False)
    bus.add_transport(transport)
    async with bus:
        bad = broker.publish("plant/ict-1/result", b"{not json")
        good = broker.publish("plant/ict-1/result", b'{"result": "pass"}')
        await broker.acked(good)
        [entry] = await store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR)
    assert broker.pubacks == [bad, good]
    assert entry.raw_body == b"{not json" and entry.origin.endswith("/plant/ict-1/result")


async def test_trace_context_user_properties_reach_the_top_level_of_the_event_headers() -> None:
    transport = MQTTTransport(rules=[{"topic": "plant/{station}/result", "type": "test.result"}])
    broker = MQTTTestBroker(transport)
    bus = EventBus(emit_system_events=False)
    seen: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        seen.append(event)

    bus.add_transport(transport)
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with bus:
        mid = broker.publish("plant/a/result", b"{}", user_properties={"traceparent": parent, "line": "L1"})
        await broker.acked(mid)
    [event] = seen
    assert event.headers["traceparent"] == parent and "line" not in event.headers
    assert event.headers["mqtt_user_properties"] == {"traceparent": parent, "line": "L1"}


async def test_drop_connection_reconnects_and_subscribes_again() -> None:
    transport = MQTTTransport(rules=[{"topic": "plant/{station}/result", "type": "test.result"}])
    broker = MQTTTestBroker(transport)
    bus = EventBus(emit_system_events=False)
    bus.add_transport(transport)
    async with bus:
        assert broker.subscriptions == ["plant/+/result"]
        broker.subscriptions = []
        broker.drop_connection()
        await wait_for(lambda: transport.state is TransportState.CONNECTED and broker.subscriptions != [])
        assert broker.subscriptions == ["plant/+/result"]
