"""WATS throughput: reports built per second, and reports submitted per second to the fake WATS.

Run: ``python bench/wats.py [--builds 20000] [--posts 3000] [--connections 8]``.

- build: the ``test.result`` events of the SDK's UnitsTested examples (``samples/cfx``, the IPC-CFX SDK's
  own bodies) become WSJF reports with ``ReportBuilder`` and ``to_wsjf()``, in a loop, one process.
- submit: ``WatsClient.submit_report`` posts distinct reports over ``--connections`` keep-alive
  connections to the strict fake WATS (``python -m pywats_wats.testing``, uvicorn in its own process, so
  the figure includes the fake's own validation on the other core). Only 200 answers count.

Prints one line per figure and, last, one JSON object: ``{"builds_per_s": ..., "posts_per_s": ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

# bench/http.py is named like the standard library's ``http`` package; run as a script, this folder comes
# first on sys.path and would shadow ``http.server`` for the imports below.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
ROOT = _HERE.parent
sys.path.insert(0, str(ROOT))

from pywats_cfx.decoder import decode_cfx  # noqa: E402
from pywats_events.codec import DecodeContext  # noqa: E402
from pywats_events.event import Event  # noqa: E402
from pywats_wats.builder import ReportBuilder  # noqa: E402
from pywats_wats.client import WatsClient  # noqa: E402
from pywats_wats.settings import ReportSettings  # noqa: E402

TOKEN = "bench-token"


def sample_events() -> list[Event]:
    events = []
    for path in sorted((ROOT / "samples" / "cfx").glob("CFX.Production.TestAndInspection.UnitsTested__*.json")):
        events += [e for e in decode_cfx(path.read_bytes(), DecodeContext()) if e.type == "test.result"]
    return events


def settings(url: str = "http://127.0.0.1:1") -> ReportSettings:
    return ReportSettings(
        base_url=url,
        token=TOKEN,
        part_number="PCBA-1000",
        revision="A",
        process_code=10,
        location="Line 3",
        purpose="Production",
    )


def bench_build(n: int) -> float:
    events = sample_events()
    builder = ReportBuilder(settings())
    for e in events:  # warm-up
        builder.build(e).to_wsjf()  # type: ignore[union-attr]
    t0 = time.perf_counter()
    for i in range(n):
        builder.build(events[i % len(events)]).to_wsjf()  # type: ignore[union-attr]
    return n / (time.perf_counter() - t0)


async def bench_submit(url: str, n: int, connections: int) -> float:
    client = WatsClient(url, TOKEN, max_connections=connections)
    deadline = time.monotonic() + 20
    while True:
        try:
            await client.processes()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    builder = ReportBuilder(settings(url))
    events = sample_events()
    bodies = []
    for i in range(n):
        body = builder.build(events[i % len(events)]).to_wsjf()  # type: ignore[union-attr]
        body["id"] = str(uuid.uuid4())
        bodies.append(body)
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for b in bodies[:200]:  # warm-up, then the measured run
        queue.put_nowait(b)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        while not queue.empty():
            await client.submit_report(queue.get_nowait())
            ok += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    ok = 0
    for b in bodies:
        queue.put_nowait(b)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    await client.aclose()
    return ok / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20_000)
    parser.add_argument("--posts", type=int, default=3_000)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    builds = bench_build(args.builds)
    print(f"reports built: {builds:,.0f}/s ({args.builds} builds of the SDK UnitsTested results)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake = subprocess.Popen(
        [sys.executable, "-m", "pywats_wats.testing", "--port", str(port), "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        posts = asyncio.run(bench_submit(f"http://127.0.0.1:{port}", args.posts, args.connections))
    finally:
        fake.terminate()
        fake.wait(10)
    print(f"reports submitted: {posts:,.0f}/s ({args.posts} posts, {args.connections} keep-alive connections)")
    print(json.dumps({"builds_per_s": round(builds), "posts_per_s": round(posts), "connections": args.connections}))


if __name__ == "__main__":
    main()
