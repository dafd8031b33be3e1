"""Large messages on the real RabbitMQ: a body over ``max_message_size`` is dead-lettered ``too_large``
(a prefix and its size, never decoded), the body bytes in flight stay within ``max_inflight_bytes``, and a
consumer process's memory (RSS) rises by a small multiple of one message and comes back down."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.event import Event
from pywats_events.store import MemoryStore
from pywats_events.transport import TOO_LARGE_PREFIX
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, queue_depth, wait_for

UNITS_TESTED = "CFX.Production.TestAndInspection.UnitsTested"
MIB = 1024 * 1024


def padded(seq: int, handle: str, size: int) -> bytes:
    """A valid CFX envelope of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    body = envelope_bytes(seq, source=handle)
    return body + b" " * (size - len(body))


async def test_message_over_max_message_size_is_dead_lettered_too_large_with_a_prefix_and_acked(
    amqp: AmqpNames, publisher: Publisher
) -> None:
    store = MemoryStore()
    transport = CFXTransport("cfx", **amqp.transport_options(max_message_size=64 * 1024))
    bus = EventBus(store=store)
    bus.add_transport(transport)
    good: list[Event] = []
    bus.subscribe("test.result")(lambda e: good.append(e))  # type: ignore[func-returns-value]
    rk = f"{amqp.handle}.{UNITS_TESTED}"
    big = padded(1, amqp.handle, 3 * MIB)
    async with bus:
        await publisher.publish(big, rk)
        await publisher.publish(padded(2, amqp.handle, 64 * 1024), rk)  # exactly the limit: accepted
        await wait_for(lambda: transport.stats["too_large"] == 1 and len(good) > 0, 20, "too_large and good")
        [entry] = await store.list_dead_letters(limit=10)
    assert await queue_depth(amqp.queue) == 0  # both acked
    assert entry.reason == "too_large" and entry.error_type == "MessageTooLarge"
    assert entry.raw_body == big[:TOO_LARGE_PREFIX]
    assert entry.headers["pywats-size"] == len(big)
    assert entry.headers["pywats-max-message-size"] == 64 * 1024
    assert entry.headers["pywats-truncated"] is True
    assert entry.headers["amqp.routing_key"] == rk
    assert f"{len(big)} bytes exceeds max_message_size" in (entry.error_message or "")
    assert {e.headers["amqp.routing_key"] for e in good} == {rk}


async def test_body_bytes_in_flight_stay_within_max_inflight_bytes(amqp: AmqpNames, publisher: Publisher) -> None:
    budget, size, count = 1 * MIB, 200 * 1024, 60
    transport = CFXTransport(
        "cfx", **amqp.transport_options(prefetch=200, max_inflight_bytes=budget, max_message_size=MIB)
    )
    bus = EventBus()
    bus.add_transport(transport)
    seen: list[str] = []

    @bus.subscribe("test.result")
    async def slow(event: Event) -> None:
        await asyncio.sleep(0.02)
        seen.append(event.id)

    rk = f"{amqp.handle}.{UNITS_TESTED}"
    async with bus:
        await publisher.publish_many(((padded(i, amqp.handle, size), rk) for i in range(count)), window=20)
        await wait_for(lambda: transport.stats["settled"] == count, 60, "every message settled")
        now, peak, pauses = transport.inflight_bytes
    assert now == 0
    assert pauses >= 1
    # Bounded by the budget plus what was already read when reading paused (asyncio reads up to 256 KiB per
    # loop iteration, the stream buffer holds up to 128 KiB; measured 1.6 MB), not by prefetch x size (12 MB).
    assert peak <= budget + 2 * size + 768 * 1024, peak
    assert await queue_depth(amqp.queue) == 0


RSS_WORKER = Path(__file__).with_name("rss_worker.py")


async def test_consumer_rss_rises_by_a_small_multiple_of_a_large_message_and_returns(
    amqp: AmqpNames, publisher: Publisher, tmp_path: Path
) -> None:
    """A real consumer process: 6 x 24 MiB messages over the 8 MiB default limit, then 6 x 6 MiB under it.
    Its RSS is sampled every 5 ms by the process itself (psutil)."""
    big, small = 24 * MIB, 6 * MIB
    options = amqp.transport_options()
    repo = Path(__file__).resolve().parents[3]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RSS_WORKER), json.dumps(options), str(tmp_path / "events.db"), "12",
        cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"READY", line
        rk = f"{amqp.handle}.{UNITS_TESTED}"
        for i in range(6):
            await publisher.publish(padded(i, amqp.handle, big), rk)
        for i in range(6, 12):
            await publisher.publish(padded(i, amqp.handle, small), rk)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    report = json.loads(out.decode().strip().splitlines()[-1])
    assert report["too_large"] == 6 and report["settled"] == 6
    rise = report["peak_rss"] - report["baseline_rss"]
    # The 6 MiB messages are decoded (JSON to Python objects) and stored; the 24 MiB ones are not decoded.
    # Measured: the peak rises by about 2x one big message (aiormq assembles a body from its frames).
    assert rise < 3 * big, report
    # Memory comes back (measured +8 MB after; +33 MB while glibc's adaptive mmap threshold kept freed
    # large buffers in the heap, see pywats_events.transport.return_large_buffers).
    assert report["after_rss"] - report["baseline_rss"] < big // 2, report
