"""Non-finite numbers (issue 11.4) over a real RabbitMQ: an event with a float NaN sent through the CFX
transport is strict RFC 8259 JSON on the wire, NaN as "NaN" (Newtonsoft's form)."""

from __future__ import annotations

import asyncio

import aio_pika

from pywats_cfx.transport import CFXTransport
from pywats_events import EventBus
from tests.integration.amqp.broker import AmqpNames
from tests.integration.core.test_non_finite import EXPECTED, nan_event, strict
from tests.services import AMQP_URL


async def test_sent_event_is_strict_json_on_the_wire(amqp: AmqpNames) -> None:
    bus = EventBus()
    bus.add_transport(CFXTransport("cfx", **amqp.transport_options()))
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn, bus:
        ch = await conn.channel()
        ex = await ch.get_exchange(amqp.exchange)
        tap = await ch.declare_queue(f"{amqp.queue}.tap", exclusive=True, auto_delete=True)
        await tap.bind(ex, "#")
        await bus.send(nan_event(), "cfx")
        message = None
        for _ in range(200):
            message = await tap.get(fail=False, no_ack=True)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        assert message is not None, "the sent event did not reach the tap queue"
    assert strict(message.body)["payload"] == EXPECTED
