"""A bus with a SQLite store and the event-store handler, served over HTTP: the process the crash test
kills with SIGKILL. Prints ``PORT <n>`` once serving. Usage: ``python service_main.py <db-path>``."""

from __future__ import annotations

import asyncio
import sys

from pywats_events import Event, EventBus
from pywats_events.http import HTTPSettings, Server
from pywats_events.sql_store import open_store


async def main(db: str) -> None:
    bus = EventBus(open_store(db))
    bus.add_event_store()

    @bus.subscribe("crash.*", name="slow")
    async def slow(event: Event) -> None:
        # Keep requests in flight, so the kill lands while some are unsettled.
        await asyncio.sleep(0.002)

    server = Server(bus, HTTPSettings(port=0))
    await bus.start()
    await server.start()
    print(f"PORT {server.port}", flush=True)
    await server.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
