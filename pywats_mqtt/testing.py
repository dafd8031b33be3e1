"""``MQTTTestBroker``: drive a real ``MQTTTransport`` without a broker, for testing rules and handlers.

PUBLISH packets given as the broker would send them (topic, QoS, payload, retain and DUP flags, MQTT 5
properties) go through the transport's own code, through its public seams only (``connection_factory``
and the connection's ``on_message`` callback): the topic mapping rules, the size limit,
``Transport.intake`` and the bus, the ordered-PUBACK logic (a PUBACK only once every earlier QoS 1
message is settled) and the ``max_in_flight`` flow control. The PUBACKs are recorded instead of sent.
The broker-side guarantees (redelivery to a persistent session, Receive Maximum) are proven by the
integration tests against Mosquitto.

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
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pywats_events import TransportState

from .transport import MQTTTransport

__all__ = ["MQTTTestBroker"]


class _Granted:
    """A SUBACK reason code that grants the subscription."""

    is_failure = False

    def __str__(self) -> str:
        return "Granted QoS 1"


class _Connection:
    """Stands in for ``MQTTConnection``: records PUBACKs, flow control and publishes; hands PUBLISH packets
    to the transport through the ``on_message`` callback the transport gave it, like the real one."""

    def __init__(self, broker: MQTTTestBroker, on_message: Callable[[paho.MQTTMessage], None],
                 on_lost: Callable[[str], None]) -> None:
        self._broker = broker
        self.on_message = on_message
        self.on_lost = on_lost
        self.connected = False
        self.paused = False

    async def connect(self, limit: float) -> bool:
        self.connected = True
        return False

    async def subscribe(self, subscriptions: list[tuple[str, int]], limit: float, *, identifiers: bool = False
                        ) -> list[_Granted]:
        self._broker.subscriptions = [t for t, _ in subscriptions]
        return [_Granted() for _ in subscriptions]

    async def unsubscribe(self, filters: list[str], limit: float) -> None:
        self._broker.unsubscribed.extend(filters)

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
        transport: the transport to drive; its own ``start`` and ``stop`` run (connect, subscribe, birth
            message; drain within ``drain_timeout``, status ``offline``, disconnect) against this double,
            set as the transport's ``connection_factory``.

    Attributes:
        pubacks: packet ids acknowledged (PUBACK), in the order the transport sent them.
        published: ``(topic, payload, qos, retain)`` of what the transport published (``send``, status).
        subscriptions: the topic filters of the transport's last SUBSCRIBE.
        unsubscribed: topic filters the transport unsubscribed from (``reload``), in order.
    """

    def __init__(self, transport: MQTTTransport) -> None:
        self.transport = transport
        self.pubacks: list[int] = []
        self.published: list[tuple[str, Any, int, bool]] = []
        self.subscriptions: list[str] = []
        self.unsubscribed: list[str] = []
        self._conn: _Connection | None = None
        self._next_mid = 0
        self._changed = asyncio.Event()
        transport.connection_factory = self._connect  # type: ignore[assignment]

    def _connect(self, *, on_message: Callable[[paho.MQTTMessage], None], on_lost: Callable[[str], None],
                 **_settings: Any) -> _Connection:
        self._conn = _Connection(self, on_message, on_lost)
        return self._conn

    @property
    def reading_paused(self) -> bool:
        """True while the transport has stopped reading (``max_in_flight`` / ``max_inflight_bytes`` reached)."""
        return self._conn is not None and self._conn.paused

    def drop_connection(self, reason: str = "connection lost (MQTTTestBroker)") -> None:
        """Lose the connection as a broker restart would: PUBACKs of messages received before it are not
        sent on the next connection (the broker redelivers those); the transport reconnects."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the transport is not started on this MQTTTestBroker; start the bus first")
        conn.connected = False
        conn.on_lost(reason)

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
            RuntimeError: the transport is not connected to this double (start the bus first).
        """
        conn = self._conn
        if conn is None or not conn.connected or self.transport.state is not TransportState.CONNECTED:
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
        conn.on_message(message)
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
