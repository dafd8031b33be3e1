"""Publishing: send(event) to the topic template, retain, and the birth / offline status messages."""

from __future__ import annotations

import asyncio
import json

import pytest

from pywats_events import Event, EventBus
from pywats_mqtt import MQTTPublishError
from tests.integration.mqtt.conftest import Run

pytestmark = [pytest.mark.services]


async def test_send_publishes_event_json_to_template_topic_retained_and_status_follows_lifecycle(run: Run) -> None:
    t = run.transport(
        rules=[{"topic": f"{run.prefix}/in", "type": "x.y"}],
        publish_topic=f"{run.prefix}/out/{{category}}/{{type}}/{{source}}",
        publish_retain=True,
    )
    out_topic = f"{run.prefix}/out/test/test.result/ict-2"
    run.retained.add(out_topic)
    watcher = run.client()
    watcher.subscribe(f"{run.prefix}/out/#")
    watcher.subscribe(t.status_topic or "")
    bus = EventBus()
    bus.add_transport(t)
    event = Event(type="test.result", source="ict-2", payload={"serial": "SN-9", "result": "fail"}, severity="error")
    async with bus:
        online = await asyncio.to_thread(watcher.get)
        assert (online.topic, online.payload) == (t.status_topic, b"online")
        await bus.send(event, "mqtt")
        msg = await asyncio.to_thread(watcher.get)
        assert msg.topic == out_topic
        assert Event.from_json_dict(json.loads(msg.payload)) == event
        # Retained: a client subscribing later still gets it, flagged retained.
        late = run.client()
        late.subscribe(out_topic)
        kept = await asyncio.to_thread(late.get)
        assert kept.retain and Event.from_json_dict(json.loads(kept.payload)).id == event.id

        with pytest.raises(MQTTPublishError, match="not a valid topic name"):
            await t.send(Event(type="test.result", source="a+b"))
    offline = await asyncio.to_thread(watcher.get)
    assert (offline.topic, offline.payload) == (t.status_topic, b"offline")
    with pytest.raises(MQTTPublishError, match="not started"):
        await t.send(event)
