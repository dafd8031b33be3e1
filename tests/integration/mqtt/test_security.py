"""TLS towards the broker and refused credentials, against private Mosquitto instances."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from pywats_events import Event, EventBus, TransportState
from tests.integration.mqtt.broker import Client, PrivateBroker, free_port, make_tls_files
from tests.integration.mqtt.conftest import Run, wait_for, wait_state

pytestmark = [pytest.mark.services]


async def test_tls_connection_verifies_the_broker_certificate_and_consumes() -> None:
    folder = Path(tempfile.mkdtemp(prefix="pywats-tls-"))
    folder.chmod(0o755)
    files = make_tls_files(folder)
    tls_port = free_port()
    broker = PrivateBroker(
        (
            f"listener {tls_port} 127.0.0.1",
            f"cafile {files['ca']}",
            f"certfile {files['cert']}",
            f"keyfile {files['key']}",
        )
    )
    try:
        broker.start()
        run = Run(broker.port)
        t = run.transport(
            port=tls_port, tls={"ca_file": str(files["ca"])}, rules=[{"topic": f"{run.prefix}/in", "type": "x.tls"}]
        )
        # The system CAs do not know our test CA: the handshake must fail, not fall back to plain text.
        untrusted = run.transport("untrusted", port=tls_port, tls={}, rules=[{"topic": "x", "type": "x.y"}])
        bus = EventBus()
        got: list[Event] = []

        @bus.subscribe("x.tls")
        async def handle(event: Event) -> None:
            got.append(event)

        bus.add_transport(t)
        bus.add_transport(untrusted)
        async with bus:
            assert t.state is TransportState.CONNECTED
            assert untrusted.state is TransportState.RECONNECTING
            detail = bus.readiness()[1]["transports"][1]["detail"]
            assert "certificate verify failed" in detail.lower()
            pub = Client(broker.port)  # plain listener: the message crosses to the TLS subscriber
            pub.publish(f"{run.prefix}/in", b'{"over": "tls"}')
            pub.close()
            await wait_for(lambda: len(got) == 1, what="message over TLS")
        assert got[0].payload == {"over": "tls"}
    finally:
        broker.close()
        shutil.rmtree(folder, ignore_errors=True)


async def test_refused_credentials_put_the_transport_in_error_and_readiness_says_why() -> None:
    broker = PrivateBroker(("allow_anonymous false",))
    try:
        broker.start()
        run = Run(broker.port)
        t = run.transport(username="nobody", password="wrong-pw", rules=[{"topic": "x", "type": "x.y"}])
        bus = EventBus()
        bus.add_transport(t)
        async with bus:
            await wait_state(t, TransportState.ERROR)
            ready, details = bus.readiness()
            assert not ready
            error = details["transports"][0]["last_error"]
            assert "refused the connection" in error and "authorized" in error.lower()
            assert "wrong-pw" not in str(details)
    finally:
        broker.close()
