"""Large messages on the real Mosquitto: a payload over ``max_message_size`` is dead-lettered ``too_large``
(a prefix and its size, never decoded), the payload bytes in flight stay within ``max_inflight_bytes``, and
a consumer process's memory (RSS) rises by a small multiple of one message and comes back down."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from pywats_events import Event, EventBus
from pywats_events.store import MemoryStore
from pywats_events.transport import TOO_LARGE_PREFIX
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]

MIB = 1024 * 1024


def payload(seq: int, size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    body = json.dumps({"seq": seq}).encode()
    return body + b" " * (size - len(body))


async def test_payload_over_max_message_size_is_dead_lettered_too_large_with_a_prefix_and_acked(run: Run) -> None:
    store = MemoryStore()
    t = run.transport(
        max_message_size=64 * 1024,
        rules=[{"topic": f"{run.prefix}/big/{{station}}", "type": "sensor.reading", "source": "{station}"}],
    )
    bus = EventBus(store=store)
    got: list[Event] = []
    bus.subscribe("sensor.reading")(lambda e: got.append(e))  # type: ignore[func-returns-value]
    bus.add_transport(t)
    pub = run.client()
    big = payload(1, 3 * MIB)
    async with bus:
        pub.publish(f"{run.prefix}/big/st1", big)
        pub.publish(f"{run.prefix}/big/st2", payload(2, 64 * 1024))  # exactly the limit: accepted
        await wait_for(lambda: t.acknowledged == 2, what="both acknowledged")
        [entry] = await store.list_dead_letters(limit=10)
    assert t.too_large == 1
    assert [e.payload["seq"] for e in got] == [2]
    assert entry.reason == "too_large" and entry.error_type == "MessageTooLarge"
    assert entry.raw_body == big[:TOO_LARGE_PREFIX]
    assert entry.headers["pywats-size"] == len(big)
    assert entry.headers["pywats-truncated"] is True
    assert entry.headers["mqtt_topic"] == f"{run.prefix}/big/st1"
    assert entry.origin.endswith(f"/{run.prefix}/big/st1")


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_payload_bytes_in_flight_stay_within_max_inflight_bytes(run: Run, protocol: str) -> None:
    budget, size, count = 1 * MIB, 200 * 1024, 40
    t = run.transport(
        protocol=protocol,
        max_inflight=100,
        max_inflight_bytes=budget,
        rules=[{"topic": f"{run.prefix}/load/{{station}}", "type": "sensor.reading", "source": "{station}"}],
    )
    bus = EventBus()
    seen: list[int] = []

    @bus.subscribe("sensor.reading")
    async def slow(event: Event) -> None:
        await asyncio.sleep(0.02)
        seen.append(event.payload["seq"])

    bus.add_transport(t)
    pub = run.client()
    async with bus:
        for i in range(count):
            pub.client.publish(f"{run.prefix}/load/st{i % 4}", payload(i, size), qos=1)
        await wait_for(lambda: t.acknowledged == count, 60, "every message acknowledged")
    assert sorted(seen) == list(range(count))
    # Without the byte budget the broker sends all 40 at once (Receive Maximum 100): 8 MB. With it, reading
    # pauses at the budget; what paho had parsed by then adds at most about one message.
    assert t.pending_bytes_high_water <= budget + 2 * size, t.pending_bytes_high_water


RSS_CONSUMER = Path(__file__).with_name("rss_consumer.py")


async def test_consumer_rss_rises_by_a_small_multiple_of_a_large_message_and_returns(run: Run) -> None:
    """A real consumer process: 6 x 24 MiB payloads over the 8 MiB default limit, then 6 x 6 MiB under it.
    Its RSS is sampled every 5 ms by the process itself (psutil)."""
    big, small = 24 * MIB, 6 * MIB
    repo = Path(__file__).resolve().parents[3]
    client_id = f"pywats-test-{run.id}-rss"
    run.sessions.add(client_id)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RSS_CONSUMER), str(run.port), client_id, run.prefix, "12",
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"READY", line
        pub = run.client()
        for i in range(6):
            await asyncio.to_thread(pub.publish, f"{run.prefix}/rss/st", payload(i, big))
        for i in range(6, 12):
            await asyncio.to_thread(pub.publish, f"{run.prefix}/rss/st", payload(i, small))
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["too_large"] == 6 and report["handled"] == 6
    rise = report["peak_rss"] - report["baseline_rss"]
    assert rise < 3 * big, report
    assert report["after_rss"] - report["baseline_rss"] < big // 2, report
