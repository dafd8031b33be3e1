"""In-process throughput: MockTransport -> bus -> a no-op handler, against the plain-asyncio ceiling.

Run: ``python bench/inprocess.py [--events N]``. Prints one line per figure and, last, one JSON object:
``{"ceiling_eps": ..., "bus_eps": ..., "bus_store_eps": ..., "ratio": bus_eps / ceiling_eps, ...}``.

- ceiling: build the same pydantic ``Event`` and await a no-op coroutine, N times (no bus at all).
- bus: build the event, ``MockTransport.inject_nowait`` it as its own message (the bus queues it on its
  lane, calls the handler, settles the message); waits for every settlement. No store: ``EventBus`` with
  ``idempotency=False`` (nothing durable to record to).
- bus+store: the same with the SQLite ``SQLStore`` (idempotency record per delivery, group-committed, the
  message settled only after its commit).
- bus+store+event-store: additionally the built-in ``EventStoreHandler`` writes every event to SQLite.

``--otel=absent|disabled|enabled`` (default ``disabled``: OpenTelemetry installed or not, tracing not
enabled): ``absent`` makes ``opentelemetry`` unimportable before anything is imported; ``enabled`` turns
tracing on with the SDK and a batch processor whose exporter drops the spans (the cost of making them).
``--only-bus`` measures the ceiling and the no-store bus only. ``bench/tracing.py`` alternates the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

#: ``--otel=`` mode (read before any import, since ``absent`` must hold for every later import).
OTEL = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--otel=")), "disabled")
if OTEL == "absent":

    class _RefuseOpenTelemetry:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r} (--otel=absent)")
            return None

    sys.meta_path.insert(0, _RefuseOpenTelemetry())  # type: ignore[arg-type]

# Running a script puts its folder first on sys.path, where bench/http.py would shadow the standard
# library's http package: drop it, and make the repository importable without installation.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pywats_events import Event, EventBus, MockTransport, SettleResult  # noqa: E402
from pywats_events.sql_store import open_store  # noqa: E402

SOURCES = [f"Vendor.Tester.SN{n:04d}" for n in range(16)]
PAYLOAD = {"unit_id": "PANEL34543535", "result": "pass", "method": "automated", "tests": []}


def make_event(i: int) -> Event:
    return Event(type="test.result", source=SOURCES[i % len(SOURCES)], payload=PAYLOAD)


async def ceiling(n: int) -> float:
    async def noop(event: Event) -> None:
        return None

    t0 = time.perf_counter()
    for i in range(n):
        await noop(make_event(i))
    return n / (time.perf_counter() - t0)


async def through_bus(n: int, *, store_url: str | None, event_store: bool) -> float:
    store = open_store(store_url) if store_url else None
    bus = EventBus(
        store,
        idempotency=store is not None,
        emit_system_events=False,
        concurrency=16,
        queue_size=4096,
        freeze_gc=True,  # as `pywats-events run` configures it
    )
    mock = MockTransport()
    bus.add_transport(mock)

    async def noop(event: Event) -> None:
        return None

    bus.register(noop, name="noop", event_types=["test.*"])
    if event_store:
        bus.add_event_store()
    async with bus:
        done = asyncio.Event()
        left = n
        handled = 0

        def settled(fut: asyncio.Future[SettleResult]) -> None:
            nonlocal left, handled
            handled += fut.result().handled
            left -= 1
            if left == 0:
                done.set()

        t0 = time.perf_counter()
        for i in range(n):
            (await mock.inject_nowait((make_event(i),))).add_done_callback(settled)
        await done.wait()
        elapsed = time.perf_counter() - t0
    expected = n * (2 if event_store else 1)
    if handled != expected:
        raise SystemExit(f"lost deliveries: {handled} handled of {expected}")
    return n / elapsed


def _enable_tracing() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from pywats_events import tracing

    class Drop(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=65536))
    tracing.enable(provider)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=50_000, help="events per measurement (default 50000)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds; the best of each is kept")
    ap.add_argument("--otel", choices=["absent", "disabled", "enabled"], default="disabled", help="see above")
    ap.add_argument("--only-bus", action="store_true", help="only the ceiling and the no-store bus figures")
    args = ap.parse_args()
    n = args.events
    if args.otel == "enabled":
        _enable_tracing()
    await ceiling(min(n, 10_000))  # warm up pydantic and the allocator
    best: dict[str, float] = {"ceiling": 0.0, "bus": 0.0, "store": 0.0, "event_store": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            # Alternating rounds, best of each: other load on the machine only ever lowers a figure.
            best["ceiling"] = max(best["ceiling"], await ceiling(n))
            best["bus"] = max(best["bus"], await through_bus(n, store_url=None, event_store=False))
            if args.only_bus:
                continue
            store_eps = await through_bus(n, store_url=f"sqlite:///{tmp}/a{r}.db", event_store=False)
            best["store"] = max(best["store"], store_eps)
            es_eps = await through_bus(n, store_url=f"sqlite:///{tmp}/b{r}.db", event_store=True)
            best["event_store"] = max(best["event_store"], es_eps)
    ceiling_eps, bus_eps = best["ceiling"], best["bus"]
    print(f"ceiling (build event + await no-op): {ceiling_eps:,.0f} events/s")
    print(f"bus, no store:                       {bus_eps:,.0f} events/s ({bus_eps / ceiling_eps:.0%} of ceiling)")
    print(f"bus + SQLite store (idempotency):    {best['store']:,.0f} events/s")
    print(f"bus + SQLite store + event store:    {best['event_store']:,.0f} events/s")
    print(
        json.dumps(
            {
                "ceiling_eps": round(ceiling_eps),
                "bus_eps": round(bus_eps),
                "bus_store_eps": round(best["store"]),
                "bus_store_event_store_eps": round(best["event_store"]),
                "ratio": round(bus_eps / ceiling_eps, 3),
                "otel": args.otel,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
