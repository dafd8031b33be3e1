"""Non-finite numbers (issue 11.4) over a real NATS JetStream: a JSON message with bare NaN/Infinity tokens
becomes an event holding the strings, and an event sent with a float NaN is strict RFC 8259 JSON."""

from __future__ import annotations

from pywats_events import Event, EventBus
from tests.integration.core.test_non_finite import EXPECTED, nan_event, strict
from tests.integration.nats.conftest import Run, wait_for


async def test_json_intake_and_publishing(run: Run) -> None:
    t = run.transport(
        rules=[{"subject": f"{run.prefix}.results.>", "type": "test.result"}],
        publish_subject=f"{run.prefix}.out.{{type}}",
        filter_subject=f"{run.prefix}.results.>",
    )
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe("test.result")(got.append)  # type: ignore[arg-type]
    bus.add_transport(t)
    async with bus:
        async with run.client() as nc:
            js = nc.jetstream()
            await js.publish(f"{run.prefix}.results.ict-1", b'{"serial": "SN-1", "vcc": NaN, "hi": Infinity}')
            await wait_for(lambda: len(got) == 1, what="the NaN result")
            await t.send(nan_event())
            sub = await js.pull_subscribe(f"{run.prefix}.out.>", durable=f"{run.durable}-nan", stream=run.stream)
            (msg,) = await sub.fetch(1, timeout=5)
    assert got[0].payload["vcc"] == "NaN" and got[0].payload["hi"] == "Infinity"
    assert strict(msg.data)["payload"] == EXPECTED
