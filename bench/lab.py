"""Benchmark of the lab status DB: estimate latency with a large step history.

Run: ``python bench/lab.py [--steps 1000000] [--pg]``. Fills a fresh status DB (a temporary SQLite file, or
with ``--pg`` a fresh PostgreSQL database via tests/pg.py) with ``--steps`` finished steps: protocol steps
spread over 20 devices x 10 functions x 5 parameter sets, and moves over 30 device pairs (one step in ten),
then times ``get_estimated_duration`` for protocol steps (exact parameters), general fallbacks (unseen
parameters) and moves, from synchronous code as the LARA document calls it. Target: p99 under 50 ms.

The last line is one JSON object: steps, insert rate, estimate latency percentiles in milliseconds (wall
clock, so a loaded machine shows in the tail) and the process CPU time per estimate (which does not depend on
other load). ``--db PATH`` keeps the filled SQLite file so a re-run only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# bench/http.py would shadow the standard library's http package: run from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from pywats_lab.status_db import StatusDBImplementation  # noqa: E402
from pywats_lab.structures import DeviceInfo, MoveStep, ProcessStep  # noqa: E402

DEVICES = [f"device-{i:02d}" for i in range(20)]
FCTS = [f"fct-{i}" for i in range(10)]
PARAMS = [{"volume": v} for v in (10, 20, 50, 100, 200)]
PAIRS = [(a, b) for a in DEVICES[:6] for b in DEVICES[6:11]]
CHUNK = 50_000


def rows(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    t = 1.7e9
    for i in range(n):
        d = rng.uniform(5, 300)
        if i % 10 == 9:
            a, b = rng.choice(PAIRS)
            out.append({"name": "move", "device": "arm", "fct": "move", "data": {"fct": "move"}, "kind": "move",
                        "origin_device": a, "target_device": b, "start": t, "finish": t + d})
        else:
            fct = rng.choice(FCTS)
            out.append({"name": fct, "device": rng.choice(DEVICES), "fct": fct,
                        "data": {"fct": fct, **rng.choice(PARAMS)}, "start": t, "finish": t + d})
        t += 1.0
    return out


def fill(db: StatusDBImplementation, n: int) -> float:
    rng = random.Random(n)
    t0 = time.perf_counter()
    done = 0
    while done < n:
        batch = min(CHUNK, n - done)
        db.add_steps_bulk(rows(batch, rng))
        done += batch
        print(f"  inserted {done:,} steps", file=sys.stderr, flush=True)
    return n / (time.perf_counter() - t0)


def probe_steps(rng: random.Random) -> list[tuple[str, ProcessStep]]:
    out: list[tuple[str, ProcessStep]] = []
    for _ in range(100):
        fct, device = rng.choice(FCTS), rng.choice(DEVICES)
        data = {"fct": fct, **rng.choice(PARAMS)}
        out.append(("protocol", ProcessStep(name=fct, main_device=DeviceInfo(device), data=data)))
        out.append(("general", ProcessStep(name=fct, main_device=DeviceInfo(device), data={"fct": fct, "volume": 7})))
        a, b = rng.choice(PAIRS)
        out.append(("move", MoveStep(name="m", main_device=DeviceInfo("arm"), data={"fct": "move"},
                                     origin_device=DeviceInfo(a), target_device=DeviceInfo(b))))
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(url: str, n: int, label: str) -> dict[str, Any]:
    db = StatusDBImplementation(url)
    try:
        have = db.get_device_statistics("arm").count * 10  # moves are one step in ten
        print(f"{label}: {have:,} steps there, filling to {n:,}", file=sys.stderr)
        rate = fill(db, n - have) if n > have else 0.0
        t0 = time.perf_counter()
        db.optimize()  # what autovacuum would do some time after an import
        print(f"{label}: optimize {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        probes = probe_steps(random.Random(11))
        db.get_estimated_duration(probes[0][1])  # warm the connection pool
        by_kind: dict[str, list[float]] = {"protocol": [], "general": [], "move": []}
        answered = 0
        cpu0 = time.process_time()
        for kind, step in probes:
            t0 = time.perf_counter()
            value = db.get_estimated_duration(step, confidence=0.95)
            by_kind[kind].append((time.perf_counter() - t0) * 1000)
            answered += value is not None
        cpu_ms = (time.process_time() - cpu0) / len(probes) * 1000  # all threads; does not depend on other load
        every = [v for vs in by_kind.values() for v in vs]
        result: dict[str, Any] = {
            "backend": label, "steps": n, "insert_steps_per_s": round(rate), "estimates": len(every),
            "answered": answered, "estimate_ms_p50": round(statistics.median(every), 2),
            "estimate_ms_p99": round(pct(every, 0.99), 2), "estimate_ms_max": round(max(every), 2),
            "estimate_cpu_ms": round(cpu_ms, 2),
        }
        for kind, values in by_kind.items():
            result[f"{kind}_ms_p99"] = round(pct(values, 0.99), 2)
        result["target_ms"] = 50
        result["meets_target"] = result["estimate_ms_p99"] < 50
        print(f"{label}: {json.dumps(result)}", file=sys.stderr)
        return result
    finally:
        db.close()


async def pg_run(n: int) -> dict[str, Any]:
    from tests.pg import fresh_database

    async with fresh_database() as url:
        return await asyncio.to_thread(run, url, n, "postgresql")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    ap.add_argument("--db", help="keep the SQLite file here (re-runs reuse its steps) instead of a temporary one")
    args = ap.parse_args()
    if args.db:
        result = run(f"sqlite:///{Path(args.db).resolve()}", args.steps, "sqlite")
    elif args.pg:
        with contextlib.suppress(KeyboardInterrupt):
            result = asyncio.run(pg_run(args.steps))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(f"sqlite:///{Path(tmp) / 'lab.db'}", args.steps, "sqlite")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
