"""Benchmark: consuming IPC-CFX from RabbitMQ: ``CFXTransport`` -> bus -> no-op handler against three peers.

Run: ``python bench/amqp.py [--messages 20000] [--rounds 5] [--backlog 100000] [--store memory|sqlite]
[--prefetch 512]`` against the RabbitMQ at ``PYWATS_TEST_AMQP_URL`` (default
``amqp://guest:guest@127.0.0.1:5672/``). FastStream comes with the ``bench`` extra
(``pip install -e ".[bench]"``); without it the bench says so and reports ``ratio_faststream: null``.

1. The same ``--messages`` CFX ``UnitsTested`` envelopes (~1 KB each) are published to an exchange that
   feeds one queue per contender; every round drains all of them, in an order that rotates from round to
   round (so no contender always runs on a warmer or busier machine), and the medians are reported.
2. Contenders, all with the same prefetch:
   (a) plain aio-pika, ``json.loads`` the body, ``ack`` each message;
   (c) plain aio-pika, ``json.loads``, ``ack(multiple=True)`` every 100 messages (and the last);
   (f) FastStream's RabbitMQ subscriber (``@broker.subscriber``, body parsed to a ``dict``, acked after
       the handler, its default);
   (b) ``CFXTransport`` into an ``EventBus`` (``--store``: in-memory, or SQLite on a temp file) with one
       no-op async handler; done when every message is settled and acknowledged to the broker.
3. Peak RSS: a fresh child process (so the publishing above does not count) runs (b) on a backlog of
   ``--backlog`` messages and reports its peak resident set size (``ru_maxrss``).

The last line is one JSON object: ``{"raw_eps", "batched_eps", "faststream_eps", "bus_eps", "ratio"
(b/a), "ratio_batched" (b/c), "ratio_faststream" (b/f), "bus_cpu_us", "peak_rss_mb", "load_avg"}``.
Queues and exchanges get a random suffix and are deleted afterwards.

``--large N`` runs only the large-message case (issue 9: 8 x 50 MB in flight took RSS to 2.1 GB, 673 MB
stayed): a backlog of N messages of ``--large-mb`` MiB (default 50, over the 8 MiB ``max_message_size``:
dead-lettered ``too_large``) then N of ``--under-mb`` MiB (default 6: decoded and stored in SQLite) is
drained by a fresh child process with default settings, which samples its RSS every 5 ms (psutil). Last
line: ``{"large_mb", "under_mb", "count", "rss_baseline_mb", "rss_peak_mb", "rss_after_mb",
"peak_rise_per_large_message", "after_minus_baseline_mb", "peak_inflight_mb", "too_large", "settled"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# bench/ holds http.py, which would shadow the standard library's http package: run from the repo root.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import aio_pika  # noqa: E402

from pywats_cfx.envelope import envelope_to_bytes  # noqa: E402
from pywats_cfx.explorer import generate_envelope  # noqa: E402
from pywats_cfx.transport import CFXTransport  # noqa: E402
from pywats_events.bus import EventBus  # noqa: E402
from pywats_events.event import Event  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402
from pywats_events.store import Store  # noqa: E402

AMQP_URL = os.environ.get("PYWATS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
HANDLE = "Bench.Tester.1"
ROUTING_KEY = f"{HANDLE}.CFX.Production.TestAndInspection.UnitsTested"


def bodies(n: int) -> list[bytes]:
    """``n`` distinct UnitsTested envelopes of about 1 KB (two tests each)."""
    return [envelope_to_bytes(generate_envelope("units-tested", seq=i, source=HANDLE, tests=2)) for i in range(n)]


async def publish(exchange_name: str, payloads: list[bytes]) -> float:
    """Publish persistent messages without confirms (``wait_queue_filled`` checks arrival); returns msg/s."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel(publisher_confirms=False)
        ex = await ch.get_exchange(exchange_name)
        t0 = time.perf_counter()
        for body in payloads:
            await ex.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), ROUTING_KEY)
        return len(payloads) / (time.perf_counter() - t0)


