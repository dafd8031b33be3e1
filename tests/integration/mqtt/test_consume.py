"""Consuming from the real Mosquitto: mapping, dead-lettering, CFX payloads, backpressure, shared groups."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from pywats_events import Event, EventBus, TransportState
from pywats_mqtt import MQTTTransport
from tests.integration.mqtt.broker import need_binary
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_mosquitto_pub_message_becomes_event_with_named_fields_and_is_acknowledged(
    run: Run, protocol: str
) -> None:
    mosquitto_pub = need_binary("mosquitto_pub", shutil.which("mosquitto_pub"))
    t = run.transport(
        protocol=protocol,
        rules=[
            {
                "topic": f"{run.prefix}/stations/{{station}}/results",
                "type": "test.result",
                "source": "{station}",
                "subjects": ["{payload.serial}"],
                "severity": "warning",
            }
        ],
    )
    bus = EventBus()
    got: list[Event] = []
    arrived = asyncio.Event()

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        got.append(event)
        arrived.set()

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.CONNECTED
        assert bus.readiness()[0]
        cmd = [mosquitto_pub, "-h", "127.0.0.1", "-p", str(run.port), "-q", "1"]
        cmd += ["-V", "mqttv5" if protocol == "5" else "mqttv311"]
        cmd += ["-t", f"{run.prefix}/stations/ict-7/results", "-m", '{"serial": "SN-1", "result": "pass"}']
        if protocol == "5":
            cmd += ["-D", "publish", "user-property", "line", "L1"]
        proc = await asyncio.create_subprocess_exec(*cmd)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        async with asyncio.timeout(10):
            await arrived.wait()
        await wait_for(lambda: t.acknowledged == 1, what="PUBACK after settlement")

    event = got[0]
    assert event.type == "test.result"
    assert event.source == "ict-7"
    assert event.subjects == ("SN-1",)
    assert event.severity == "warning"
    assert event.payload == {"serial": "SN-1", "result": "pass"}
    assert event.headers["mqtt_fields"] == {"station": "ict-7"}
    assert event.headers["mqtt_topic"] == f"{run.prefix}/stations/ict-7/results"
    assert event.headers["mqtt_qos"] == 1
    if protocol == "5":
        assert event.headers["mqtt_user_properties"] == {"line": "L1"}


async def test_unrouted_and_undecodable_messages_are_dead_lettered_acknowledged_and_replayable(run: Run) -> None:
    rules = [{"topic": f"{run.prefix}/results/{{station}}", "type": "test.result", "source": "{station}"}]
    t = run.transport(subscriptions=[{"topic": f"{run.prefix}/#"}], rules=rules)
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("*")
    async def handle(event: Event) -> None:
        if not event.type.startswith("system."):
            got.append(event)

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        pub.publish(f"{run.prefix}/sensors/oven-3", b"231.5")
        pub.publish(f"{run.prefix}/results/ict-1", b"{not json")
        await wait_for(lambda: t.acknowledged == 2, what="both bad messages acknowledged after dead-lettering")
        entries = {e.reason: e for e in await bus.dead_letters.list()}
        assert set(entries) == {"unrouted", "decode_error"}
        unrouted, bad = entries["unrouted"], entries["decode_error"]
        assert unrouted.raw_body == b"231.5"
        assert unrouted.origin == f"mqtt://127.0.0.1:{run.port}/{run.prefix}/sensors/oven-3"
        assert unrouted.error_type == "UnroutedTopicError"
        assert unrouted.headers["pywats-reason"] == "unrouted"
        assert bad.raw_body == b"{not json"
        assert "invalid JSON" in bad.error_message
        assert got == []

        # The integrator adds the missing rule (same transport name) and replays the unrouted entry.
        fixed = [*rules, {"topic": f"{run.prefix}/sensors/{{oven}}", "type": "sensor.reading", "decoder": "text"}]
        MQTTTransport("mqtt", host="127.0.0.1", port=run.port, rules=fixed)
        assert await bus.dead_letters.replay(unrouted.id)
        await wait_for(lambda: len(got) == 1, what="replayed event handled")
        assert got[0].type == "sensor.reading"
        assert got[0].payload == {"text": "231.5"}
        assert got[0].headers["mqtt_fields"] == {"oven": "oven-3"}
        assert await bus.dead_letters.count() == 1


async def test_cfx_envelopes_over_mqtt_keep_their_unique_ids(run: Run) -> None:
    from pywats_cfx import envelope_to_bytes, generate_envelope
    from pywats_cfx.decoder import decode_cfx
    from pywats_events.codec import DecodeContext

    t = run.transport(rules=[{"topic": f"{run.prefix}/cfx/{{handle}}", "decoder": "cfx", "source": "{handle}"}])
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        got.append(event)

    bus.add_transport(t)
    pub = run.client()
    body = envelope_to_bytes(generate_envelope("units-tested", seq=1))
    async with bus:
        pub.publish(f"{run.prefix}/cfx/line1.ict", body)
        pub.publish(f"{run.prefix}/cfx/line1.ict", body)
        await wait_for(lambda: t.acknowledged == 2, what="both CFX messages settled")
    assert got, "a UnitsTested envelope gives test.result events"
    assert all(e.headers["mqtt_fields"] == {"handle": "line1.ict"} for e in got)
    # The rule's source template names the source (not the envelope's own Source).
    assert {e.source for e in got} == {"line1.ict"}
    # The same envelope twice gives the same event ids (from the CFX UniqueID): the second copy is one
    # event with the first, handled once.
    expected = [e.id for e in decode_cfx(body, DecodeContext())]
    assert [e.id for e in got] == expected


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_slow_handler_keeps_memory_bounded_and_loses_nothing(run: Run, protocol: str) -> None:
    n, limit = 300, 8
    t = run.transport(
        protocol=protocol,
        max_inflight=limit,
        rules=[{"topic": f"{run.prefix}/load/{{station}}", "type": "sensor.reading", "source": "{station}"}],
    )
    bus = EventBus()
    seen: list[int] = []

    @bus.subscribe("sensor.reading")
    async def slow(event: Event) -> None:
        await asyncio.sleep(0.005)  # about 200 messages per second: far slower than the publisher
        seen.append(event.payload["seq"])

    bus.add_transport(t)
    pub = run.client()
    received_when_published: list[int] = []

    def publish_all() -> None:
        for i in range(n):
            pub.publish(f"{run.prefix}/load/st1", json.dumps({"seq": i}), qos=1)
        received_when_published.append(t.received)

    async with bus:
        await asyncio.to_thread(publish_all)
        await wait_for(lambda: len(seen) == n, timeout=30, what="every message handled")
        await wait_for(lambda: t.acknowledged == n, what="every message acknowledged")

    assert sorted(seen) == list(range(n)), "nothing lost, nothing duplicated"
    # All 300 were accepted by the broker while the transport had taken far fewer: the rest waited at the
    # broker, not in our memory.
    assert received_when_published[0] < n
    assert t.pending_high_water <= limit
    assert t.queue_high_water <= limit


async def test_shared_subscription_group_members_split_the_messages(run: Run) -> None:
    n = 200
    group = f"g{run.id}"
    rules = [{"topic": f"{run.prefix}/work/{{station}}", "type": "production.work_started"}]
    buses: list[tuple[EventBus, MQTTTransport, list[int]]] = []
    for member in ("a", "b"):
        bus = EventBus()
        t = run.transport(f"member-{member}", shared_group=group, rules=rules)
        seen: list[int] = []

        async def handle(event: Event, seen: list[int] = seen) -> None:
            seen.append(event.payload["seq"])

        bus.register(handle, name=f"h-{member}", event_types=["production.*"])
        bus.add_transport(t)
        buses.append((bus, t, seen))
    assert buses[0][1].subscriptions == [(f"$share/{group}/{run.prefix}/work/+", 1)]
    pub = run.client()
    for bus, _, _ in buses:
        await bus.start()
    try:

        def publish_all() -> None:
            for i in range(n):
                pub.publish(f"{run.prefix}/work/s{i % 5}", json.dumps({"seq": i}))

        await asyncio.to_thread(publish_all)
        await wait_for(lambda: sum(len(s) for _, _, s in buses) >= n, what="all messages handled by the group")
    finally:
        for bus, _, _ in buses:
            await bus.stop()
    a, b = buses[0][2], buses[1][2]
    assert sorted(a + b) == list(range(n)), "together the members got every message exactly once"
    assert a and b, "both members took a share"


async def test_rule_added_between_runs_is_subscribed_although_the_session_is_resumed(run: Run) -> None:
    first = run.transport(rules=[{"topic": f"{run.prefix}/old/{{s}}", "type": "x.old"}])
    bus = EventBus()
    bus.add_transport(first)
    async with bus:
        pass
    rules = [
        {"topic": f"{run.prefix}/old/{{s}}", "type": "x.old"},
        {"topic": f"{run.prefix}/new/{{s}}", "type": "x.new"},
    ]
    second = run.transport(rules=rules)  # same name, so the same client id and session
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("x.*")
    async def handle(event: Event) -> None:
        got.append(event)

    bus.add_transport(second)
    pub = run.client()
    async with bus:
        assert "session resumed" in (second.state_detail or "")
        pub.publish(f"{run.prefix}/new/a", b"{}")
        await wait_for(lambda: len(got) == 1, what="message on the filter added since the session was made")
    assert got[0].type == "x.new"
