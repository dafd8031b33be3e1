"""Micro-benchmark of the store's group-commit writes and idempotency lookups.

Run: ``python bench/store.py [--pg postgresql://postgres@127.0.0.1/test] [--rows 20000]``. Prints rows/s for
``mark_completed`` (from 50 concurrent coroutines), ``append_events``, a mixed bus-like load (one
idempotency record plus one event per message) and the latency of ``completed_handlers`` for 1 and 100 ids.
SQLite runs on a temporary file; PostgreSQL in a fresh database that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path

# Running a script puts its folder first on sys.path, where bench/http.py would shadow the standard
# library's http package: drop it, and make the repository importable without installation.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pywats_events.event import Event  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402
from pywats_events.store import Store  # noqa: E402

Rate = tuple[float, float]  # (per wall second, CPU microseconds of this process per item, all threads)


async def timed(n: int, work: Awaitable[object]) -> Rate:
    w0, c0 = time.perf_counter(), time.process_time()
    await work
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return n / wall, cpu / n * 1e6


def fmt(rate: Rate, unit: str) -> str:
    return f"{rate[0]:10,.0f} {unit}/s   ({rate[1]:5.0f} us CPU each)"


async def bench_mark_completed(store: Store, rows: int, workers: int = 50, per_call: int = 1) -> Rate:
    ids = [str(uuid.uuid4()) for _ in range(rows)]

    async def worker(part: list[str]) -> None:
        for i in range(0, len(part), per_call):
            await store.mark_completed([(e, "h") for e in part[i : i + per_call]])

    return await timed(rows, asyncio.gather(*(worker(ids[w::workers]) for w in range(workers))))


async def bench_append(store: Store, rows: int, workers: int = 50, per_call: int = 1) -> Rate:
    events = [Event(type="test.result", source=f"st{i % 7}", payload={"n": i, "ok": True}) for i in range(rows)]

    async def worker(part: list[Event]) -> None:
        for i in range(0, len(part), per_call):
            await store.append_events(part[i : i + per_call])

    return await timed(rows, asyncio.gather(*(worker(events[w::workers]) for w in range(workers))))


async def bench_bus_like(store: Store, rows: int, workers: int = 50) -> Rate:
    """Per message: lookup completed handlers, then one event insert plus one idempotency record."""
    events = [Event(type="asset.fault", source=f"st{i % 7}") for i in range(rows)]

    async def worker(part: list[Event]) -> None:
        for ev in part:
            await store.completed_handlers([ev.id])
            await store.append_events([ev])
            await store.mark_completed([(ev.id, "event-store")])

    return await timed(rows, asyncio.gather(*(worker(events[w::workers]) for w in range(workers))))


async def bench_bus_batches(store: Store, rows: int, workers: int = 50, batch: int = 10) -> Rate:
    """Bus-like with prefetch: each worker takes ``batch`` messages, one lookup for the batch, then per
    message the event-store insert and, after it, the idempotency record, all messages concurrently."""
    events = [Event(type="asset.fault", source=f"st{i % 7}") for i in range(rows)]

    async def one(ev: Event) -> None:
        await store.append_events([ev])
        await store.mark_completed([(ev.id, "event-store")])

    async def worker(part: list[Event]) -> None:
        for i in range(0, len(part), batch):
            chunk = part[i : i + batch]
            await store.completed_handlers([e.id for e in chunk])
            await asyncio.gather(*(one(e) for e in chunk))

    return await timed(rows, asyncio.gather(*(worker(events[w::workers]) for w in range(workers))))


async def bench_lookup(store: Store, n_ids: int, repeat: int = 300) -> tuple[float, float]:
    ids = [str(uuid.uuid4()) for _ in range(n_ids)]
    await store.mark_completed([(e, "h") for e in ids])
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await store.completed_handlers(ids)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


async def bench_lookup_concurrent(store: Store, calls: int = 5000, workers: int = 50) -> Rate:
    ids = [str(uuid.uuid4()) for _ in range(calls)]
    await store.mark_completed([(e, "h") for e in ids])

    async def worker(part: list[str]) -> None:
        for e in part:
            await store.completed_handlers([e])

    return await timed(calls, asyncio.gather(*(worker(ids[w::workers]) for w in range(workers))))


async def run(name: str, url: str, rows: int) -> None:
    async with open_store(url) as store:
        mc = await bench_mark_completed(store, rows)
        mc10 = await bench_mark_completed(store, rows, per_call=10)
        ap = await bench_append(store, rows)
        ap10 = await bench_append(store, rows, per_call=10)
        bus = await bench_bus_like(store, rows // 2)
        bus10 = await bench_bus_batches(store, rows)
        l1 = await bench_lookup(store, 1)
        l100 = await bench_lookup(store, 100)
        lc = await bench_lookup_concurrent(store)
    print(f"{name}:")
    print(f"  mark_completed, 50 coroutines, 1 record/call : {fmt(mc, 'rows')}")
    print(f"  mark_completed, 50 coroutines, 10 records/call: {fmt(mc10, 'rows')}")
    print(f"  append_events, 50 coroutines, 1 event/call   : {fmt(ap, 'rows')}")
    print(f"  append_events, 50 coroutines, 10 events/call : {fmt(ap10, 'rows')}")
    print(f"  bus-like, 1 msg at a time (50 in flight)      : {fmt(bus, 'msgs')}")
    print(f"  bus-like, batches of 10 (500 msgs in flight)  : {fmt(bus10, 'msgs')}")
    print(f"  completed_handlers 1 id   : median {l1[0]:7.0f} us, p99 {l1[1]:7.0f} us")
    print(f"  completed_handlers 100 ids: median {l100[0]:7.0f} us, p99 {l100[1]:7.0f} us")
    print(f"  completed_handlers, 50 concurrent callers, 1 id: {fmt(lc, 'calls')}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--pg", action="store_true", help="also PostgreSQL (fresh database via tests/pg.py)")
    ap.add_argument("--no-sqlite", action="store_true")
    args = ap.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            await run("SQLite (WAL, synchronous=NORMAL)", str(Path(tmp) / "bench.db"), args.rows)
    if args.pg:
        from tests.pg import fresh_database

        with contextlib.suppress(KeyboardInterrupt):
            async with fresh_database() as url:
                await run("PostgreSQL", url, args.rows)


if __name__ == "__main__":
    asyncio.run(main())
