"""``MQTTTransport.reload`` (SIGHUP) on the real Mosquitto: changed topic rules take effect without a restart
(new filters subscribed, removed ones unsubscribed, the rule table swapped between messages), and the
option keys that need a restart are returned, not silently ignored."""

from __future__ import annotations

import asyncio

import pytest

from pywats_events import DeadLetterReason, Event, EventBus, MemoryStore, TransportState
from pywats_mqtt import MQTTConfigError
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_reload_subscribes_new_rules_unsubscribes_removed_ones_and_names_what_needs_a_restart(
    run: Run, protocol: str
) -> None:
    old_rule = {"topic": f"{run.prefix}/old/{{station}}", "type": "test.old", "source": "{station}"}
    new_rule = {"topic": f"{run.prefix}/new/{{station}}", "type": "test.new", "source": "{station}"}
    t = run.transport(protocol=protocol, rules=[old_rule])
    store = MemoryStore()
    bus = EventBus(store, emit_system_events=False)
    got: list[Event] = []

    @bus.subscribe("test.*")
    async def handle(event: Event) -> None:
        got.append(event)

    bus.add_transport(t)
    publisher = run.client(protocol=protocol)
    async with bus:
        assert t.state is TransportState.CONNECTED
        publisher.publish(f"{run.prefix}/old/ict-1", b'{"n": 1}')
        await wait_for(lambda: len(got) == 1, what="message on the old rule")

        not_applied = await t.reload({"rules": [new_rule], "port": run.port + 1, "keepalive": 30})
        assert not_applied == ["port"]  # keepalive is unchanged; the port needs a restart
        assert t.state is TransportState.CONNECTED and t.settings.port == run.port
        assert [f for f, _ in t.subscriptions] == [f"{run.prefix}/new/+"]

        publisher.publish(f"{run.prefix}/new/ict-2", b'{"n": 2}')
        await wait_for(lambda: len(got) == 2, what="message on the new rule")
        # The old filter is unsubscribed: the broker no longer sends its messages (nothing unrouted either).
        publisher.publish(f"{run.prefix}/old/ict-3", b'{"n": 3}')
        publisher.publish(f"{run.prefix}/new/ict-4", b'{"n": 4}')
        await wait_for(lambda: len(got) == 3, what="second message on the new rule")
        await asyncio.sleep(0.3)
        await wait_for(lambda: t.pending == 0, what="everything settled")
        unrouted = await store.list_dead_letters(reason=DeadLetterReason.UNROUTED)
    assert [(e.type, e.source) for e in got] == [("test.old", "ict-1"), ("test.new", "ict-2"), ("test.new", "ict-4")]
    assert unrouted == []
    assert t.received == 3 and t.acknowledged == 3


async def test_invalid_reloaded_rules_raise_and_change_nothing(run: Run) -> None:
    rule = {"topic": f"{run.prefix}/a/{{station}}", "type": "test.a", "source": "{station}"}
    t = run.transport(rules=[rule])
    bus = EventBus(emit_system_events=False)
    got: list[Event] = []

    @bus.subscribe("test.a")
    async def handle(event: Event) -> None:
        got.append(event)

    bus.add_transport(t)
    publisher = run.client()
    async with bus:
        with pytest.raises(MQTTConfigError, match=r"transports\[mqtt\]\.rules\[0\]"):
            await t.reload({"rules": [{"topic": f"{run.prefix}/#/x", "type": "test.b"}]})
        assert await t.reload({"rules": [rule]}) == []  # unchanged: nothing to do, nothing refused
        publisher.publish(f"{run.prefix}/a/ict-1", b"{}")
        await wait_for(lambda: len(got) == 1, what="the old rule still applies")