async def wait_queue_filled(queue: str, n: int) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        while True:
            q = await ch.declare_queue(queue, passive=True)
            if (q.declaration_result.message_count or 0) >= n:
                return
            await asyncio.sleep(0.1)


async def drain_raw(queue: str, n: int, prefetch: int, batch: int = 1) -> tuple[float, float]:
    """(a) / (c) plain aio-pika: parse JSON, ack each message (``batch`` 1) or every ``batch`` messages with
    ``multiple=True``; returns (messages/s, client CPU us/message)."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=prefetch)
        q = await ch.declare_queue(queue, passive=True)
        done = asyncio.Event()
        count = 0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal count
            json.loads(message.body)
            count += 1
            if batch == 1:
                await message.ack()
            elif count % batch == 0 or count == n:
                await message.ack(multiple=True)
            if count == n:
                done.set()

        t0, c0 = time.perf_counter(), time.process_time()
        tag = await q.consume(on_message)
        await done.wait()
        rate = n / (time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / n * 1e6
        await q.cancel(tag)
        return rate, cpu


def faststream_available() -> bool:
    try:
        import faststream.rabbit  # noqa: F401
    except ImportError:
        return False
    return True


async def drain_faststream(queue: str, n: int, prefetch: int) -> tuple[float, float]:
    """(f) FastStream's RabbitMQ subscriber (acks after the handler); returns (messages/s, CPU us/message)."""
    from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

    broker = RabbitBroker(AMQP_URL, default_channel=Channel(prefetch_count=prefetch), logger=None)
    done = asyncio.Event()
    count = 0

    @broker.subscriber(RabbitQueue(queue, declare=False))
    async def handle(body: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    t0, c0 = time.perf_counter(), time.process_time()
    await broker.start()
    try:
        await done.wait()
        rate = n / (time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / n * 1e6
    finally:
        await broker.stop()
    return rate, cpu


def make_store(kind: str, tmp: str) -> Store | None:
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db")
    return None


async def drain_bus(options: dict[str, Any], n: int, store_kind: str) -> tuple[float, float]:
    """(b) CFXTransport -> EventBus -> no-op handler; returns (messages/s settled and acked, CPU us/message)."""
    with tempfile.TemporaryDirectory() as tmp:
        transport = CFXTransport("cfx", **options)
        bus = EventBus(store=make_store(store_kind, tmp))
        bus.add_transport(transport)

        @bus.subscribe("test.result")
        async def noop(event: Event) -> None:
            return None

        await bus.start()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            await transport.wait_acked(n)  # the finish line: every message settled and acked
            rate = n / (time.perf_counter() - t0)
            cpu = (time.process_time() - c0) / n * 1e6
        finally:
            await bus.stop()
        return rate, cpu


async def setup(exchange: str, queues: list[str], prefetch: int) -> list[dict[str, Any]]:
    options = []
    for q in queues:
        opts = {"url": AMQP_URL, "exchange": exchange, "queue": q, "handle": HANDLE, "max_in_flight": prefetch}
        await CFXTransport("declare", **opts).declare_topology()
        options.append(opts)
    return options


async def cleanup(exchange: str, queues: list[str]) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        for q in queues:
            await ch.queue_delete(q)
            await ch.queue_delete(f"{q}.dead-letter")
            await ch.exchange_delete(f"{q}.dead-letter")
        await ch.exchange_delete(exchange)


def child_main(args: argparse.Namespace) -> None:
    """The peak-RSS child: drain the backlog queue through the bus, print peak RSS in MB."""
    options = json.loads(args.child)
    rate, cpu = asyncio.run(drain_bus(options, args.backlog, args.store))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"eps": rate, "cpu_us": cpu, "peak_rss_mb": peak_mb}))


