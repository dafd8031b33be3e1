"""The test broker: unique names per test, a confirming publisher, queue depth, waiting on conditions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest

from pywats_cfx.envelope import envelope_to_bytes
from pywats_cfx.explorer import generate_envelope
from tests.services import AMQP_URL


@dataclass(frozen=True)
class AmqpNames:
    """Names of one test's broker objects."""

    exchange: str
    queue: str
    handle: str

    @property
    def dlq(self) -> str:
        return f"{self.queue}.dead-letter"

    def transport_options(self, **extra: Any) -> dict[str, Any]:
        """Options for ``CFXTransport`` pointing at this test's exchange and queue."""
        return {
            "url": AMQP_URL,
            "exchange": self.exchange,
            "queue": self.queue,
            "handle": self.handle,
            "reconnect_initial_delay": 0.2,
            "reconnect_max_delay": 1.0,
            **extra,
        }


async def delete_names(names: AmqpNames) -> None:
    """Delete the test's queues and exchanges (ignores what does not exist)."""
    try:
        conn = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception:
        return
    async with conn:
        for kind, name in (
            ("queue", names.queue),
            ("queue", names.dlq),
            ("exchange", names.exchange),
            ("exchange", names.dlq),
        ):
            ch = await conn.channel()
            try:
                if kind == "queue":
                    await ch.queue_delete(name)
                else:
                    await ch.exchange_delete(name)
            except Exception:
                pass
            finally:
                if not ch.is_closed:
                    await ch.close()


def envelope_bytes(seq: int, *, source: str, gzip: bool = False, kind: str = "units-tested") -> bytes:
    """Wire bytes of a synthetic CFX envelope (``pywats_cfx.explorer.generate_envelope``)."""
    return envelope_to_bytes(generate_envelope(kind, seq=seq, source=source, tests=2), gzip=gzip)


class Publisher:
    """A plain aio-pika publisher with confirms, as a factory's CFX endpoint would publish."""

    def __init__(
        self,
        conn: aio_pika.abc.AbstractConnection,
        channel: aio_pika.abc.AbstractChannel,
        exchange: aio_pika.abc.AbstractExchange,
    ) -> None:
        self.conn = conn
        self.channel = channel
        self.exchange = exchange

    async def publish(self, body: bytes, routing_key: str, **props: Any) -> None:
        props.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
        await self.exchange.publish(aio_pika.Message(body, **props), routing_key)

    async def publish_many(self, items: Iterable[tuple[bytes, str]], window: int = 500) -> None:
        """Publish ``(body, routing_key)`` pairs with up to ``window`` confirms outstanding."""
        pending: list[asyncio.Task[Any]] = []
        for body, rk in items:
            pending.append(asyncio.ensure_future(self.publish(body, rk)))
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)


async def wait_for(predicate: Callable[[], bool], within: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


async def queue_depth(queue: str) -> int:
    """Ready messages in ``queue`` (passive declare; unacknowledged ones are not counted)."""
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, passive=True)
        return int(q.declaration_result.message_count or 0)
