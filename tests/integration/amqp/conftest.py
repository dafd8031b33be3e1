"""Fixtures for the RabbitMQ tests.

Every test gets its own exchange and queue (uuid suffix) so that runs on a shared broker never see each
other's messages, and deletes them afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from tests.integration.amqp.broker import AmqpNames, Publisher, delete_names
from tests.services import AMQP_URL, RABBITMQ, require_service


@pytest.fixture
async def amqp() -> AsyncIterator[AmqpNames]:
    """Unique exchange/queue names on the real RabbitMQ; deleted after the test."""
    require_service("RabbitMQ", RABBITMQ)
    tag = uuid.uuid4().hex[:10]
    names = AmqpNames(exchange=f"test-cfx-{tag}", queue=f"test-pywats-{tag}", handle=f"Test.Line.{tag}")
    yield names
    await delete_names(names)


@pytest.fixture
async def publisher(amqp: AmqpNames) -> AsyncIterator[Publisher]:
    """A confirming publisher on the test's exchange (declared durable topic, as the transport does)."""
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    ch = await conn.channel(publisher_confirms=True)
    ex = await ch.declare_exchange(amqp.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    yield Publisher(conn, ch, ex)
    await conn.close()
