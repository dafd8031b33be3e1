"""``CFXTestBroker``: drive a real ``CFXTransport`` without RabbitMQ, for testing handlers and settings.

Deliveries given as AMQP 0-9-1 would carry them (routing key, properties and headers, body, redelivered
flag) go through the transport's own code: the header mapping, content-encoding checks, the configured
decoder (the real CFX decoder), ``Transport.intake``, the size limit, the bus, and the ack window that turns
settlements into ``basic.ack`` (``multiple``, batched by ``ack_batch_size`` / ``ack_flush_ms``) /
``basic.nack`` frames. It attaches through the transport's public ``attach`` / ``receive`` seam. The
frames are recorded instead of sent, and so are republishes (a failed settlement requeued with its
delivery count, or parked on the dead-letter exchange). The real-broker guarantees (redelivery after a
crash, prefetch) are proven by the integration tests; this double shows what the transport decided.

```python
transport = CFXTransport(queue="q")
broker = CFXTestBroker(transport)          # before the bus starts the transport
bus.add_transport(transport)
async with bus:
    tag = broker.deliver(body, routing_key="line1.CFX.Production.UnitsArrived")
    assert await broker.settled(tag) == "ack"
```
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiormq.abc
from pamqp import commands, header

from .transport import CFXTransport

__all__ = ["AckFrame", "CFXTestBroker", "Republished"]


@dataclass(frozen=True, slots=True)
class AckFrame:
    """One frame the transport sent for settlement: ``op`` is ``ack`` or ``nack``; ``multiple`` True when
    the frame covers every delivery up to ``tag`` (AMQP 0-9-1 ``basic.ack`` ``multiple`` bit)."""

    op: str
    tag: int
    multiple: bool = False


@dataclass(frozen=True, slots=True)
class Republished:
    """A message the transport published again: requeued to ``routing_key`` on the default exchange
    after a failed settlement, or parked on the dead-letter exchange (``exchange``)."""

    exchange: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)


class _Channel:
    """Records what the transport sends on its consuming channel."""

    def __init__(self, broker: CFXTestBroker) -> None:
        self._broker = broker

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._broker._frame(AckFrame("ack", delivery_tag, multiple))

    async def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._broker._frame(AckFrame("nack", delivery_tag, multiple))

    async def basic_cancel(self, consumer_tag: str, timeout: float | None = None) -> None:
        return None


class _Exchange:
    def __init__(self, broker: CFXTestBroker, name: str) -> None:
        self._broker, self.name = broker, name

    async def publish(self, message: Any, routing_key: str, timeout: float | None = None) -> None:
        self._broker.republished.append(
            Republished(self.name, routing_key, bytes(message.body), dict(message.headers or {}))
        )


class _PublishChannel:
    def __init__(self, broker: CFXTestBroker) -> None:
        self._broker = broker
        self.default_exchange = _Exchange(broker, "")

    async def get_exchange(self, name: str, *, ensure: bool = False) -> _Exchange:
        return _Exchange(self._broker, name)


class CFXTestBroker:
    """Stands in for RabbitMQ under one ``CFXTransport``: create it before the bus starts the transport.

    Args:
        transport: the transport to drive; its ``start`` opens a session on this double instead of a
            connection (its ``stop`` is the real one: drain, final acks, close).

    Attributes:
        frames: every ack/nack frame sent, in order.
        republished: every message published again (requeue after a failed settlement, park).
    """

    def __init__(self, transport: CFXTransport) -> None:
        self.transport = transport
        self.frames: list[AckFrame] = []
        self.republished: list[Republished] = []
        self._outcomes: dict[int, str] = {}
        self._delivered: list[int] = []
        self._next_tag = 0
        self._changed = asyncio.Event()
        self._started = False
        setattr(transport, "start", self._start)  # noqa: B010 - replace the bound method on this instance

    async def _start(self) -> None:
        # The transport's public seam for a channel that is not a broker connection.
        self.transport.attach(_Channel(self), _PublishChannel(self), detail="CFXTestBroker")
        self._started = True

    def deliver(
        self,
        body: bytes,
        *,
        routing_key: str,
        exchange: str = "cfx",
        headers: dict[str, Any] | None = None,
        redelivered: bool = False,
        content_type: str | None = "application/json",
        content_encoding: str | None = None,
        message_id: str | None = None,
        timestamp: datetime | None = None,
        app_id: str | None = None,
    ) -> int:
        """Deliver one message to the transport as ``basic.deliver``; returns its delivery tag (1, 2...).

        Args:
            body: the message body (bytes, as published; gzip when ``content_encoding`` says so).
            routing_key: the AMQP routing key (CFX: ``<handle>.CFX.<message name>`` or the topic).
            headers: AMQP headers table (``cfx-handle``, ``cfx-topic``...).
            redelivered: the broker's redelivered flag.

        Raises:
            RuntimeError: the transport was not started (``bus.start``) on this double.
        """
        if not self._started:
            raise RuntimeError("the transport is not started on this CFXTestBroker; start the bus first")
        self._next_tag += 1
        tag = self._next_tag
        props = commands.Basic.Properties(
            content_type=content_type,
            content_encoding=content_encoding,
            headers=headers,
            message_id=message_id,
            timestamp=timestamp,
            app_id=app_id,
        )
        message = aiormq.abc.DeliveredMessage(
            delivery=commands.Basic.Deliver(
                consumer_tag="test", delivery_tag=tag, redelivered=redelivered, exchange=exchange,
                routing_key=routing_key,
            ),
            header=header.ContentHeader(body_size=len(body), properties=props),
            body=body,
            channel=None,  # type: ignore[arg-type]
        )
        self._delivered.append(tag)
        self.transport.receive(message)
        return tag

    def _frame(self, frame: AckFrame) -> None:
        self.frames.append(frame)
        if frame.multiple:
            covered = [t for t in self._delivered if t <= frame.tag and t not in self._outcomes]
        else:
            covered = [frame.tag]
        for tag in covered:
            self._outcomes[tag] = frame.op
        self._changed.set()

    def outcome(self, tag: int) -> str | None:
        """``ack``, ``nack``, or ``None`` while delivery ``tag`` is not settled with the broker yet."""
        return self._outcomes.get(tag)

    async def settled(self, tag: int, timeout: float = 5.0) -> str:
        """Wait up to ``timeout`` seconds until delivery ``tag`` is acked or nacked; returns which.

        Raises:
            TimeoutError: still unsettled after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while tag not in self._outcomes:
                self._changed.clear()
                await self._changed.wait()
        return self._outcomes[tag]
