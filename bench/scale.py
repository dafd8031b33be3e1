"""Benchmark: costs that stay flat as the backlog grows: drain AMQP backlogs of 10k, 100k and 1M messages.

Run: ``python bench/scale.py [--sizes 10000,100000,1000000] [--store memory|sqlite] [--prefetch 512]``
against the RabbitMQ at ``PYWATS_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672/``).

For each size: a backlog of that many CFX ``UnitsTested`` envelopes (~1.5 KB, distinct ``UniqueID``) is
published to a fresh queue, then a fresh child process (``bench/amqp.py --child``: ``CFXTransport`` ->
``EventBus`` -> one no-op handler, finished when every message is settled and acknowledged) drains it and
reports its throughput, its CPU time per message (user + system, microseconds) and its peak resident set
size (``ru_maxrss``, MB). Publishing is not counted.

The last line is one JSON object: ``{"sizes": [...], "cpu_us": [...], "peak_rss_mb": [...], "eps": [...],
"cpu_us_growth": cpu/message at the largest size / at the smallest (target <= 1.1), "peak_rss_mb_1m":
peak RSS at 1M (null when 1M was not run), "largest": the largest size run, "load_avg"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
# bench/ holds http.py, which would shadow the standard library's http package: run from the repo root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

_spec = importlib.util.spec_from_file_location("bench_amqp", _HERE / "amqp.py")
assert _spec is not None and _spec.loader is not None
amqp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(amqp)


async def fill_to(exchange: str, queue: str, n: int, payloads: list[bytes]) -> None:
    """Wait until ``queue`` holds ``n`` messages. Publishing runs without confirms (fast), and on a loaded
    machine a few hundred of a million went missing once (the count stopped at 999,525): when the count
    stays put for 5 s, the shortfall is published again with publisher confirms."""
    conn = await amqp.aio_pika.connect(amqp.AMQP_URL)
    async with conn:
        ch = await conn.channel()
        last, since = -1, asyncio.get_running_loop().time()
        while True:
            q = await ch.declare_queue(queue, passive=True)
            count = q.declaration_result.message_count or 0
            if count >= n:
                return
            now = asyncio.get_running_loop().time()
            if count != last:
                last, since = count, now
            elif now - since > 5.0:
                print(f"queue holds {count:,} of {n:,}: publishing the {n - count:,} missing with confirms")
                confirm = await conn.channel(publisher_confirms=True)
                ex = await confirm.get_exchange(exchange)
                for i in range(n - count):
                    body = payloads[i % len(payloads)]
                    await ex.publish(amqp.aio_pika.Message(body, delivery_mode=2), amqp.ROUTING_KEY)
                await confirm.close()
                since = now
            await asyncio.sleep(0.5)


async def one_size(n: int, args: argparse.Namespace, payloads: list[bytes]) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-scale-{tag}", f"bench-scale-{n}-{tag}"
    try:
        (opts,) = await amqp.setup(exchange, [queue], args.prefetch)
        for i in range(0, n, len(payloads)):
            await amqp.publish(exchange, payloads[: min(len(payloads), n - i)])
        await fill_to(exchange, queue, n, payloads)
        load = os.getloadavg()[0]
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(_HERE / "amqp.py"), "--child", json.dumps(opts), "--backlog", str(n),
             "--store", args.store],
            check=True,
            capture_output=True,
            text=True,
        )
        child = json.loads(out.stdout.strip().splitlines()[-1])
        child["load_avg"] = load
        print(f"{n:>9,} messages: {child['eps']:,.0f} msg/s, {child['cpu_us']:.1f} us CPU/message, "
              f"peak RSS {child['peak_rss_mb']:.1f} MB (load average {load:.2f})")
        return dict(child)
    finally:
        await amqp.cleanup(exchange, [queue])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes = sorted(int(x) for x in args.sizes.split(","))
    # Distinct envelopes (UniqueID) repeat every 10,000; the bus trusts the first-delivery flag, so the
    # repetition costs nothing and the bodies stay the same for every size.
    payloads = amqp.bodies(min(10_000, sizes[-1]))
    results = [await one_size(n, args, payloads) for n in sizes]
    cpu = [round(r["cpu_us"], 1) for r in results]
    rss = [round(r["peak_rss_mb"], 1) for r in results]
    growth = round(cpu[-1] / cpu[0], 3) if len(cpu) > 1 else None
    print(f"CPU per message at {sizes[-1]:,} / at {sizes[0]:,}: {growth}")
    return {
        "sizes": sizes,
        "cpu_us": cpu,
        "peak_rss_mb": rss,
        "eps": [round(r["eps"]) for r in results],
        "cpu_us_growth": growth,
        "peak_rss_mb_1m": rss[sizes.index(1_000_000)] if 1_000_000 in sizes else None,
        "largest": sizes[-1],
        "load_avg": [round(r["load_avg"], 2) for r in results],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated backlog sizes")
    parser.add_argument("--prefetch", type=int, default=512)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
