"""CFXTransport over TLS with a client certificate (mutual TLS), end to end on the real broker.

The test broker listens without TLS, so a TLS-terminating relay (as stunnel or a load balancer would be)
sits in front of it: it requires and checks the client certificate, then relays bytes to RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.event import Event
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, wait_for
from tests.services import AMQP_URL


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    key, cert = tmp / f"{name}.key", tmp / f"{name}.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.asynccontextmanager
async def tls_relay(server: tuple[Path, Path], client_ca: Path, seen: list[str]) -> AsyncIterator[int]:
    """TLS on 127.0.0.1:<port> (yielded) requiring a client certificate signed by ``client_ca``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(server[0]), str(server[1]))
    ctx.load_verify_locations(cafile=str(client_ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    target = urlsplit(AMQP_URL)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peercert") or {}
        seen.append(dict(x[0] for x in peer.get("subject", ())).get("commonName", ""))
        up_r, up_w = await asyncio.open_connection(target.hostname, target.port or 5672)
        for t in (asyncio.create_task(pipe(reader, up_w)), asyncio.create_task(pipe(up_r, writer))):
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_mutual_tls_connection_consumes(amqp: AmqpNames, publisher: Publisher, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    server = self_signed(tmp_path, "broker")
    client = self_signed(tmp_path, "pywats-client")
    seen: list[str] = []
    target = urlsplit(AMQP_URL)
    async with tls_relay(server, client_ca=client[0], seen=seen) as port:
        options = amqp.transport_options(
            url=f"amqps://{target.username}:{target.password}@localhost:{port}/",
            ca_file=str(server[0]),
            cert_file=str(client[0]),
            key_file=str(client[1]),
        )
        transport = CFXTransport("cfx", **options)
        bus = EventBus()
        bus.add_transport(transport)
        got: list[Event] = []
        bus.subscribe("test.result")(lambda e: got.append(e))  # type: ignore[func-returns-value]
        async with bus:
            assert transport.describe()["tls"] is True
            await publisher.publish(envelope_bytes(1, source=amqp.handle), f"{amqp.handle}.CFX.X")
            await wait_for(lambda: len(got) == 1, 20, "the message over TLS")
        assert "pywats-client" in seen  # the relay saw and verified our client certificate

        untrusted = CFXTransport("cfx2", **{**options, "ca_file": str(client[0]), "connect_timeout": 3})
        bus2 = EventBus()
        bus2.add_transport(untrusted)
        async with bus2:
            assert untrusted.state.value == "reconnecting"  # broker certificate not trusted: no connection
            assert "SSL" in (untrusted.last_error or "") or "certificate" in (untrusted.last_error or "")
