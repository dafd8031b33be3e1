"""How fast the console's listings open over a large store (paged on the server).

Run: ``python bench/console.py [--events 1000000] [--dead 10000] [--rounds 5] [--db sqlite:///path]``.
Fills a SQLite store (a temporary file unless ``--db``) with that many stored events (every 4 share a
correlation id; 3 come from the source ``rare-station``) and dead letters, then times the console pages
through the real app in process (httpx ASGI, logged in as admin): the first page of ``/console/events``,
page 20,000 opened by its keyset cursor (what the pager's "older" links carry) and, for comparison, by
``page=20000`` (OFFSET), filtered first pages (type and severity; a correlation id; the rare source), and
the dead-letter pages (first, parked, the last by cursor). The pages are fetched in alternating rounds
(every page once per round, ``--rounds`` rounds), so load on the machine hits them alike; each figure is
``[min, median, max]`` in milliseconds. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

# bench/http.py is named like the standard library's http package: take this folder off sys.path so it
# cannot shadow http.client for httpx, and put the repository first.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import httpx  # noqa: E402

from pywats_events import Event, EventBus  # noqa: E402
from pywats_events.http.app import create_app  # noqa: E402
from pywats_events.http.console import ConsoleSettings  # noqa: E402
from pywats_events.http.settings import HTTPSettings  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402
from pywats_events.store import DeadLetterEntry  # noqa: E402

TOKEN = "bench-admin-token"
#: Positions of the 3 events from ``rare-station`` (the oldest, the middle and the newest tenth).
RARE = {7, 500_007, 900_007}


async def fill(url: str, events: int, dead: int) -> None:
    store = open_store(url)
    await store.open()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 20_000
    for start in range(0, events, batch):
        chunk = [
            Event(type="test.result" if i % 5 else "asset.fault",
                  source="rare-station" if i in RARE else f"station-{i % 40:02d}",
                  timestamp=t0 + timedelta(seconds=i), severity="error" if i % 50 == 0 else "info",
                  payload={"n": i, "serial": f"SN{i:08d}"}, correlation_id=f"tx-{i // 4}")
            for i in range(start, min(events, start + batch))
        ]
        await store.append_events(chunk)
        print(f"  {min(events, start + batch):>9,} events stored", end="\r", flush=True)
    print()
    entries = [
        DeadLetterEntry(id=str(uuid.uuid4()), reason="failed" if i % 4 else "circuit_open",
                        event=Event(type="test.result", source=f"station-{i % 40:02d}"), handler=f"h{i % 3}",
                        error_type="RuntimeError", error_message=f"boom {i}", attempts=3)
        for i in range(dead)
    ]
    for start in range(0, dead, 2_000):
        await store.add_dead_letters(entries[start:start + 2_000])
    await store.close()


async def cursor_at(url: str, position: int, dead: bool = False) -> str:
    """The keyset cursor (``<time>|<id>``) of the row at ``position`` (0 = newest): what the pager's "older"
    link of the page ending there carries. Read once with OFFSET, outside the timings."""
    from pywats_events.store import DeadLetterQuery, EventQuery

    store = open_store(url)
    await store.open()
    try:
        if dead:
            rows = await store.query_dead_letters(DeadLetterQuery(reasons=("failed", "unrecoverable", "decode_error",
                                                                            "timeout", "unrouted", "too_large"),
                                                                   limit=position + 1))
            return f"{rows[-1].first_failure_at.isoformat()}|{rows[-1].id}"
        found = await store.query_events(EventQuery(newest_first=True, offset=position, limit=1))
        return f"{found[0].event.timestamp.isoformat()}|{found[0].event.id}"
    finally:
        await store.close()


async def measure(url: str, events: int, dead: int, rounds: int) -> dict[str, list[float]]:
    size = 50
    deep = min(20_000, max(1, events // size))  # page 20,000 of 1M events (the last one)
    failed = sum(1 for i in range(dead) if i % 4)
    last_dead = max(1, -(-failed // size))
    before_deep = await cursor_at(url, (deep - 1) * size - 1) if deep > 1 else ""
    before_dead = await cursor_at(url, (last_dead - 1) * size - 1, dead=True) if last_dead > 1 else ""
    bus = EventBus(open_store(url))
    settings = HTTPSettings(console=ConsoleSettings(enabled=True, admin_tokens=[TOKEN], page_size=size))  # type: ignore[list-item]
    app = create_app(bus, settings)
    pages = {
        "events_first_page_ms": "/console/events",
        f"events_page_{deep}_keyset_ms": f"/console/events?{urlencode({'before': before_deep, 'n': deep})}",
        f"events_page_{deep}_offset_ms": f"/console/events?page={deep}",
        "events_filtered_type_severity_ms": "/console/events?type=asset.*&min_severity=error",
        "events_filtered_correlation_ms": f"/console/events?correlation_id=tx-{events // 8}",
        "events_filtered_rare_source_ms": "/console/events?source=rare-station",
        "dead_letters_ms": "/console/dead-letters",
        "dead_letters_parked_ms": "/console/dead-letters?view=parked",
        f"dead_letters_page_{last_dead}_keyset_ms": f"/console/dead-letters?{urlencode({'before': before_dead})}",
        "overview_ms": "/",
    }
    times: dict[str, list[float]] = {name: [] for name in pages}
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        r = await client.post("/console/login", data={"token": TOKEN})
        assert r.status_code == 303
        for name, path in pages.items():  # warm-up, and a check that every page answers with rows
            resp = await client.get(path)
            assert resp.status_code == 200, (path, resp.status_code)
            assert 'name="id"' in resp.text or name == "overview_ms", (path, "no rows")
        for n in range(rounds):
            order = list(pages.items()) if n % 2 == 0 else list(reversed(pages.items()))
            for name, path in order:
                t = time.perf_counter()
                resp = await client.get(path)
                times[name].append((time.perf_counter() - t) * 1000)
    out = {name: [round(min(v), 1), round(statistics.median(v), 1), round(max(v), 1)] for name, v in times.items()}
    for name, (lo, mid, hi) in out.items():
        print(f"  {name:40s} {lo:8.1f} {mid:8.1f} {hi:8.1f} ms (min median max)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dead", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/console-bench.db"
        t = time.perf_counter()
        asyncio.run(fill(url, args.events, args.dead))
        print(f"filled {args.events:,} events and {args.dead:,} dead letters in {time.perf_counter() - t:.0f} s")
        figures = asyncio.run(measure(url, args.events, args.dead, args.rounds))
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    keyset = {k: v for k, v in figures.items() if "offset" not in k}
    print(json.dumps({"events": args.events, "dead_letters": args.dead, **figures,
                      "slowest_keyset_median_ms": max(v[1] for v in keyset.values()),
                      "load_average": [round(x, 2) for x in load]}))


if __name__ == "__main__":
    main()
