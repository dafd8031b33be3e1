"""What tracing costs: OpenTelemetry absent vs installed-but-disabled vs enabled, in paired alternating rounds.

Run: ``python bench/tracing.py [--events N] [--rounds R]``. Each round runs, in a fresh process per mode and
in a rotating order, two figures:

- ``bus``: ``bench/inprocess.py --only-bus --otel=MODE`` (MockTransport.inject_nowait -> bus -> a no-op
  handler: the delivery hook, and with ``enabled`` one process span per delivery);
- ``intake``: ``MockTransport.inject_raw`` of one event-JSON message at a time through ``Transport.intake``
  (decode, submit, settle: the receive hook, and with ``enabled`` a receive span and a process span).

``enabled`` uses the SDK with a batch processor whose exporter drops the spans. Prints each round, the
range per mode and the ratio to ``absent`` per round (paired), then one JSON object with the ranges and the
load average at the start and the end (other load on the machine only ever lowers a figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("absent", "disabled", "enabled")


def child_intake(n: int, mode: str) -> None:
    """Measure ``inject_raw`` throughput in this process (``--child MODE``) and print one JSON line."""
    if mode == "absent":

        class Refuse:
            def find_spec(self, name: str, path: object = None, target: object = None) -> None:
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ModuleNotFoundError(name)
                return None

        sys.meta_path.insert(0, Refuse())  # type: ignore[arg-type]
    sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
    from pywats_events import EventBus, MockTransport, tracing

    if mode == "enabled":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=65536))
        tracing.enable(provider)
    bodies = [
        json.dumps({"id": f"ev-{i}", "type": "test.result", "source": f"SN{i % 16}", "payload": {"r": "pass"}}).encode()
        for i in range(n)
    ]
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}

    async def run() -> float:
        bus = EventBus(idempotency=False, emit_system_events=False, freeze_gc=True)
        mock = bus.add_transport(MockTransport("line", decoder="event-json"))
        bus.subscribe("test.*", name="noop")(_noop)
        async with bus:
            await asyncio.gather(*(mock.inject_raw(b, headers=headers) for b in bodies[:500]))  # warm up
            t0 = time.perf_counter()
            # Up to 256 messages in flight, as a broker's prefetch window would give.
            sem = asyncio.Semaphore(256)

            async def one(body: bytes) -> None:
                async with sem:
                    await mock.inject_raw(body, headers=headers)

            await asyncio.gather(*(one(b) for b in bodies))
            return n / (time.perf_counter() - t0)

    print(json.dumps({"intake_eps": round(asyncio.run(run())), "otel": mode, "tracing_active": tracing.active}))


async def _noop(event: object) -> None:
    return None


def last_json(cmd: list[str]) -> dict[str, object]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=HERE.parent)
    data: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000, help="events per measurement (default 20000)")
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds (default 5)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_intake(args.events, args.child)
        return
    load_start = os.getloadavg()
    figures: dict[str, dict[str, list[float]]] = {f: {m: [] for m in MODES} for f in ("bus", "intake")}
    for r in range(args.rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for mode in order:
            bus = last_json(
                [sys.executable, str(HERE / "inprocess.py"), f"--otel={mode}", "--events", str(args.events),
                 "--rounds", "1", "--only-bus"]
            )
            figures["bus"][mode].append(float(bus["bus_eps"]))  # type: ignore[arg-type]
            intake = last_json(
                [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--events", str(args.events // 2)]
            )
            figures["intake"][mode].append(float(intake["intake_eps"]))  # type: ignore[arg-type]
        print(
            f"round {r + 1} (load {os.getloadavg()[0]:.2f}): "
            + "  ".join(
                f"{f} {m} {figures[f][m][-1]:,.0f}/s" for f in ("bus", "intake") for m in MODES
            ),
            flush=True,
        )
    summary: dict[str, object] = {}
    for f, per_mode in figures.items():
        for m in MODES:
            values = per_mode[m]
            med = statistics.median(values)
            print(f"{f:6} {m:8}: {min(values):>9,.0f} .. {max(values):>9,.0f} events/s (median {med:,.0f})")
            summary[f"{f}_{m}_eps"] = [round(min(values)), round(statistics.median(values)), round(max(values))]
        for m in ("disabled", "enabled"):
            ratios = [x / a for x, a in zip(per_mode[m], per_mode["absent"], strict=True)]
            print(f"{f:6} {m}/absent per round: {min(ratios):.3f} .. {max(ratios):.3f}")
            summary[f"{f}_{m}_over_absent"] = [round(min(ratios), 3), round(statistics.median(ratios), 3),
                                               round(max(ratios), 3)]
    summary["loadavg_start"] = [round(x, 2) for x in load_start]
    summary["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    summary["rounds"] = args.rounds
    summary["events"] = args.events
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
