"""The receiving process of the forwarder round trip: a bus with a SQLite event store, served over HTTP
with Standard Webhooks required on ``POST /api/v2.0/EventService``. Prints ``PORT <n>`` once serving.
Usage: ``python webhook_receiver_main.py <db-path> <whsec-secret> <admin-token>``."""

from __future__ import annotations

import asyncio
import sys

from pywats_events import EventBus
from pywats_events.http import HTTPSettings, Server
from pywats_events.sql_store import open_store


async def main(db: str, secret: str, admin_token: str) -> None:
    bus = EventBus(open_store(db))
    bus.add_event_store()
    settings = HTTPSettings(
        port=0, admin_token=admin_token, routes={"event_service": {"webhook_secret": secret}}
    )
    server = Server(bus, settings)
    await bus.start()
    await server.start()
    print(f"PORT {server.port}", flush=True)
    await server.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
