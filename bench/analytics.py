"""Analytics cost: per-event µs of the engine, in-process bus throughput with the analytics handler on
vs off, and the latency of the report over a 1M-event history.

Run: ``python bench/analytics.py [--events N] [--history N]``. Prints one line per figure and, last, one
JSON object: ``{"engine_us_per_event": ..., "bus_off_eps": ..., "bus_on_eps": ..., "throughput_ratio":
on / off, "bus_store_off_eps": ..., "bus_store_on_eps": ..., "throughput_ratio_store": ...,
"report_ms": ..., "report_day_ms": ..., "history_events": ...}``.

- The stream is a simulated line (``pywats_events.analytics.testing.simulated_line``: state changes,
  work start/end, test results with retests, faults), so every analytics path is exercised.
- bus off / on: the shape of ``bench/inprocess.py``: each event is built (as a decoder would) and
  ``MockTransport.inject_nowait``-ed as its own message to a bus with a no-op handler on ``*``; "on" adds
  the ``AnalyticsHandler`` in its default mode, a bus observer (history in memory only). The clock stops
  when every message has settled AND the engine has applied every observed event (``catch_up``), so the
  figure is sustained throughput, not a burst that leaves the analytics behind. "subscribed" is the
  handler with ``observe=False`` (one more delivery per analytics event, the mode before the observer).
  Without a store and with the SQLite store (idempotency record per delivery, as ``pywats-events run``
  runs). Rounds alternate off / on / subscribed / reference; the best of each is kept and, per round,
  the on / off ratio of that round (paired), whose range is printed.
- bus + SQLite + event store: additionally the ``event-store`` handler, the default configuration of
  ``pywats-events run``; "on" there also writes the status history to its table behind the bus.
- reference: a second no-op handler on the analytics' event types instead of the analytics: the floor
  any second handler costs (one more delivery per event).
- report: an engine fed ``--history`` events (default 1,000,000: 100 stations over 4 days), then the
  full-history report and a one-day report, best of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pywats_events import Event, EventBus, MockTransport, SettleResult  # noqa: E402
from pywats_events.analytics import HANDLED_TYPES, AnalyticsEngine, resolve_window  # noqa: E402
from pywats_events.analytics.handler import AnalyticsHandler  # noqa: E402
from pywats_events.analytics.testing import simulated_line  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402

HANDLED = tuple(str(t) for t in HANDLED_TYPES)
#: Events per CPU second of the last ``through_bus`` run (process CPU time, all threads): less sensitive
#: than the wall clock to other processes on a loaded machine.
LAST_CPU_EPS = [0.0]


def stream(n: int) -> list[tuple[str, str, object, dict[str, object]]]:
    """(type, source, timestamp, payload) of about ``n`` line events, 16 stations."""
    out: list[tuple[str, str, object, dict[str, object]]] = []
    day = 0
    while len(out) < n:
        evs = simulated_line(stations=16, hours=24, seed=day, line=f"L{day}")
        out.extend((e.type, e.source, e.timestamp, e.payload) for e in evs)
        day += 1
    return out[:n]


async def through_bus(
    items: list[tuple[str, str, object, dict[str, object]]],
    *,
    analytics: bool,
    store_url: str | None,
    second_noop: bool = False,
    event_store: bool = False,
    observe: bool = True,
) -> float:
    store = open_store(store_url) if store_url else None
    bus = EventBus(
        store, idempotency=store is not None, emit_system_events=False, concurrency=16, queue_size=4096, freeze_gc=True
    )
    mock = MockTransport()
    bus.add_transport(mock)

    async def noop(event: Event) -> None:
        return None

    bus.register(noop, name="noop", event_types=["*"])
    if event_store:
        bus.add_event_store()
    handler = None
    if analytics:
        # History rows go to their table behind the bus, as `pywats-events run` configures it.
        handler = AnalyticsHandler(persist=store is not None, observe=observe, reload_days=0)
        bus.register(handler)
    if second_noop:
        bus.register(noop, name="noop-2", event_types=list(HANDLED))
    n = len(items)
    async with bus:
        done = asyncio.Event()
        left = n
        dead = 0

        def settled(fut: asyncio.Future[SettleResult]) -> None:
            nonlocal left, dead
            dead += fut.result().dead_lettered
            left -= 1
            if left == 0:
                done.set()

        t0, c0 = time.perf_counter(), time.process_time()
        for type_, source, ts, payload in items:
            ev = Event(type=type_, source=source, timestamp=ts, payload=payload)  # type: ignore[arg-type]
            (await mock.inject_nowait((ev,))).add_done_callback(settled)
        await done.wait()
        if handler is not None:
            handler.catch_up()  # sustained: the analytics must have caught up too
        elapsed = time.perf_counter() - t0
        LAST_CPU_EPS[0] = n / max(time.process_time() - c0, 1e-9)
    if dead:
        raise SystemExit(f"{dead} deliveries dead-lettered")
    return n / elapsed


def engine_cost(items: list[tuple[str, str, object, dict[str, object]]]) -> float:
    events = [Event(type=t, source=s, timestamp=ts, payload=p) for t, s, ts, p in items]  # type: ignore[arg-type]
    best = float("inf")
    for _ in range(3):
        engine = AnalyticsEngine()
        t0 = time.perf_counter()
        for e in events:
            engine.apply(e)
        best = min(best, time.perf_counter() - t0)
    return best / len(events) * 1e6


def report_latency(history: int) -> tuple[float, float, int]:
    engine = AnalyticsEngine()
    fed = 0
    day = 0
    last = None
    while fed < history:
        # 100 stations over 4 days: 25 lines of 4 stations, one simulated day each call.
        for line in range(25):
            evs = simulated_line(stations=4, hours=24, seed=day * 100 + line, line=f"L{line}", start=_start(day))
            for e in evs:
                engine.apply(e)
            fed += len(evs)
            last = evs[-1].timestamp
            if fed >= history:
                break
        day += 1
    assert last is not None
    full = resolve_window(until=last + timedelta(minutes=1), now=last)
    one_day = resolve_window(until=last + timedelta(minutes=1), window="day", now=last)
    best_full = best_day = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        rep = engine.report(full)
        best_full = min(best_full, time.perf_counter() - t0)
        t0 = time.perf_counter()
        engine.report(one_day)
        best_day = min(best_day, time.perf_counter() - t0)
    assert rep["assets"], "the report must cover the history"
    return best_full * 1000, best_day * 1000, fed


def _start(day: int) -> datetime:
    return datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=day)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000, help="events per bus measurement (default 50000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    ap.add_argument("--history", type=int, default=1_000_000, help="events in the report's history")
    args = ap.parse_args()
    items = stream(args.events)
    us = engine_cost(items)
    print(f"engine: {us:.2f} µs per event")
    best = {k: 0.0 for k in ("off", "on", "sub", "noop2", "store_off", "store_on", "store_sub", "es_off", "es_on")}
    paired: dict[str, list[float]] = {"on": [], "sub": [], "store_on": [], "es_on": [], "cpu_on": [], "cpu_sub": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            off = await through_bus(items, analytics=False, store_url=None)
            cpu_off = LAST_CPU_EPS[0]
            on = await through_bus(items, analytics=True, store_url=None)
            paired["cpu_on"].append(LAST_CPU_EPS[0] / cpu_off)
            sub = await through_bus(items, analytics=True, store_url=None, observe=False)
            paired["cpu_sub"].append(LAST_CPU_EPS[0] / cpu_off)
            noop2 = await through_bus(items, analytics=False, store_url=None, second_noop=True)
            s_off = await through_bus(items, analytics=False, store_url=f"sqlite:///{tmp}/off{r}.db")
            s_on = await through_bus(items, analytics=True, store_url=f"sqlite:///{tmp}/on{r}.db")
            s_sub = await through_bus(items, analytics=True, store_url=f"sqlite:///{tmp}/sub{r}.db", observe=False)
            es_off = await through_bus(
                items, analytics=False, store_url=f"sqlite:///{tmp}/es-off{r}.db", event_store=True
            )
            es_on = await through_bus(items, analytics=True, store_url=f"sqlite:///{tmp}/es-on{r}.db", event_store=True)
            for k, v in (
                ("off", off),
                ("on", on),
                ("sub", sub),
                ("noop2", noop2),
                ("store_off", s_off),
                ("store_on", s_on),
                ("store_sub", s_sub),
                ("es_off", es_off),
                ("es_on", es_on),
            ):
                best[k] = max(best[k], v)
            paired["on"].append(on / off)
            paired["sub"].append(sub / off)
            paired["store_on"].append(s_on / s_off)
            paired["es_on"].append(es_on / es_off)
            print(
                f"  round {r + 1}: on/off {on / off:.3f} (CPU time {paired['cpu_on'][-1]:.3f}), "
                f"subscribed/off {sub / off:.3f}, "
                f"SQLite on/off {s_on / s_off:.3f}, + event store on/off {es_on / es_off:.3f}"
            )
    ratio = best["on"] / best["off"]
    ratio_store = best["store_on"] / best["store_off"]
    ratio_es = best["es_on"] / best["es_off"]

    def rng(k: str) -> str:
        return f"paired rounds {min(paired[k]):.3f}-{max(paired[k]):.3f}"

    print(f"bus, no store: off {best['off']:,.0f} ev/s, on {best['on']:,.0f} ev/s ({ratio:.1%}; {rng('on')})")
    print(f"  by CPU time (events per CPU second, on / off): {rng('cpu_on')}; subscribed {rng('cpu_sub')}")
    print(f"  subscribed mode (observe=false): {best['sub']:,.0f} ev/s ({best['sub'] / best['off']:.1%}; {rng('sub')})")
    print(f"  reference, a second no-op handler instead: {best['noop2']:,.0f} ev/s ({best['noop2'] / best['off']:.1%})")
    print(
        f"bus + SQLite:  off {best['store_off']:,.0f} ev/s, on {best['store_on']:,.0f} ev/s ({ratio_store:.1%}; "
        f"{rng('store_on')}); subscribed {best['store_sub']:,.0f} ev/s"
    )
    print(
        f"bus + SQLite + event store: off {best['es_off']:,.0f} ev/s, on {best['es_on']:,.0f} ev/s ({ratio_es:.1%}; "
        f"{rng('es_on')})"
    )
    report_ms, day_ms, fed = report_latency(args.history)
    print(f"report over {fed:,} events: {report_ms:.0f} ms (one day: {day_ms:.0f} ms)")
    print(
        json.dumps(
            {
                "engine_us_per_event": round(us, 2),
                "bus_off_eps": round(best["off"]),
                "bus_on_eps": round(best["on"]),
                "throughput_ratio": round(ratio, 3),
                "throughput_ratio_paired_min": round(min(paired["on"]), 3),
                "throughput_ratio_paired_max": round(max(paired["on"]), 3),
                "throughput_ratio_cpu_median": round(sorted(paired["cpu_on"])[len(paired["cpu_on"]) // 2], 3),
                "subscribed_ratio_cpu_median": round(sorted(paired["cpu_sub"])[len(paired["cpu_sub"]) // 2], 3),
                "bus_subscribed_eps": round(best["sub"]),
                "subscribed_ratio": round(best["sub"] / best["off"], 3),
                "second_noop_ratio": round(best["noop2"] / best["off"], 3),
                "bus_store_off_eps": round(best["store_off"]),
                "bus_store_on_eps": round(best["store_on"]),
                "throughput_ratio_store": round(ratio_store, 3),
                "bus_store_subscribed_eps": round(best["store_sub"]),
                "bus_store_event_store_off_eps": round(best["es_off"]),
                "bus_store_event_store_on_eps": round(best["es_on"]),
                "throughput_ratio_store_event_store": round(ratio_es, 3),
                "report_ms": round(report_ms, 1),
                "report_day_ms": round(day_ms, 1),
                "history_events": fed,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
