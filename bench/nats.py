"""Benchmark: consuming IPC-CFX from NATS JetStream, plain nats-py pull consumer vs ``NATSTransport`` -> bus.

Run: ``python bench/nats.py [--messages 20000] [--rounds 3] [--backlog 50000] [--store memory|sqlite]``
against the JetStream server at ``PYWATS_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``).

1. One stream gets ``--messages`` copies of the real CFX ``UnitsTested`` envelope from
   ``samples/cfx/CFX.Production.TestAndInspection.UnitsTested__1.json`` (each with its own ``UniqueID``);
   two durable pull consumers on that stream see the same messages with the same bodies.
2. (a) a plain nats-py pull consumer drains its durable: ``fetch`` in batches of ``--batch``,
   ``json.loads`` each body, ``ack`` each message.
3. (b) ``NATSTransport`` (same batch and MaxAckPending) drains the other durable into an ``EventBus``
   (``--store``: in-memory, or SQLite on a temporary file) with one no-op handler; done when every message
   is settled and acknowledged. Its rule decodes with ``--decoder``: ``cfx`` (the default: the CFX adapter
   turns each UnitsTested into its ``test.result`` events, far more work than (a)'s ``json.loads``) or
   ``json`` (the envelope becomes one event's payload: the same parse work as (a), so the ratio shows what
   the transport and the bus cost).
4. Steps 1-3 run ``--rounds`` times, the order of (a) and (b) alternating, and the medians are reported
   (other work on the machine makes single runs noisy).
5. Peak RSS: a fresh child process runs (b) on a backlog of ``--backlog`` messages and reports its peak
   resident set size (``ru_maxrss``).

Prints both rates (messages/s) and their ratio (b)/(a); the last line is one JSON object:
``{"raw_eps": ..., "bus_eps": ..., "ratio": ..., "peak_rss_mb": ..., ...}``. The stream gets a random
name and is deleted afterwards.
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
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() not in (_HERE,)]
sys.path.insert(0, str(_HERE.parent))

import nats  # noqa: E402
from nats.js import api  # noqa: E402

from pywats_events.bus import EventBus  # noqa: E402
from pywats_events.event import Event  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402
from pywats_events.store import Store  # noqa: E402
from pywats_nats import NATSTransport  # noqa: E402

NATS_URL = os.environ.get("PYWATS_TEST_NATS_URL", "nats://127.0.0.1:4222")
SAMPLE = _HERE.parent / "samples" / "cfx" / "CFX.Production.TestAndInspection.UnitsTested__1.json"


def bodies(n: int) -> list[bytes]:
    """``n`` copies of the sample UnitsTested envelope, each with its own ``UniqueID`` (so its own event id)."""
    envelope = json.loads(SAMPLE.read_text(encoding="utf-8"))
    out = []
    for i in range(n):
        envelope["UniqueID"] = f"5e1f0000-0000-4000-8000-{i:012d}"
        out.append(json.dumps(envelope).encode())
    return out


async def publish(subject: str, stream: str, payloads: list[bytes], expect_total: int) -> None:
    """Publish into the stream (core publish, then wait until the stream holds ``expect_total`` messages)."""
    nc = await nats.connect(NATS_URL)
    try:
        for body in payloads:
            await nc.publish(subject, body)
        await nc.flush(30)
        js = nc.jetstream()
        while (await js.stream_info(stream)).state.messages < expect_total:  # noqa: ASYNC110 (server state)
            await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def add_consumer(stream: str, durable: str, max_ack_pending: int) -> None:
    nc = await nats.connect(NATS_URL)
    try:
        await nc.jetstream().add_consumer(
            stream,
            api.ConsumerConfig(
                durable_name=durable,
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=30,
                max_deliver=5,
                max_ack_pending=max_ack_pending,
            ),
        )
    finally:
        await nc.close()


async def drain_raw(stream: str, durable: str, n: int, batch: int) -> float:
    """(a) plain nats-py: fetch, ``json.loads``, ack each message; returns messages/s."""
    nc = await nats.connect(NATS_URL)
    try:
        sub = await nc.jetstream().pull_subscribe_bind(durable=durable, stream=stream)
        count = 0
        t0, c0 = time.perf_counter(), time.process_time()
        while count < n:
            try:
                msgs = await sub.fetch(batch, timeout=1.0)
            except TimeoutError:
                continue
            for msg in msgs:
                json.loads(msg.data)
                await msg.ack()
                count += 1
        await nc.flush()
        rate = n / (time.perf_counter() - t0)
        print(f"    (a) client CPU {(time.process_time() - c0) / n * 1e6:.0f} us/message")
        return rate
    finally:
        await nc.close()


def make_store(kind: str, tmp: str) -> Store | None:
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp}/bench-{uuid.uuid4().hex[:8]}.db")
    return None


async def drain_bus(options: dict[str, Any], n: int, store_kind: str) -> float:
    """(b) NATSTransport -> EventBus -> no-op handler; returns messages/s (settled and acknowledged)."""
    with tempfile.TemporaryDirectory() as tmp:
        transport = NATSTransport("nats", **options)
        bus = EventBus(store=make_store(store_kind, tmp))
        bus.add_transport(transport)

        @bus.subscribe("test.result")
        async def noop(event: Event) -> None:
            return None

        acked0 = transport.stats["acked"]
        await bus.start()
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            while transport.stats["acked"] - acked0 < n:  # noqa: ASYNC110 (the acks are the finish line)
                await asyncio.sleep(0.002)
            rate = n / (time.perf_counter() - t0)
            print(f"    (b) client CPU {(time.process_time() - c0) / n * 1e6:.0f} us/message")
        finally:
            await bus.stop()
        return rate


def transport_options(
    stream: str, subject_root: str, durable: str, batch: int, inflight: int, decoder: str = "cfx"
) -> dict[str, Any]:
    rule: dict[str, Any] = {"subject": f"{subject_root}.>", "decoder": decoder}
    if decoder == "json":
        rule["type"] = "test.result"  # the envelope as JSON payload: the same parse work as (a)
    return {
        "servers": [NATS_URL],
        "stream": stream,
        "durable": durable,
        "max_inflight": inflight,
        "fetch_batch": batch,
        "ack_wait": 30,
        "rules": [rule],
    }


def child_main(args: argparse.Namespace) -> None:
    """The peak-RSS child: drain the backlog through the bus, print rate and peak RSS in MB."""
    rate = asyncio.run(drain_bus(json.loads(args.child), args.backlog, args.store))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"eps": rate, "peak_rss_mb": peak_mb}))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    stream, root = f"BENCH_{tag}", f"bench.{tag}"
    subject = f"{root}.SMT-Line1.ICT.CFX.Production.TestAndInspection.UnitsTested"
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[f"{root}.>"], storage=api.StorageType.FILE)
    try:
        await add_consumer(stream, "raw", args.inflight)
        bus_opts = transport_options(stream, root, "bus", args.batch, args.inflight, args.decoder)
        payloads = bodies(args.messages)
        size = sum(map(len, payloads)) / len(payloads)
        raws: list[float] = []
        buses: list[float] = []
        total = 0
        for r in range(args.rounds):
            total += len(payloads)
            print(f"round {r + 1}: publishing {args.messages} UnitsTested envelopes ({size:.0f} B) to {stream}")
            await publish(subject, stream, payloads, total)
            # Alternate the order so that neither side always runs on a warmer (or busier) machine.
            for side in ("raw", "bus") if r % 2 == 0 else ("bus", "raw"):
                if side == "raw":
                    raws.append(await drain_raw(stream, "raw", args.messages, args.batch))
                    print(f"  (a) plain nats-py pull, json.loads + ack each: {raws[-1]:,.0f} msg/s")
                else:
                    buses.append(await drain_bus(bus_opts, args.messages, args.store))
                    print(f"  (b) NATSTransport -> bus ({args.store} store) -> no-op handler: {buses[-1]:,.0f} msg/s")
        raw, bus = statistics.median(raws), statistics.median(buses)
        print(f"median of {args.rounds}: (a) {raw:,.0f} msg/s, (b) {bus:,.0f} msg/s, ratio (b)/(a) {bus / raw:.2f}")
        peak = backlog_eps = None
        if args.backlog:
            await js.purge_stream(stream)
            await add_consumer(stream, "backlog", args.inflight)
            print(f"publishing a backlog of {args.backlog} ...")
            backlog = 0
            while backlog < args.backlog:
                chunk = payloads[: min(len(payloads), args.backlog - backlog)]
                backlog += len(chunk)
                await publish(subject, stream, chunk, backlog)
            opts = transport_options(stream, root, "backlog", args.batch, args.inflight, args.decoder)
            out = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, __file__, "--child", json.dumps(opts), "--backlog", str(args.backlog),
                 "--store", args.store],
                check=True,
                capture_output=True,
                text=True,
            )  # fmt: skip
            child = json.loads(out.stdout.strip().splitlines()[-1])
            peak, backlog_eps = round(child["peak_rss_mb"], 1), round(child["eps"])
            print(f"draining the {args.backlog} backlog: {backlog_eps:,} msg/s, peak RSS {peak} MB")
        return {
            "raw_eps": round(raw),
            "bus_eps": round(bus),
            "ratio": round(bus / raw, 3),
            "peak_rss_mb": peak,
            "backlog_eps": backlog_eps,
            "messages": args.messages,
            "rounds": args.rounds,
            "body_bytes": round(size),
            "store": args.store,
            "decoder": args.decoder,
        }
    finally:
        await js.delete_stream(stream)
        await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=128, help="messages per pull request (both sides)")
    parser.add_argument("--inflight", type=int, default=256, help="MaxAckPending of both consumers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "sqlite"], default="memory")
    parser.add_argument(
        "--decoder",
        choices=["cfx", "json"],
        default="cfx",
        help="(b)'s rule: cfx (UnitsTested -> test.result events) or json (the envelope as one event's payload)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.child:
        child_main(ns)
    else:
        print(json.dumps(asyncio.run(main(ns))))
