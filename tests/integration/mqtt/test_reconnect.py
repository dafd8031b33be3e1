"""Reconnection against a private Mosquitto that the tests stop and start (the shared one is left alone)."""

from __future__ import annotations

import asyncio

import pytest

from pywats_events import Event, EventBus, TransportState
from tests.integration.mqtt.broker import PrivateBroker
from tests.integration.mqtt.conftest import Run, wait_for, wait_state

pytestmark = [pytest.mark.services]


async def test_broker_restart_while_messages_flow_loses_nothing_and_reports_state(
    private_broker: PrivateBroker, private_run: Run
) -> None:
    n = 600
    run = private_run
    consumer = run.transport(
        "consumer", rules=[{"topic": f"{run.prefix}/events/#", "decoder": "event"}], max_inflight=20
    )
    publisher = run.transport(
        "publisher",
        rules=[{"topic": f"{run.prefix}/unused", "type": "x.y"}],
        publish_topic=f"{run.prefix}/events/{{category}}/{{source}}",
        send_timeout=30.0,
    )
    bus = EventBus()
    seen: set[int] = set()
    deliveries = 0
    system: list[Event] = []

    @bus.subscribe("sensor.reading")
    async def handle(event: Event) -> None:
        nonlocal deliveries
        await asyncio.sleep(0.002)  # keep messages in flight when the broker goes away
        deliveries += 1
        seen.add(event.payload["seq"])

    @bus.subscribe("system.transport_*", source="pywats.transport.consumer")
    async def on_state(event: Event) -> None:
        system.append(event)

    bus.add_transport(consumer)
    bus.add_transport(publisher)

    async def publish_all() -> None:
        for i in range(n):
            await publisher.send(Event(type="sensor.reading", source=f"s{i % 4}", payload={"seq": i}))

    async with bus:
        assert bus.readiness()[0]
        sender = asyncio.create_task(publish_all())
        try:
            await wait_for(lambda: len(seen) >= n // 4, what="flow started")
            await asyncio.to_thread(private_broker.stop)
            await wait_state(consumer, TransportState.RECONNECTING)
            ready, details = bus.readiness()
            assert not ready
            assert "transport consumer: reconnecting" in details["not_ready"]
            handled_during_outage = len(seen)
            await asyncio.to_thread(private_broker.start)
            await wait_state(consumer, TransportState.CONNECTED)
            await wait_state(publisher, TransportState.CONNECTED)
            assert bus.readiness()[0]
            await asyncio.wait_for(sender, 30)
            await wait_for(lambda: len(seen) == n, timeout=30, what="every message handled after the restart")
            await wait_for(lambda: bool(system) and system[-1].type == "system.transport_connected", timeout=10,
                           what="the reconnect reported")
            during = [e.type for e in system]
        finally:
            sender.cancel()
    assert seen == set(range(n)), "nothing lost across the broker restart"
    assert handled_during_outage < n, "messages were still flowing when the broker stopped"
    assert deliveries >= n  # at least once: copies in flight during the restart may come twice
    assert "system.transport_disconnected" in during
    assert during[-1] == "system.transport_connected"


async def test_transport_started_while_broker_is_down_connects_when_it_comes_up(
    private_broker: PrivateBroker, private_run: Run
) -> None:
    run = private_run
    await asyncio.to_thread(private_broker.stop)
    t = run.transport(rules=[{"topic": f"{run.prefix}/in/{{station}}", "type": "test.result"}])
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        got.append(event)

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.RECONNECTING  # start() returned; it keeps trying in the background
        ready, details = bus.readiness()
        assert not ready
        assert details["not_ready"] == ["transport mqtt: reconnecting"]
        await asyncio.to_thread(private_broker.start)
        await wait_state(t, TransportState.CONNECTED)
        pub = run.client()
        pub.publish(f"{run.prefix}/in/st-9", b'{"ok": true}')
        await wait_for(lambda: len(got) == 1, what="message after late connect")
    assert got[0].payload == {"ok": True}
