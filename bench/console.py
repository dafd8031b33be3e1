"""How fast the console's listings open over a large store (paged on the server).

Run: ``python bench/console.py [--events 1000000] [--dead 10000] [--db sqlite:///path]``. Fills a SQLite
store (a temporary file unless ``--db``) with that many stored events and dead letters, then times the
console pages through the real app in process (httpx ASGI, logged in as admin): the first and the last
page of ``/console/events``, a filtered page, and ``/console/dead-letters``. Each page is fetched five
times; the figures are medians in milliseconds. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


async def fill(url: str, events: int, dead: int) -> None:
    store = open_store(url)
    await store.open()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 20_000
    for start in range(0, events, batch):
        chunk = [
            Event(type="test.result" if i % 5 else "asset.fault", source=f"station-{i % 40:02d}",
                  timestamp=t0 + timedelta(seconds=i), severity="error" if i % 50 == 0 else "info",
                  payload={"n": i, "serial": f"SN{i:08d}"})
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


async def measure(url: str) -> dict[str, float]:
    bus = EventBus(open_store(url))
    settings = HTTPSettings(console=ConsoleSettings(enabled=True, admin_tokens=[TOKEN]))  # type: ignore[list-item]
    app = create_app(bus, settings)
    out: dict[str, float] = {}
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        r = await client.post("/console/login", data={"token": TOKEN})
        assert r.status_code == 303
        pages = {
            "events_first_page_ms": "/console/events",
            "events_last_page_ms": "/console/events?page=20000",
            "events_filtered_ms": "/console/events?type=asset.*&min_severity=error",
            "dead_letters_ms": "/console/dead-letters",
            "dead_letters_parked_ms": "/console/dead-letters?view=parked",
            "overview_ms": "/",
        }
        for name, path in pages.items():
            times = []
            for _ in range(5):
                t = time.perf_counter()
                resp = await client.get(path)
                times.append((time.perf_counter() - t) * 1000)
                assert resp.status_code == 200, (path, resp.status_code)
            out[name] = round(statistics.median(times), 1)
            print(f"  {path:55s} {out[name]:8.1f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dead", type=int, default=10_000)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{tmp}/console-bench.db"
        t = time.perf_counter()
        asyncio.run(fill(url, args.events, args.dead))
        print(f"filled {args.events:,} events and {args.dead:,} dead letters in {time.perf_counter() - t:.0f} s")
        figures = asyncio.run(measure(url))
    print(json.dumps({"events": args.events, "dead_letters": args.dead, **figures,
                      "slowest_ms": max(figures.values())}))


if __name__ == "__main__":
    main()
