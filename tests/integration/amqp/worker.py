"""A bus process for the crash and scale-out tests: ``CFXTransport`` -> ``EventBus`` on a durable store ->
two handlers that append ``<handler> <event id>`` lines to a file.

Run: ``python -m tests.integration.amqp.worker --store URL --out FILE --options JSON``. Prints ``READY`` once
the transport is CONNECTED; stops cleanly on SIGTERM. Each line is one ``os.write`` on an ``O_APPEND`` file
descriptor, so it is in the file (page cache) the moment the handler returns: a ``kill -9`` of this
process loses none of them (only a crash of the whole machine could).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.event import Event
from pywats_events.sql_store import open_store
from pywats_events.transport import TransportState

HANDLERS = ("h1", "h2")


async def run(store_url: str, out: str, options: dict[str, object]) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    transport = CFXTransport("cfx", **options)  # type: ignore[arg-type]
    bus = EventBus(store=open_store(store_url))
    bus.add_transport(transport)
    for name in HANDLERS:

        async def record(event: Event, _name: str = name) -> None:
            os.write(fd, f"{_name} {event.id}\n".encode())

        bus.register(record, name=name, event_types=["test.result"])
    connected = asyncio.Event()

    async def ready(event: Event) -> None:
        connected.set()

    bus.register(ready, name="ready", event_types=["system.transport_connected"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await bus.start()
    if transport.state is not TransportState.CONNECTED:
        await connected.wait()  # the broker was not there yet: the transport keeps reconnecting
    print("READY", flush=True)
    await stop.wait()
    await bus.stop()
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--options", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.store, args.out, json.loads(args.options)))


if __name__ == "__main__":
    main()