async def drain_large(options: dict[str, Any], n: int) -> dict[str, Any]:
    """The large-message child: drain through the bus into SQLite, sampling this process's RSS."""
    import gc

    import psutil

    me = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        transport = CFXTransport("cfx", **options)
        bus = EventBus(store=make_store("sqlite", tmp))
        bus.add_transport(transport)

        @bus.subscribe("test.result")
        async def noop(event: Event) -> None:
            return None

        gc.collect()
        baseline = me.memory_info().rss
        peak = baseline
        await bus.start()
        stats = transport.stats
        try:
            while stats["settled"] + stats["too_large"] < n:
                await asyncio.sleep(0.005)
                peak = max(peak, me.memory_info().rss)
            inflight_peak = transport.inflight_bytes[1]
            await asyncio.sleep(1.0)
            gc.collect()
            after = me.memory_info().rss
        finally:
            await bus.stop()
    return {
        "baseline": baseline,
        "peak": peak,
        "after": after,
        "inflight_peak": inflight_peak,
        "too_large": stats["too_large"],
        "settled": stats["settled"],
    }


async def main_large(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-cfx-{tag}", f"bench-large-{tag}"
    mib = 1024 * 1024
    try:
        (opts,) = await setup(exchange, [queue], args.prefetch)
        base = bodies(1)[0]
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            ch = await conn.channel(publisher_confirms=True)
            ex = await ch.get_exchange(exchange)
            for size_mb in (args.large_mb, args.under_mb):
                body = base + b" " * (size_mb * mib - len(base))  # valid JSON: trailing whitespace
                for _ in range(args.large):
                    await ex.publish(aio_pika.Message(body), ROUTING_KEY)
                del body
        await wait_queue_filled(queue, 2 * args.large)
        print(f"backlog: {args.large} x {args.large_mb} MiB then {args.large} x {args.under_mb} MiB")
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, __file__, "--child-large", json.dumps(opts), "--large", str(2 * args.large)],
            check=True,
            capture_output=True,
            text=True,
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        to_mb = 1 / mib
        result = {
            "large_mb": args.large_mb,
            "under_mb": args.under_mb,
            "count": args.large,
            "rss_baseline_mb": round(child["baseline"] * to_mb, 1),
            "rss_peak_mb": round(child["peak"] * to_mb, 1),
            "rss_after_mb": round(child["after"] * to_mb, 1),
            "peak_rise_per_large_message": round((child["peak"] - child["baseline"]) / (args.large_mb * mib), 2),
            "after_minus_baseline_mb": round((child["after"] - child["baseline"]) * to_mb, 1),
            "peak_inflight_mb": round(child["inflight_peak"] * to_mb, 1),
            "too_large": child["too_large"],
            "settled": child["settled"],
        }
        print(
            f"RSS baseline {result['rss_baseline_mb']} MB, peak {result['rss_peak_mb']} MB "
            f"({result['peak_rise_per_large_message']}x one large message), after {result['rss_after_mb']} MB"
        )
        return result
    finally:
        await cleanup(exchange, [queue])


