"""A consumer process for the kill -9 test: a bus with an MQTTTransport and one handler.

    python -m tests.integration.mqtt.consumer PORT CLIENT_ID PREFIX PROTOCOL MODE

Prints ``READY`` once subscribed, then for each event ``RECEIVED <payload seq> <mqtt_dup>`` when the
handler is entered. MODE ``block`` never lets the handler return (the message is never settled, so no
PUBACK may be sent); MODE ``ack`` returns at once (settled, acknowledged) and prints ``SETTLED <seq>``
once the transport has sent the PUBACK.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from pywats_events import Event, EventBus, TransportState
from pywats_mqtt import MQTTTransport


async def main(port: int, client_id: str, prefix: str, protocol: str, mode: str) -> None:
    transport = MQTTTransport(
        "mqtt",
        host="127.0.0.1",
        port=port,
        client_id=client_id,
        protocol=protocol,
        session_expiry=120,
        status_topic=f"{prefix}/status/{{client_id}}",
        rules=[{"topic": f"{prefix}/results/{{station}}", "type": "test.result", "source": "{station}"}],
    )
    bus = EventBus(idempotency=False, emit_system_events=False)
    never = asyncio.Event()

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        print("RECEIVED", event.payload["seq"], event.headers["mqtt_dup"], flush=True)
        if mode == "block":
            await never.wait()

    bus.add_transport(transport)
    async with bus:
        if transport.state is not TransportState.CONNECTED:
            print("NOT-CONNECTED", transport.last_error, flush=True)
            return
        print("READY", flush=True)
        acked = 0
        while True:
            await asyncio.sleep(0.01)
            if transport.acknowledged != acked:
                acked = transport.acknowledged
                print("SETTLED", acked, flush=True)


if __name__ == "__main__":
    # Python leaves SIGINT ignored when the parent ignored it (a suite started in the background by a
    # non-interactive shell, ``cmd &``): the test stops this process with SIGINT, so take it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]))
