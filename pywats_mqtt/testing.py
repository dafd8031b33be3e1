"""``MQTTTestBroker``: drive a real ``MQTTTransport`` without a broker, for testing rules and handlers.

PUBLISH packets given as the broker would send them (topic, QoS, payload, retain and DUP flags, MQTT 5
properties) go through the transport's own code: the topic mapping rules, the size limit, the bus, the
ordered-PUBACK logic (a PUBACK only once every earlier QoS 1 message is settled) and the ``max_inflight``
flow control. The PUBACKs are recorded instead of sent. The broker-side guarantees (redelivery to a
persistent session, Receive Maximum) are proven by the integration tests against Mosquitto.

```python
transport = MQTTTransport(rules=[{"topic": "plant/{station}/result", "type": "test.result"}])
broker = MQTTTestBroker(transport)           # before the bus starts the transport
bus.add_transport(transport)
async with bus:
    mid = broker.publish("plant/ict-1/result", b'{"result": "pass"}', qos=1)
    await broker.acked(mid)
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pywats_events import TransportState

from .transport import MQTTTransport

__all__ = ["MQTTTestBroker"]


class _Connection:
    """Records what the transport hands to its connection (PUBACKs, flow control, publishes)."""

    def __init__(self, broker: MQTTTestBroker) -> None:
        self._broker = broker
        self.connected = True
        self.paused = False

    def ack(self, mid: int, qos: int) -> None:
        self._broker.pubacks.append(mid)
        self._broker._changed.set()

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    async def publish(
        self, topic: str, payload: Any, qos: int, retain: bool, properties: Any = None
    ) -> None:
        self._broker.published.append((topic, payload, qos, retain))

    async def disconnect(self, limit: float = 2.0) -> None:
        self.connected = False


class MQTTTestBroker:
    """Stands in for the MQTT broker under one ``MQTTTransport``: create it before the bus starts it.

    Args:
        transport: the transport to drive; its ``start`` attaches this double instead of connecting (its
            ``stop`` is the real one: drain within ``drain_timeout``, status ``offline``, disconnect).

    Attributes:
        pubacks: packet ids acknowledged (PUBACK), in the order the transport sent them.
        published: ``(topic, payload, qos, retain)`` of what the transport published (``send``, status).
    """

    def __init__(self, transport: MQTTTransport) -> None:
        self.transport = transport
        self.pubacks: list[int] = []
        self.published: list[tuple[str, Any, int, bool]] = []
        self._conn = _Connection(self)
        self._next_mid = 0
        self._changed = asyncio.Event()
        setattr(transport, "start", self._start)  # noqa: B010 - replace the bound method on this instance

    async def _start(self) -> None:
        t = self.transport
        if t._started:
            return
        t._started = True
        t._stopping = False
        t._conn = self._conn  # type: ignore[assignment]
        t._queue = asyncio.Queue()
        t._connected = asyncio.Event()
        t._connected.set()
        t._lost = asyncio.Event()
        t._pump_task = asyncio.create_task(t._pump(), name=f"pywats-mqtt-test-{t.name}-pump")
        t._set_state(TransportState.CONNECTED, "MQTTTestBroker")

    @property
    def reading_paused(self) -> bool:
        """True while the transport has stopped reading (``max_inflight`` / ``max_inflight_bytes`` reached)."""
        return self._conn.paused

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        dup: bool = False,
        user_properties: Mapping[str, str] | None = None,
        content_type: str | None = None,
        subscription_ids: list[int] | None = None,
        mid: int | None = None,
    ) -> int:
        """Hand one PUBLISH to the transport as the broker would; returns its packet id.

        Args:
            topic: the topic name. payload: the bytes. qos: 0 or 1 (QoS 2 is not subscribed to).
            retain / dup: the PUBLISH flags (DUP: a redelivery; idempotency records are consulted).
            user_properties / content_type / subscription_ids: MQTT 5 PUBLISH properties.
            mid: packet id (default: 1, 2, ... in order).

        Raises:
            RuntimeError: the transport was not started on this double (start the bus first).
        """
        t = self.transport
        if not t._started or t._conn is not self._conn:
            raise RuntimeError("the transport is not started on this MQTTTestBroker; start the bus first")
        if mid is None:
            self._next_mid += 1
            mid = self._next_mid
        message = paho.MQTTMessage(mid, topic.encode())
        message.payload = payload
        message.qos = qos
        message.retain = retain
        message.dup = dup
        if user_properties or content_type or subscription_ids:
            props = Properties(PacketTypes.PUBLISH)
            if user_properties:
                props.UserProperty = list(user_properties.items())
            if content_type:
                props.ContentType = content_type
            if subscription_ids:
                props.SubscriptionIdentifier = subscription_ids
            message.properties = props
        t._on_message(message)
        return mid

    async def acked(self, mid: int, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds until packet ``mid`` is acknowledged (PUBACK).

        Raises:
            TimeoutError: not acknowledged within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while mid not in self.pubacks:
                self._changed.clear()
                await self._changed.wait()

    async def settled(self, timeout: float = 5.0) -> None:
        """Wait up to ``timeout`` seconds until no received message is unsettled (QoS 0 included).

        Raises:
            TimeoutError: messages still unsettled after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while self.transport.pending:  # noqa: ASYNC110 - pending has no event of its own
                await asyncio.sleep(0.005)