SIDES = {
    "raw": "(a) plain aio-pika, json.loads + ack each",
    "batched": "(c) plain aio-pika, json.loads + ack(multiple=True) every 100",
    "faststream": "(f) FastStream RabbitMQ subscriber, dict body, ack after handler",
    "bus": "(b) CFXTransport -> bus -> no-op handler",
}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    exchange = f"bench-cfx-{tag}"
    sides = ["raw", "batched", "faststream", "bus"]
    if not faststream_available():
        print("FastStream is not installed (pip install -e '.[bench]'): skipping (f); ratio_faststream is null")
        sides.remove("faststream")
    queues = {side: f"bench-{side}-{tag}" for side in sides}
    qc = f"bench-backlog-{tag}"
    try:
        opts = dict(zip(sides, await setup(exchange, list(queues.values()), args.prefetch), strict=True))
        payloads = bodies(args.messages)
        size = sum(map(len, payloads)) / len(payloads)
        rates: dict[str, list[float]] = {side: [] for side in sides}
        cpus: dict[str, list[float]] = {side: [] for side in sides}
        for r in range(args.rounds):
            print(f"round {r + 1}: publishing {args.messages} UnitsTested envelopes ({size:.0f} B avg) "
                  f"to {len(sides)} queues; load average {os.getloadavg()[0]:.2f}")
            await publish(exchange, payloads)
            for q in queues.values():
                await wait_queue_filled(q, args.messages)
            # Rotate the order so that no contender always runs first (on a warmer or busier machine).
            order = sides[r % len(sides):] + sides[: r % len(sides)]
            for side in order:
                if side == "raw":
                    rate, cpu = await drain_raw(queues[side], args.messages, args.prefetch)
                elif side == "batched":
                    rate, cpu = await drain_raw(queues[side], args.messages, args.prefetch, batch=100)
                elif side == "faststream":
                    rate, cpu = await drain_faststream(queues[side], args.messages, args.prefetch)
                else:
                    rate, cpu = await drain_bus(opts[side], args.messages, args.store)
                rates[side].append(rate)
                cpus[side].append(cpu)
                print(f"  {SIDES[side]}: {rate:,.0f} msg/s, {cpu:.0f} us CPU/message")
        med = {side: statistics.median(v) for side, v in rates.items()}
        cpu_med = {side: statistics.median(v) for side, v in cpus.items()}
        print(f"median of {args.rounds} rounds (ranges in brackets):")
        for side in sides:
            print(f"  {SIDES[side]}: {med[side]:,.0f} msg/s [{min(rates[side]):,.0f}-{max(rates[side]):,.0f}], "
                  f"{cpu_med[side]:.0f} us CPU/message")
        bus = med["bus"]
        ratio_fs = round(bus / med["faststream"], 3) if "faststream" in med else None
        print(f"ratios: bus/ack-each {bus / med['raw']:.2f}, bus/batched {bus / med['batched']:.2f}, "
              f"bus/FastStream {ratio_fs if ratio_fs is not None else 'n/a'}")
        peak = None
        if args.backlog:
            await cleanup(exchange, list(queues.values()))
            (opts_c,) = await setup(exchange, [qc], args.prefetch)
            print(f"publishing a backlog of {args.backlog} ...")
            for i in range(0, args.backlog, len(payloads)):
                await publish(exchange, payloads[: min(len(payloads), args.backlog - i)])
            await wait_queue_filled(qc, args.backlog)
            out = await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    __file__,
                    "--child",
                    json.dumps(opts_c),
                    "--backlog",
                    str(args.backlog),
                    "--store",
                    args.store,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            child = json.loads(out.stdout.strip().splitlines()[-1])
            peak = round(child["peak_rss_mb"], 1)
            print(f"draining the {args.backlog} backlog: {child['eps']:,.0f} msg/s, peak RSS {peak} MB")
        return {
            "raw_eps": round(med["raw"]),
            "batched_eps": round(med["batched"]),
            "faststream_eps": round(med["faststream"]) if "faststream" in med else None,
            "bus_eps": round(bus),
            "ratio": round(bus / med["raw"], 3),
            "ratio_batched": round(bus / med["batched"], 3),
            "ratio_faststream": ratio_fs,
            "bus_cpu_us": round(cpu_med["bus"], 1),
            "peak_rss_mb": peak,
            "load_avg": round(os.getloadavg()[0], 2),
        }
    finally:
        await cleanup(exchange, [*queues.values(), qc])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--prefetch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument("--large", type=int, default=0, help="run only the large-message case with N of each")
    parser.add_argument("--large-mb", type=int, default=50)
    parser.add_argument("--under-mb", type=int, default=6)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-large", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child_main(ns)
    elif ns.child_large:
        print(json.dumps(asyncio.run(drain_large(json.loads(ns.child_large), ns.large))))
    elif ns.large:
        print(json.dumps(asyncio.run(main_large(ns))))
    else:
        print(json.dumps(asyncio.run(main(ns))))
