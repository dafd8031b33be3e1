"""CFX conversion speed: every SDK example in samples/cfx, bytes -> events with the ``cfx`` decoder.

Run: ``python bench/cfx_convert.py [--rounds N]``. Decodes all valid samples N times (best of 5 runs)
and prints one JSON object last: ``{"messages": ..., "events": ..., "messages_per_s": ..., "us_per_message": ...,
"cpu_us_per_message": ..., "units_tested_cpu_us": ..., "orjson": ...}``. The CPU figures (process time, best
of 5: steadier than wall time on a busy machine) are per sample message and per 1.5 KB ``UnitsTested``
envelope with two tests (the AMQP benchmarks' body).
Nothing is sent anywhere; this is the codec alone (envelope parse, body mapping, ``Event`` construction).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

from pywats_cfx import decode_cfx  # noqa: E402
from pywats_cfx import envelope as _envelope  # noqa: E402
from pywats_cfx.envelope import envelope_to_bytes  # noqa: E402
from pywats_cfx.explorer import generate_envelope  # noqa: E402
from pywats_events.codec import DecodeContext  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the samples per run (count)")
    args = parser.parse_args()
    bodies = [p.read_bytes() for p in sorted((_HERE.parent / "samples" / "cfx").glob("*.json"))]
    ctx = DecodeContext(origin="bench")
    events = sum(len(decode_cfx(b, ctx)) for b in bodies)
    best = best_cpu = float("inf")
    for _ in range(5):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.rounds):
            for body in bodies:
                decode_cfx(body, ctx)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    messages = len(bodies) * args.rounds
    tested = [
        envelope_to_bytes(generate_envelope("units-tested", seq=i, source="Bench.Tester.1", tests=2))
        for i in range(2000)
    ]
    tested_cpu = float("inf")
    for _ in range(5):
        cpu = time.process_time()
        for body in tested:
            decode_cfx(body, ctx)
        tested_cpu = min(tested_cpu, time.process_time() - cpu)
    print(f"{messages} messages in {best:.3f} s (best of 5)")
    print(
        json.dumps(
            {
                "messages": len(bodies),
                "events": events,
                "messages_per_s": round(messages / best),
                "us_per_message": round(best / messages * 1e6, 2),
                "cpu_us_per_message": round(best_cpu / messages * 1e6, 2),
                "units_tested_cpu_us": round(tested_cpu / len(tested) * 1e6, 2),
                "orjson": getattr(_envelope, "_orjson_loads", None) is not None,
            }
        )
    )


if __name__ == "__main__":
    main()
