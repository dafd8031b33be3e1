"""Drop-folder memory in watch mode: RSS and the transport's per-file state over many files.

Run: ``python bench/file_watch.py [--files 20000] [--batch 1000]``. A ``FileTransport`` watches a scratch
folder; files are dropped in batches (each one event in the normalized JSON form, no id: a fresh event
each) and the next batch waits until the previous one is processed, so the figures show what stays after a
file is done, not a backlog. Handler: a no-op function; store: in memory, idempotency off, so the bus
itself keeps nothing per event and any growth is the transport's.

Prints one line per checkpoint and, last, one JSON object: ``{"files": N, "rss_mb_after_first_batch": ...,
"rss_mb_end": ..., "rss_growth_mb": ..., "peak_rss_mb": ..., "inflight": 0, "tasks": 0, "outcomes": ...,
"files_per_s": ...}``. Issue 10, deliverable 1: bounded means ``inflight``/``tasks`` end at 0,
``outcomes`` at ``outcome_history`` (1000), and RSS growth after the first batch stays flat (a few MB of
allocator noise, not proportional to the file count).

Measured (2 shared cores, 20,000 files): before the fix ``outcomes`` held all 20,000 records and RSS grew
20.8 MB after the first batch (about 1 KB per file); after it, 1000 records and +1.7 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import psutil  # noqa: E402

from pywats_events import Event, EventBus, MemoryStore  # noqa: E402
from pywats_events.transports.file import FileTransport  # noqa: E402


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


async def main(files: int, batch: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        bus = EventBus(MemoryStore(), idempotency=False, emit_system_events=False)

        @bus.subscribe("test.*", name="noop")
        async def noop(event: Event) -> None:
            return None

        transport = FileTransport(path=inbox, settle_seconds=0.0, concurrency=8, rescan_seconds=0.5)
        bus.add_transport(transport)
        body = b'{"type": "test.result", "source": "bench", "payload": {"unit_id": "SN1", "result": "pass"}}'
        first_batch_rss = 0.0
        peak = 0.0
        started = time.perf_counter()
        async with bus:
            while not (inbox / "processed").is_dir():  # noqa: ASYNC110 - a folder appearing has no event
                await asyncio.sleep(0.01)
            for start in range(0, files, batch):
                n = min(batch, files - start)
                for i in range(start, start + n):
                    (inbox / f"f{i:06d}.json").write_bytes(body)
                while transport.counts["processed"] < start + n:  # noqa: ASYNC110 - polling a counter
                    await asyncio.sleep(0.02)
                rss = _rss_mb()
                peak = max(peak, rss)
                if start == 0:
                    first_batch_rss = rss
                print(
                    f"{start + n:>6} files: rss {rss:7.1f} MB, inflight {len(transport._inflight)}, "
                    f"tasks {len(transport._tasks)}, outcomes {len(transport.outcomes)}",
                    flush=True,
                )
            elapsed = time.perf_counter() - started
            await asyncio.sleep(0.2)  # let the last tasks' done-callbacks run
            end_rss = _rss_mb()
            return {
                "files": files,
                "rss_mb_after_first_batch": round(first_batch_rss, 1),
                "rss_mb_end": round(end_rss, 1),
                "rss_growth_mb": round(end_rss - first_batch_rss, 1),
                "peak_rss_mb": round(max(peak, end_rss), 1),
                "inflight": len(transport._inflight),
                "tasks": len(transport._tasks),
                "outcomes": len(transport.outcomes),
                "files_per_s": round(files / elapsed, 1),
            }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000, help="files dropped in all (count)")
    parser.add_argument("--batch", type=int, default=1000, help="files dropped before waiting (count)")
    ns = parser.parse_args()
    print(json.dumps(asyncio.run(main(ns.files, ns.batch))))
