"""Non-finite numbers (issue 11.4) over a real Mosquitto: a JSON payload with bare NaN/Infinity tokens
becomes an event holding the strings "NaN"/"Infinity", and an event published with a float NaN goes out as
strict RFC 8259 JSON."""

from __future__ import annotations

import asyncio

import pytest

from pywats_events import Event, EventBus
from tests.integration.core.test_non_finite import EXPECTED, nan_event, strict
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]


async def test_json_intake_reads_bare_tokens_as_strings_and_publishing_is_strict(run: Run) -> None:
    rules = [{"topic": f"{run.prefix}/results/{{station}}", "type": "test.result", "source": "{station}"}]
    t = run.transport(rules=rules, publish_topic=f"{run.prefix}/out/{{type}}")
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe("test.result")(got.append)  # type: ignore[arg-type]
    bus.add_transport(t)
    watcher = run.client()
    watcher.subscribe(f"{run.prefix}/out/#")
    pub = run.client()
    async with bus:
        pub.publish(f"{run.prefix}/results/ict-1", b'{"serial": "SN-1", "vcc": NaN, "limits": [-Infinity, 3.3]}')
        await wait_for(lambda: len(got) == 1, what="the NaN result")
        await bus.send(nan_event(), "mqtt")
        msg = await asyncio.to_thread(watcher.get)
    assert got[0].payload["vcc"] == "NaN" and got[0].payload["limits"] == ["-Infinity", 3.3]
    assert strict(msg.payload)["payload"] == EXPECTED
