"""A consumer process whose memory is measured: ``MQTTTransport`` -> bus -> a no-op handler, SQLite store.

Run: ``python tests/integration/mqtt/rss_consumer.py PORT CLIENT_ID PREFIX COUNT`` (rule
``PREFIX/rss/{station}``). Prints ``READY`` once subscribed, samples its own RSS (psutil) every 5 ms, and
once ``COUNT`` messages are acknowledged prints one JSON line: ``baseline_rss``, ``peak_rss``,
``after_rss`` (bytes), ``handled``, ``too_large``, ``pending_bytes_high_water``, then exits.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tempfile
from pathlib import Path

import psutil

from pywats_events import Event, EventBus, TransportState
from pywats_events.sql_store import open_store
from pywats_mqtt import MQTTTransport


async def main(port: int, client_id: str, prefix: str, count: int) -> None:
    me = psutil.Process()
    folder = Path(tempfile.mkdtemp(prefix="pywats-rss-"))
    transport = MQTTTransport(
        "mqtt",
        host="127.0.0.1",
        port=port,
        client_id=client_id,
        session_expiry=60,
        status_topic=None,
        rules=[{"topic": f"{prefix}/rss/{{station}}", "type": "sensor.reading", "source": "{station}"}],
    )
    bus = EventBus(store=open_store(f"sqlite:///{folder}/events.db"))
    handled = 0

    @bus.subscribe("sensor.reading")
    async def noop(event: Event) -> None:
        nonlocal handled
        handled += 1

    bus.add_transport(transport)
    await bus.start()
    if transport.state is not TransportState.CONNECTED:
        print("NOT-CONNECTED", transport.last_error, flush=True)
        return
    gc.collect()
    baseline = me.memory_info().rss
    peak = baseline
    print("READY", flush=True)
    while transport.acknowledged < count:
        await asyncio.sleep(0.005)
        peak = max(peak, me.memory_info().rss)
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
                "handled": handled,
                "too_large": transport.too_large,
                "pending_bytes_high_water": transport.pending_bytes_high_water,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])))
