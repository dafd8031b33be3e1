"""A real broker crash and restart (``kill -9`` of the VM, then start again) while messages flow: the
transport goes RECONNECTING then CONNECTED, its consumer is restored, readiness and ``system.transport_*``
events say so, and every message published before, during and after the restart is handled.

The restarted broker is a PRIVATE RabbitMQ node started by the ``private_rabbit`` fixture
(``tests/integration/amqp/private_broker.py``), never the shared one other test runs use."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events.bus import EventBus
from pywats_events.event import Event
from pywats_events.store import MemoryStore
from pywats_events.transport import TransportState
from tests.integration.amqp.broker import AmqpNames, envelope_bytes, expected_event_ids, wait_for
from tests.integration.amqp.private_broker import PrivateRabbit, require_private_rabbit
from tests.services import AMQP_URL

ROUTING = "CFX.Production.TestAndInspection.UnitsTested"


@pytest.fixture
def private_rabbit(tmp_path: Path) -> Iterator[PrivateRabbit]:
    """A RabbitMQ node of this test's own (port from 56800-56899), stopped and removed afterwards."""
    require_private_rabbit()
    node = PrivateRabbit(tmp_path / "rabbitmq")
    node.start()
    try:
        yield node
    finally:
        node.stop()


async def publish_until_confirmed(names: AmqpNames, seqs: range, url: str = AMQP_URL) -> None:
    """Publish with confirms, reconnecting and re-sending what was not confirmed (as a CFX endpoint would)."""
    left = list(seqs)
    while left:
        try:
            conn = await aio_pika.connect(url, timeout=5)
            async with conn:
                ch = await conn.channel(publisher_confirms=True)
                ex = await ch.get_exchange(names.exchange)
                while left:
                    chunk = left[:100]
                    await asyncio.gather(
                        *(
                            ex.publish(
                                aio_pika.Message(
                                    envelope_bytes(i, source=names.handle),
                                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                ),
                                f"{names.handle}.{ROUTING}",
                            )
                            for i in chunk
                        )
                    )
                    del left[: len(chunk)]
        except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError, OSError):
            await asyncio.sleep(0.3)


@pytest.mark.slow
async def test_consumer_is_restored_after_a_broker_restart_and_every_message_is_handled(
    amqp: AmqpNames, private_rabbit: PrivateRabbit
) -> None:
    url = private_rabbit.url
    transport = CFXTransport("cfx", **amqp.transport_options(heartbeat=5, prefetch=50, url=url))
    bus = EventBus(store=MemoryStore())
    bus.add_transport(transport)
    handled: Counter[str] = Counter()
    system: list[Event] = []

    @bus.subscribe("test.result")
    async def record(event: Event) -> None:
        await asyncio.sleep(0.002)  # keep messages in flight when the broker goes away
        handled[event.id] += 1

    @bus.subscribe("system.transport_*")
    async def watch(event: Event) -> None:
        system.append(event)

    await bus.start()
    try:
        assert bus.readiness()[0]
        await publish_until_confirmed(amqp, range(0, 400), url)
        await wait_for(lambda: len(handled) >= 50, 30, "messages to flow before the restart")
        await asyncio.to_thread(private_rabbit.kill)
        try:
            await wait_for(lambda: transport.state is TransportState.RECONNECTING, 30, "RECONNECTING")
            ready, details = bus.readiness()
            assert not ready
            assert "transport cfx: reconnecting" in details["not_ready"]
        finally:
            await asyncio.to_thread(private_rabbit.start)
        await publish_until_confirmed(amqp, range(400, 600), url)
        await wait_for(lambda: transport.state is TransportState.CONNECTED, 60, "CONNECTED again")
        await wait_for(lambda: len(handled) == 600, 60, "all 600 messages to be handled")

        def reported() -> bool:
            types = [e.type for e in system]
            if "system.transport_disconnected" not in types:
                return False
            after = types[types.index("system.transport_disconnected") + 1 :]
            return "system.transport_connected" in after and types[-1] == "system.transport_connected"

        await wait_for(reported, 10, "system.transport_disconnected, then system.transport_connected")
        assert bus.readiness()[0]
        assert transport.stats["sessions"] == 2  # the consumer was set up again on a new connection
    finally:
        await bus.stop()
    assert set(handled) == expected_event_ids(amqp.handle, 600)
    # Only messages in flight at the restart can be handled twice (at-least-once); at most the prefetch.
    assert sum(n - 1 for n in handled.values()) <= 50
    disconnected = next(e for e in system if e.type == "system.transport_disconnected")
    assert disconnected.payload["new_state"] == "reconnecting"
    assert disconnected.payload["transport"] == "cfx"


async def test_consumer_cancelled_by_the_broker_is_restored(amqp: AmqpNames) -> None:
    """Deleting the queue under a running consumer (the broker sends basic.cancel): the transport starts
    over, declares the queue again and consumes from it."""
    transport = CFXTransport("cfx", **amqp.transport_options())
    bus = EventBus()
    bus.add_transport(transport)
    handled: list[str] = []
    bus.subscribe("test.result")(lambda e: handled.append(e.id))  # type: ignore[func-returns-value]
    async with bus:
        conn = await aio_pika.connect(AMQP_URL)
        async with conn:
            ch = await conn.channel()
            await ch.queue_delete(amqp.queue)
        await wait_for(lambda: transport.stats["sessions"] == 2, 20, "a new session after the cancel")
        assert transport.state is TransportState.CONNECTED
        await publish_until_confirmed(amqp, range(1))
        await wait_for(lambda: len(handled) == 1, 20, "the message published to the re-declared queue")
