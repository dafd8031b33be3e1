"""CFX conversion speed: every SDK example in samples/cfx, bytes -> events with the ``cfx`` decoder.

Run: ``python bench/cfx_convert.py [--rounds N]``. Decodes all valid samples N times (best of 5 runs)
and prints one JSON object last: ``{"messages": ..., "events": ..., "messages_per_s": ..., "us_per_message": ...}``.
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
from pywats_events.codec import DecodeContext  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="passes over the samples per run (count)")
    args = parser.parse_args()
    bodies = [p.read_bytes() for p in sorted((_HERE.parent / "samples" / "cfx").glob("*.json"))]
    ctx = DecodeContext(origin="bench")
    events = sum(len(decode_cfx(b, ctx)) for b in bodies)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.rounds):
            for body in bodies:
                decode_cfx(body, ctx)
        best = min(best, time.perf_counter() - start)
    messages = len(bodies) * args.rounds
    print(f"{messages} messages in {best:.3f} s (best of 5)")
    print(
        json.dumps(
            {
                "messages": len(bodies),
                "events": events,
                "messages_per_s": round(messages / best),
                "us_per_message": round(best / messages * 1e6, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
