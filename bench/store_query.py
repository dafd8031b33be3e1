"""Query latency of a large event store, the time to apply retention, and intake as the store grows.

Run: ``python bench/store_query.py [--events 1000000] [--dead 50000] [--repeat 30] [--pg [URL]]``, or
``python bench/store_query.py --growth [--events 1000000] [--rounds 4]`` for the intake comparison alone
(full store against a fresh one in alternating rounds, rate and CPU per event; JSON ``intake_growth``,
``intake_cpu_growth``: full / empty medians).

Fills a fresh SQLite store (and, with ``--pg``, a fresh PostgreSQL database when one is reachable) with
``--events`` events spread over the last 60 days (24 types in 6 categories, 16 sources, severity mostly
``info``, a correlation id shared by every 10 events) and ``--dead`` dead-letter entries over 4 handlers,
then prints the p50/p95 latency, in milliseconds, of the reads users run:

- ``events list``: type pattern + time range + minimum severity, newest page first (the CLI's and the
  console's order), and the count of the same filter that the CLI prints above the page;
- by correlation id (``EventQuery(correlation_id=...)``, when the store has that field);
- one dead-letter page (all handlers, and one handler), as ``dlq list`` reads it;
- acknowledging 100 events by id;

then the intake rate of the bus with the event store (``EventStoreHandler``) on the full store against
the same on an empty one, and the seconds ``purge_events(older_than_days=30)`` takes (half the events).
The last line is one JSON object: ``query_p95_ms`` (the worst p95 over the queries above, SQLite),
``retention_s`` (SQLite), the intake rates and each query's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Running a script puts its folder first on sys.path, where bench/http.py would shadow the standard
# library's http package: drop it, and make the repository importable without installation.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pywats_events import Event, EventBus, MockTransport, SettleResult  # noqa: E402
from pywats_events.event import Severity  # noqa: E402
from pywats_events.sql_store import SQLStore  # noqa: E402
from pywats_events.store import DeadLetterEntry, EventQuery  # noqa: E402

CATEGORIES = ("test", "asset", "production", "material", "inspection", "system")
TYPES = [f"{c}.{s}" for c in CATEGORIES for s in ("started", "completed", "fault", "state_changed")]
SOURCES = [f"line-{n // 4}/station-{n % 4}" for n in range(16)]
SEVERITIES = [Severity.INFO] * 85 + [Severity.WARNING] * 10 + [Severity.ERROR] * 4 + [Severity.CRITICAL]
HANDLERS = ("wats", "mes", "status-board", "forwarder")
SPAN = timedelta(days=60)
HAS_CORRELATION = "correlation_id" in {f.name for f in dataclasses.fields(EventQuery)}


def make_events(start: int, n: int, total: int, now: datetime) -> list[Event]:
    """Events ``start`` .. ``start + n - 1`` of ``total``, oldest first over the last 60 days."""
    rnd = random.Random(start)
    step = SPAN / max(1, total)
    out = []
    for i in range(start, start + n):
        out.append(
            Event(
                type=TYPES[rnd.randrange(len(TYPES))],
                source=SOURCES[i % len(SOURCES)],
                timestamp=now - SPAN + step * i,
                severity=SEVERITIES[rnd.randrange(len(SEVERITIES))],
                correlation_id=f"tx-{i // 10:08d}",
                payload={"unit_id": f"SN{i:09d}", "result": "pass" if i % 7 else "fail", "step": i % 40},
            )
        )
    return out


async def fill(store: SQLStore, n: int, dead: int, now: datetime) -> float:
    t0 = time.perf_counter()
    chunk = 5000
    for start in range(0, n, chunk):
        await store.append_events(make_events(start, min(chunk, n - start), n, now))
        if start and start % 200_000 == 0:
            print(f"  ... {start:,} events stored ({time.perf_counter() - t0:.0f} s)", flush=True)
    template = make_events(0, 1, 1, now)[0]
    for start in range(0, dead, chunk):
        entries = [
            DeadLetterEntry(
                id=str(uuid.uuid4()),
                reason="failed",
                event=template,
                handler=HANDLERS[i % len(HANDLERS)],
                error_type="TimeoutError",
                error_message="WATS did not answer within 30 s",
                attempts=5,
                first_failure_at=now - SPAN + SPAN * (i / max(1, dead)),
                last_failure_at=now - SPAN + SPAN * (i / max(1, dead)),
            )
            for i in range(start, min(dead, start + chunk))
        ]
        await store.add_dead_letters(entries)
    await store.flush()
    return time.perf_counter() - t0


async def latency(fn: Callable[[int], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    await fn(0)  # warm the statement cache
    times = []
    for i in range(repeat):
        t0 = time.perf_counter()
        await fn(i + 1)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(len(times) * 0.95) - 1)]


async def queries(store: SQLStore, now: datetime, repeat: int, ids: list[str]) -> dict[str, tuple[float, float]]:
    rnd = random.Random(7)
    out: dict[str, tuple[float, float]] = {}

    def window(i: int) -> tuple[datetime, datetime]:
        # A day somewhere in the 60 (the usual "what happened on Tuesday" question).
        day = rnd.randrange(59)
        start = now - SPAN + timedelta(days=day)
        return start, start + timedelta(days=1)

    def list_query(i: int) -> EventQuery:
        since, until = window(i)
        return EventQuery(
            type_pattern=f"{CATEGORIES[i % len(CATEGORIES)]}.*",
            min_severity="warning",
            since=since,
            until=until,
            limit=50,
            newest_first=True,
        )

    out["events list (type.* + 1 day + >= warning), page of 50"] = await latency(
        lambda i: store.query_events(list_query(i)), repeat
    )
    out["events list count of the same filter"] = await latency(lambda i: store.count_events(list_query(i)), repeat)
    out["events list (type.* + >= error), newest page over all time"] = await latency(
        lambda i: store.query_events(
            EventQuery(
                type_pattern=f"{CATEGORIES[i % len(CATEGORIES)]}.*", min_severity="error", limit=50, newest_first=True
            )
        ),
        repeat,
    )
    if HAS_CORRELATION:
        out["by correlation id"] = await latency(
            lambda i: store.query_events(
                EventQuery(correlation_id=f"tx-{rnd.randrange(len(ids) // 10):08d}")  # type: ignore[call-arg]
            ),
            repeat,
        )
    else:
        print("  correlation id: n/a (no column)")
    out["dead-letter page of 50 (all handlers)"] = await latency(
        lambda i: store.list_dead_letters(limit=50, offset=0), repeat
    )
    out["dead-letter page of 50 (one handler, page 10)"] = await latency(
        lambda i: store.list_dead_letters(handler=HANDLERS[i % len(HANDLERS)], limit=50, offset=450), repeat
    )
    out["acknowledge 100 events by id"] = await latency(
        lambda i: store.acknowledge_events(rnd.sample(ids, 100), by="bench"), repeat
    )
    return out


async def intake_rate(url: str, n: int) -> float:
    """Bus + ``EventStoreHandler`` (+ idempotency) into the store at ``url``: events per second."""
    return (await intake_cpu(url, n))[0]


async def intake_cpu(url: str, n: int) -> tuple[float, float]:
    """``intake_rate`` and the process CPU time of the same span (store open excluded): ``(events/s, CPU
    microseconds per event)``."""
    bus = EventBus(SQLStore(url), emit_system_events=False, concurrency=16, queue_size=4096)
    mock = MockTransport()
    bus.add_transport(mock)
    bus.add_event_store()
    async with bus:
        left, done = n, asyncio.Event()

        def settled(f: asyncio.Future[SettleResult]) -> None:
            nonlocal left
            f.result()
            left -= 1
            if left == 0:
                done.set()

        events = [Event(type="test.result", source=SOURCES[i % 16], payload={"n": i}) for i in range(n)]
        t0, c0 = time.perf_counter(), time.process_time()
        for ev in events:
            (await mock.inject_nowait((ev,))).add_done_callback(settled)
        await done.wait()
        return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1e6


async def growth(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """``--growth``: intake into a store holding ``--events`` events against a fresh one, in alternating
    rounds (empty, full, full, empty, ...) so machine load hits both alike; per-round ratios."""
    now = datetime.now(UTC)
    full_url = str(tmp / "full.db")
    store = SQLStore(full_url)
    await store.open()
    try:
        fill_s = await fill(store, args.events, 0, now)
    finally:
        await store.close()
    print(f"  filled {args.events:,} events in {fill_s:.0f} s", flush=True)
    rounds = []
    for r in range(args.rounds):
        empty_url = str(tmp / f"empty{r}.db")
        if r % 2 == 0:
            empty, full = await intake_cpu(empty_url, args.intake), await intake_cpu(full_url, args.intake)
        else:
            full, empty = await intake_cpu(full_url, args.intake), await intake_cpu(empty_url, args.intake)
        rounds.append((empty, full))
        print(
            f"  round {r + 1}: empty {empty[0]:,.0f} ev/s ({empty[1]:.0f} us CPU/event), full {full[0]:,.0f} ev/s "
            f"({full[1]:.0f} us CPU/event): {full[0] / empty[0]:.2f}x rate, {full[1] / empty[1]:.2f}x CPU "
            f"(load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
    return {
        "intake_growth": round(statistics.median(f[0] / e[0] for e, f in rounds), 3),
        "intake_cpu_growth": round(statistics.median(f[1] / e[1] for e, f in rounds), 3),
        "rounds": [
            {
                "empty_eps": round(e[0]),
                "full_eps": round(f[0]),
                "empty_cpu_us": round(e[1], 1),
                "full_cpu_us": round(f[1], 1),
            }
            for e, f in rounds
        ],
    }


async def run(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC)
    print(f"{name}: {url}", flush=True)
    empty_rate = await intake_rate(url, args.intake)
    store = SQLStore(url)
    await store.open()
    try:
        fill_s = await fill(store, args.events, args.dead, now)
        print(f"  filled {args.events:,} events + {args.dead:,} dead letters in {fill_s:.0f} s", flush=True)
        sample = [r.event.id for r in await store.query_events(EventQuery(limit=20_000, newest_first=True))]
        figures = await queries(store, now, args.repeat, sample)
    finally:
        await store.close()
    for what, (p50, p95) in figures.items():
        print(f"  {what:60s} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms", flush=True)
    full_rate = await intake_rate(url, args.intake)
    print(
        f"  intake (bus + event store): {empty_rate:,.0f} ev/s empty, {full_rate:,.0f} ev/s at "
        f"{args.events:,} stored ({full_rate / empty_rate:.2f}x)"
    )
    store = SQLStore(url)
    await store.open()
    try:
        t0 = time.perf_counter()
        purged = await store.purge_events(older_than_days=30)
        retention_s = time.perf_counter() - t0
    finally:
        await store.close()
    print(f"  retention: purge_events(older_than_days=30) deleted {purged:,} events in {retention_s:.2f} s")
    return {
        "query_p95_ms": round(max(p95 for _, p95 in figures.values()), 2),
        "retention_s": round(retention_s, 2),
        "purged": purged,
        "intake_empty_eps": round(empty_rate),
        "intake_full_eps": round(full_rate),
        "queries": {k: {"p50_ms": round(a, 2), "p95_ms": round(b, 2)} for k, (a, b) in figures.items()},
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events to store (default 1000000)")
    ap.add_argument("--dead", type=int, default=50_000, help="dead-letter entries to store (default 50000)")
    ap.add_argument("--repeat", type=int, default=30, help="runs of each query (default 30)")
    ap.add_argument("--intake", type=int, default=20_000, help="events for each intake measurement")
    ap.add_argument(
        "--pg",
        nargs="?",
        const="fresh",
        default=None,
        help="also PostgreSQL: a URL, or nothing for a fresh database on 127.0.0.1 (dropped afterwards)",
    )
    ap.add_argument(
        "--growth",
        action="store_true",
        help="only intake into the filled store against a fresh one, in --rounds alternating rounds (SQLite)",
    )
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds of --growth (default 4)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {args.events:,} events", flush=True)
    if args.growth:
        with tempfile.TemporaryDirectory() as tmp:
            out = await growth(Path(tmp), args)
        out.update(events=args.events, load_avg=round(os.getloadavg()[0], 2))
        print(json.dumps(out))
        return
    result: dict[str, Any] = {"events": args.events, "correlation_id": HAS_CORRELATION}
    with tempfile.TemporaryDirectory() as tmp:
        result["sqlite"] = await run("SQLite", str(Path(tmp) / "bench.db"), args)
    result["query_p95_ms"] = result["sqlite"]["query_p95_ms"]
    result["retention_s"] = result["sqlite"]["retention_s"]
    if args.pg:
        try:
            if args.pg == "fresh":
                from tests.pg import PostgresUnavailable, fresh_database

                try:
                    async with fresh_database() as url:
                        result["postgresql"] = await run("PostgreSQL", url, args)
                except PostgresUnavailable as exc:
                    print(f"PostgreSQL: not reachable ({exc}); skipped")
            else:
                result["postgresql"] = await run("PostgreSQL", args.pg, args)
        except OSError as exc:
            print(f"PostgreSQL: not reachable ({exc}); skipped")
    result["load_avg"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
