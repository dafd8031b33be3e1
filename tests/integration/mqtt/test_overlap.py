"""Overlapping mapping rules on the real Mosquitto: one message is one event, whatever copies the broker sends.

Mosquitto sends one copy of a message per matching subscription. ``alarms/{station}/critical`` and
``alarms/{station}/+`` used to give two copies with two different event ids, so every handler ran twice.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from pywats_events import Event, EventBus
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_covered_rule_filter_is_not_subscribed_twice_and_each_alarm_is_one_event(
    run: Run, protocol: str
) -> None:
    p = run.prefix
    t = run.transport(
        protocol=protocol,
        rules=[
            {"topic": f"{p}/alarms/{{station}}/critical", "type": "asset.alarm", "severity": "critical"},
            {"topic": f"{p}/alarms/{{station}}/+", "type": "asset.notice"},
        ],
    )
    assert [f for f, _ in t.subscriptions] == [f"{p}/alarms/+/+"]
    bus = EventBus()
    calls: list[Event] = []

    @bus.subscribe("asset.*")
    async def handle(event: Event) -> None:
        calls.append(event)

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        for i in range(5):
            pub.publish(f"{p}/alarms/st{i}/critical", json.dumps({"n": i}))
        pub.publish(f"{p}/alarms/st9/info", json.dumps({"n": 9}))
        await wait_for(lambda: t.acknowledged >= 6, what="six messages settled")
        await asyncio.sleep(0.3)  # a second copy, if the broker sent one, would arrive now
    assert t.received == 6
    assert sorted(e.type for e in calls) == ["asset.alarm"] * 5 + ["asset.notice"]
    assert len({e.id for e in calls}) == 6


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_partly_overlapping_filters_run_each_handler_once_per_message(run: Run, protocol: str) -> None:
    """``x/+/c`` and ``x/b/+`` both match ``x/b/c`` and neither covers the other: Mosquitto sends two
    copies to an MQTT 5 client, whose Subscription Identifier marks the second copy: it is acknowledged and
    dropped. (To an MQTT 3.1.1 client Mosquitto 2.0 sends one copy; another broker's second copy would get
    the same content-derived event id and be merged, see the test below.)"""
    p = run.prefix
    t = run.transport(
        protocol=protocol,
        rules=[
            {"topic": f"{p}/x/+/c", "type": "sensor.first"},
            {"topic": f"{p}/x/b/+", "type": "sensor.second"},
        ],
    )
    assert len(t.subscriptions) == 2
    bus = EventBus()
    calls: list[Event] = []

    @bus.subscribe("sensor.*")
    async def handle(event: Event) -> None:
        await asyncio.sleep(0.05)  # still settling when the second copy arrives
        calls.append(event)

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        for i in range(5):
            pub.publish(f"{p}/x/b/c", json.dumps({"n": i}))
        pub.publish(f"{p}/x/z/c", json.dumps({"n": 10}))  # first filter only
        pub.publish(f"{p}/x/b/z", json.dumps({"n": 11}))  # second filter only
        copies = 12 if protocol == "5" else 7  # Mosquitto 2.0 sends a 3.1.1 client one copy
        await wait_for(lambda: t.acknowledged == copies, what="every copy acknowledged")
        await asyncio.sleep(0.3)
    assert sorted(e.payload["n"] for e in calls) == [0, 1, 2, 3, 4, 10, 11]
    assert all(e.type == "sensor.first" for e in calls if e.payload["n"] < 5)
    assert t.received == copies
    assert (t.overlap_copies, t.merged_copies) == ((5 if protocol == "5" else 0), 0)


async def test_copy_arriving_while_the_first_is_in_the_bus_is_settled_with_it(run: Run) -> None:
    p = run.prefix
    t = run.transport(protocol="3.1.1", rules=[{"topic": f"{p}/r/{{station}}", "type": "test.result"}])
    bus = EventBus()
    calls: list[Event] = []
    release = asyncio.Event()

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event)
        await release.wait()

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        pub.publish(f"{p}/r/ict", b'{"serial": "SN1"}')
        pub.publish(f"{p}/r/ict", b'{"serial": "SN1"}')
        await wait_for(lambda: t.received == 2, what="both copies received")
        await wait_for(lambda: t.merged_copies == 1, what="second copy merged")
        assert t.acknowledged == 0  # neither is acknowledged before the first is settled
        release.set()
        await wait_for(lambda: t.acknowledged == 2, what="both acknowledged")
    assert len(calls) == 1


async def test_copy_arriving_after_the_first_settled_is_skipped_by_idempotency(run: Run) -> None:
    """The same message published twice (a sender retrying after a lost PUBACK) is one event: the second
    copy arrives after the first was settled, and its content-derived id finds the idempotency record."""
    p = run.prefix
    t = run.transport(protocol="3.1.1", rules=[{"topic": f"{p}/r/{{station}}", "type": "test.result"}])
    bus = EventBus()
    calls: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event)

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        pub.publish(f"{p}/r/ict", b'{"serial": "SN1"}')
        await wait_for(lambda: t.acknowledged == 1, what="first copy settled")
        pub.publish(f"{p}/r/ict", b'{"serial": "SN1"}')
        await wait_for(lambda: t.acknowledged == 2, what="second copy settled")
    assert len(calls) == 1


async def test_delivery_event_ids_keep_identical_readings_as_separate_events(run: Run) -> None:
    p = run.prefix
    t = run.transport(
        rules=[{"topic": f"{p}/oven/{{oven}}", "type": "sensor.reading", "decoder": "text", "event_id": "delivery"}]
    )
    bus = EventBus()
    calls: list[Event] = []

    @bus.subscribe("sensor.reading")
    async def handle(event: Event) -> None:
        calls.append(event)

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        for _ in range(3):
            pub.publish(f"{p}/oven/o1", b"231.5")
        await wait_for(lambda: t.acknowledged == 3, what="three readings settled")
    assert len(calls) == 3 and len({e.id for e in calls}) == 3
