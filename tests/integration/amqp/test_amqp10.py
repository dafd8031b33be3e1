"""AMQP 1.0 interoperability: a real AMQP 1.0 client (python-qpid-proton, as the CFX SDK speaks AMQP 1.0)
publishes CFX envelopes to the RabbitMQ exchange; ``CFXTransport`` (AMQP 0-9-1) receives and routes each.

Addresses: RabbitMQ 3.x (``rabbitmq_amqp1_0`` plugin) knows the "v1" target addresses ``/exchange/X``
(routing key = the message's ``subject``) and ``/exchange/X/RK``. RabbitMQ 4.x speaks AMQP 1.0 natively,
adds the "v2" address ``/exchanges/X/RK`` and still accepts v1 (deprecated). The test uses what the
running broker accepts.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from urllib.parse import urlsplit

import aio_pika
import pytest

from pywats_cfx.decoder import decode_cfx
from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from tests.integration.amqp.broker import AmqpNames, envelope_bytes, wait_for
from tests.services import AMQP_URL, services_required

proton = pytest.importorskip("proton", reason="python-qpid-proton is not installed: pip install -e '.[test]'")
from proton.utils import BlockingConnection  # noqa: E402

UNITS_TESTED = "CFX.Production.TestAndInspection.UnitsTested"

#: The AMQP 1.0 protocol header with the SASL layer (AMQP 1.0 part 5.3.1); a broker that speaks AMQP 1.0
#: answers with the same 8 bytes, one that does not answers with the version it speaks and closes.
AMQP10_SASL_HEADER = b"AMQP\x03\x01\x00\x00"


def amqp10_answer(host: str, port: int) -> bytes:
    """The 8 bytes the broker sends back for the AMQP 1.0 SASL protocol header (b"" if it closes)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(AMQP10_SASL_HEADER)
        answer = b""
        while len(answer) < 8:
            chunk = sock.recv(8 - len(answer))
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.fixture(autouse=True)
def _broker_speaks_amqp10(amqp: AmqpNames) -> None:
    """Fail (or skip without PYWATS_REQUIRE_SERVICES) with what to do, instead of proton's traceback, when
    RabbitMQ 3.x runs without its AMQP 1.0 plugin."""
    parts = urlsplit(AMQP_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    answer = amqp10_answer(host, port)
    if answer == AMQP10_SASL_HEADER:
        return
    message = (
        f"RabbitMQ at {host}:{port} does not speak AMQP 1.0 (it answered {answer!r}): enable the plugin with "
        "`rabbitmq-plugins enable rabbitmq_amqp1_0` (RabbitMQ 3.x; 4.x has AMQP 1.0 built in)"
    )
    if services_required():
        pytest.fail(message + " (PYWATS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


async def broker_major_version() -> int:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        props = conn.transport.connection.server_properties  # type: ignore[union-attr]
        version = props.get("version", b"3")
    return int((version.decode() if isinstance(version, bytes) else str(version)).split(".")[0])


def amqp10_send(address: str, messages: list[tuple[bytes, str | None, str | None]]) -> None:
    """Send ``(body, subject, content_encoding)`` messages as AMQP 1.0 Data sections; waits for each
    delivery to be settled by the broker."""
    parts = urlsplit(AMQP_URL)
    conn = BlockingConnection(
        f"amqp://{parts.username}:{parts.password}@{parts.hostname}:{parts.port or 5672}",
        timeout=20,
        sasl_enabled=True,
        allowed_mechs="PLAIN",
    )
    try:
        sender = conn.create_sender(address)
        for body, subject, encoding in messages:
            msg = proton.Message(
                body=body, subject=subject, content_type="application/json", content_encoding=encoding, durable=True
            )
            msg.inferred = True  # bytes as a Data section, not an AmqpValue
            sender.send(msg)
    finally:
        conn.close()


def ids_of(body: bytes) -> list[str]:
    return [e.id for e in decode_cfx(body, DecodeContext())]


async def test_amqp10_publisher_raw_gzip_single_and_batch_reach_cfx_transport(amqp: AmqpNames) -> None:
    major = await broker_major_version()
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    got: list[Event] = []
    bus.subscribe("test.result")(lambda e: got.append(e))  # type: ignore[func-returns-value]
    rk = f"{amqp.handle}.{UNITS_TESTED}"
    h = amqp.handle

    def batch(seqs: range) -> bytes:
        return json.dumps([json.loads(envelope_bytes(i, source=h)) for i in seqs]).encode()

    by_subject = [
        (envelope_bytes(1, source=h), rk, None),  # raw single
        (envelope_bytes(2, source=h, gzip=True), rk, "gzip"),  # gzip single
        (batch(range(10, 13)), rk, None),  # raw batch
        (gzip.compress(batch(range(20, 23))), rk, "gzip"),  # gzip batch
    ]
    explicit_rk = f"{h}.Explicit.{UNITS_TESTED}"
    by_address = [(envelope_bytes(3, source=h, gzip=True), None, "gzip")]
    address_with_key = (
        f"/exchanges/{amqp.exchange}/{explicit_rk}" if major >= 4 else f"/exchange/{amqp.exchange}/{explicit_rk}"
    )
    expected = {i for body, _, enc in by_subject + by_address for i in ids_of(gzip.decompress(body) if enc else body)}
    assert len(expected) == 9
    async with bus:
        await asyncio.to_thread(amqp10_send, f"/exchange/{amqp.exchange}", by_subject)
        await asyncio.to_thread(amqp10_send, address_with_key, by_address)
        await wait_for(lambda: len(got) == 9, 30, "9 events from AMQP 1.0 messages")
    assert {e.id for e in got} == expected
    keys = {e.id: e.headers["amqp.routing_key"] for e in got}
    assert sorted(keys.values()).count(rk) == 8  # subject became the routing key
    assert sorted(keys.values()).count(explicit_rk) == 1
    assert sum(1 for e in got if e.headers.get("amqp.content_encoding") == "gzip") == 5
    assert all(e.source == h for e in got)
    assert transport.stats["settled"] == 5
