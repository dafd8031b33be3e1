"""Benchmark: consuming IPC-CFX from RabbitMQ, plain aio-pika vs ``CFXTransport`` -> bus -> no-op handler.

Run: ``python bench/amqp.py [--messages 20000] [--backlog 100000] [--store memory|sqlite] [--prefetch 512]``
against the RabbitMQ at ``PYWATS_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``).

1. The same ``--messages`` CFX ``UnitsTested`` envelopes (~1.5 KB each) are published to an exchange
   that feeds two queues; steps 1-3 run ``--rounds`` times (order of (a) and (b) alternating) and the
   medians are reported, as other work on the machine makes single runs noisy.
2. (a) a plain aio-pika consumer drains queue A: ``json.loads`` the body, ``ack`` each message.
3. (b) ``CFXTransport`` drains queue B into an ``EventBus`` (``--store``: in-memory, or SQLite on a temp
   file) with one no-op async handler; done when every message is settled and acknowledged.
4. Peak RSS: a fresh child process (so the publishing above does not count) runs (b) on a backlog of
   ``--backlog`` messages and reports its peak resident set size (``ru_maxrss``).

Prints both rates (messages/s), the ratio (b)/(a) (target >= 0.9) and the peak RSS in MB (target < 150);
the last line is one JSON object: ``{"raw_eps": ..., "bus_eps": ..., "ratio": ..., "peak_rss_mb": ...}``.
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


async def drain_raw(queue: str, n: int, prefetch: int) -> float:
    """(a) plain aio-pika: parse JSON, ack each message; returns messages/s."""
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
            await message.ack()
            count += 1
            if count == n:
                done.set()

        t0, c0 = time.perf_counter(), time.process_time()
        tag = await q.consume(on_message)
        await done.wait()
        rate = n / (time.perf_counter() - t0)
        print(f"    (a) client CPU {(time.process_time() - c0) / n * 1e6:.0f} us/message")
        await q.cancel(tag)
        return rate


def make_store(kind: str, tmp: str) -> Store | None:
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db")
    return None


async def drain_bus(options: dict[str, Any], n: int, store_kind: str) -> float:
    """(b) CFXTransport -> EventBus -> no-op handler; returns messages/s (settled and acked)."""
    with tempfile.TemporaryDirectory() as tmp:
        transport = CFXTransport("cfx", **options)
        bus = EventBus(store=make_store(store_kind, tmp))
        bus.add_transport(transport)

        @bus.subscribe("test.result")
        async def noop(event: Event) -> None:
            return None

        settled = asyncio.Event()
        await bus.start()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            session = transport._session  # the acks are the finish line: every message settled and acked
            assert session is not None
            acker = session.send

            async def counting_send(ops: list[tuple[str, int]]) -> None:
                await acker(ops)
                if transport.stats["settled"] >= n and not len(session.window):
                    settled.set()

            session.send = counting_send  # type: ignore[method-assign]
            await settled.wait()
            rate = n / (time.perf_counter() - t0)
            print(f"    (b) client CPU {(time.process_time() - c0) / n * 1e6:.0f} us/message")
        finally:
            await bus.stop()
        return rate


async def setup(exchange: str, queues: list[str], prefetch: int) -> list[dict[str, Any]]:
    options = []
    for q in queues:
        opts = {"url": AMQP_URL, "exchange": exchange, "queue": q, "handle": HANDLE, "prefetch": prefetch}
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
    rate = asyncio.run(drain_bus(options, args.backlog, args.store))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"eps": rate, "peak_rss_mb": peak_mb}))


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


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    exchange = f"bench-cfx-{tag}"
    qa, qb, qc = f"bench-raw-{tag}", f"bench-bus-{tag}", f"bench-backlog-{tag}"
    try:
        opts = await setup(exchange, [qa, qb], args.prefetch)
        payloads = bodies(args.messages)
        size = sum(map(len, payloads)) / len(payloads)
        raws: list[float] = []
        buses: list[float] = []
        for r in range(args.rounds):
            print(f"round {r + 1}: publishing {args.messages} UnitsTested envelopes ({size:.0f} B avg) to 2 queues")
            await publish(exchange, payloads)
            await wait_queue_filled(qa, args.messages)
            await wait_queue_filled(qb, args.messages)
            # Alternate the order so that neither side always runs on a warmer (or busier) machine.
            for side in ("raw", "bus") if r % 2 == 0 else ("bus", "raw"):
                if side == "raw":
                    raws.append(await drain_raw(qa, args.messages, args.prefetch))
                    print(f"  (a) plain aio-pika, json.loads + ack each: {raws[-1]:,.0f} msg/s")
                else:
                    buses.append(await drain_bus(opts[1], args.messages, args.store))
                    print(f"  (b) CFXTransport -> bus ({args.store} store) -> no-op handler: {buses[-1]:,.0f} msg/s")
        raw, bus = statistics.median(raws), statistics.median(buses)
        print(f"median of {args.rounds}: (a) {raw:,.0f} msg/s, (b) {bus:,.0f} msg/s, ratio (b)/(a) {bus / raw:.2f}")
        peak = None
        if args.backlog:
            await cleanup(exchange, [qa, qb])
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
        return {"raw_eps": round(raw), "bus_eps": round(bus), "ratio": round(bus / raw, 3), "peak_rss_mb": peak}
    finally:
        await cleanup(exchange, [qa, qb, qc])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--prefetch", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
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
