"""A consumer process whose memory is measured: ``CFXTransport`` -> bus -> a no-op handler, SQLite store.

Run: ``python tests/integration/amqp/rss_worker.py OPTIONS_JSON DB_PATH COUNT``. Prints ``READY`` once
connected, samples its own RSS (psutil) every 5 ms, and once ``COUNT`` messages are settled or
dead-lettered prints one JSON line: ``baseline_rss``, ``peak_rss``, ``after_rss`` (bytes), ``settled``,
``too_large``, ``peak_inflight_bytes``, then exits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

import psutil

from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.event import Event
from pywats_events.sql_store import open_store
from pywats_events.transport import TransportState


async def main(options: dict[str, object], db: str, count: int) -> None:
    me = psutil.Process()
    transport = CFXTransport("cfx", **options)  # type: ignore[arg-type]
    bus = EventBus(store=open_store(f"sqlite:///{db}"))
    bus.add_transport(transport)

    @bus.subscribe("test.result")
    async def noop(event: Event) -> None:
        return None

    await bus.start()
    while transport.state is not TransportState.CONNECTED:  # noqa: ASYNC110 (a state, no event to await)
        await asyncio.sleep(0.05)
    gc.collect()
    baseline = me.memory_info().rss
    peak = baseline
    print("READY", flush=True)
    stats = transport.stats
    while stats["settled"] + stats["too_large"] < count:
        await asyncio.sleep(0.005)
        peak = max(peak, me.memory_info().rss)
    peak_inflight = transport.inflight_bytes[1]
    await asyncio.sleep(0.5)
    gc.collect()
    after = me.memory_info().rss
    await bus.stop()
    print(
        json.dumps(
            {
                "baseline_rss": baseline,
                "peak_rss": peak,
                "after_rss": after,
                "settled": stats["settled"],
                "too_large": stats["too_large"],
                "peak_inflight_bytes": peak_inflight,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
