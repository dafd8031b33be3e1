"""One MQTT client connection driven by the asyncio event loop: paho-mqtt's protocol engine, our socket I/O.

Why paho-mqtt and not aiomqtt underneath: at-least-once needs the PUBACK of a QoS 1 message to wait until
the bus has settled it. paho-mqtt 2.x offers exactly that (``Client(manual_ack=True)`` and
``Client.ack(mid, qos)``). aiomqtt 2.5 builds its paho client without ``manual_ack`` and exposes no way to
set it, so paho sends the PUBACK as soon as the PUBLISH is parsed, before the application has even taken
the message from aiomqtt's queue; and when aiomqtt's bounded incoming queue is full it discards the message
after that PUBACK ("Message queue is full. Discarding message."). Either way a crash loses messages.

Why the event loop drives the socket (``add_reader``/``add_writer`` plus paho's ``loop_read``,
``loop_write``, ``loop_misc``) instead of paho's own network thread (``loop_start``): every message and every
acknowledgement would otherwise cross threads (``call_soon_threadsafe`` wakes the loop through its self-pipe
for each message, and each ``ack`` wakes paho's thread through its socket pair), the two threads contend for
the GIL on a two-core line PC, and pausing intake for backpressure would need locking. Driven from the loop,
paho's callbacks run on the loop thread, reading can be paused by removing the reader (unread bytes stay in
the kernel, TCP flow control pushes back to the broker), and acknowledgements written in one loop iteration
go out together. Only the blocking ``connect`` (DNS, TCP and TLS handshakes) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from .errors import MQTTConnectError, MQTTError, MQTTPublishError, MQTTSubscribeError

__all__ = ["MQTTConnection"]

log = logging.getLogger(__name__)

#: CONNACK reason codes after which retrying cannot help until a setting changes (MQTT 5 section 3.2.2.2;
#: paho maps the MQTT 3.1.1 return codes 2, 4 and 5 onto 133, 134 and 135).
PERMANENT_CONNACK_CODES = frozenset({0x84, 0x85, 0x86, 0x87, 0x8C})

#: Most packets handled per readable event before yielding to other tasks (fairness).
READ_BATCH = 64

MessageCallback = Callable[[paho.MQTTMessage], None]
LostCallback = Callable[[str], None]


class MQTTConnection:
    """A paho-mqtt client whose socket is served by the running asyncio loop.

    Args:
        host: broker host. port: broker TCP port.
        client_id: MQTT client identifier.
        protocol: ``"5"`` or ``"3.1.1"``.
        persistent_session: resume the broker-side session (``clean_start``/``clean_session`` = 0).
        session_expiry: seconds the broker keeps the session after a disconnect (MQTT 5).
        receive_maximum: MQTT 5 Receive Maximum: QoS 1 messages the broker may have unacknowledged at us.
        keepalive: seconds between keepalive pings.
        connect_timeout: seconds paho's blocking TCP/TLS connect may take.
        username / password: credentials (the password is only handed to paho).
        ssl_context: TLS context, or ``None`` for plain TCP.
        will: ``(topic, payload)`` of the last-will message (QoS 1, retained), or ``None``.
        on_message: called on the loop thread for every PUBLISH received (QoS 1 ones must be ``ack``-ed).
        on_lost: called on the loop thread with a reason when an established connection drops.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        protocol: str,
        persistent_session: bool,
        session_expiry: int,
        receive_maximum: int,
        keepalive: int,
        connect_timeout: float,
        username: str | None,
        password: str | None,
        ssl_context: ssl.SSLContext | None,
        will: tuple[str, str] | None,
        on_message: MessageCallback,
        on_lost: LostCallback,
    ) -> None:
        self.host = host
        self.port = port
        self.v5 = protocol == "5"
        self._persistent = persistent_session
        self._keepalive = keepalive
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._on_message_cb = on_message
        self._on_lost = on_lost
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else not persistent_session,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        self._client = client
        client.connect_timeout = connect_timeout
        self._connect_props: Properties | None = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = session_expiry if persistent_session else 0
            props.ReceiveMaximum = receive_maximum
            self._connect_props = props
        if username is not None:
            client.username_pw_set(username, password)
        if ssl_context is not None:
            client.tls_set_context(ssl_context)
            if not ssl_context.check_hostname:
                client.tls_insecure_set(True)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_subscribe  # same shape: mid and reason codes (UNSUBACK)
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write

        self.connected = False
        self.session_present = False
        self._closing = False
        self._connack: asyncio.Future[bool] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._pending_subs: dict[int, asyncio.Future[list[ReasonCode]]] = {}
        self._pending_pubs: dict[int, asyncio.Future[None]] = {}
        self._sock: Any = None
        self._fd = -1
        self._reading = False
        self._writing = False
        self._flush_scheduled = False
        self._paused = False
        self._misc_task: asyncio.Task[None] | None = None
        self._blocking: asyncio.Future[None] | None = None
        self._received = 0

    # -- thread bridging ---------------------------------------------------------------------
    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # paho calls the socket callbacks from the worker thread running connect(); asyncio's
        # add_reader/add_writer are only safe on the loop thread.
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    # -- socket events -----------------------------------------------------------------------
    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho leaves Nagle's algorithm on: each 4-byte PUBACK then waits for the broker's delayed TCP
        # ACK of the previous one (up to 40 ms on Linux), which caps intake at a few thousand messages
        # per second. Our writes are already coalesced per loop iteration (``_schedule_flush``).
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._in_loop(self._attach, sock, sock.fileno())

    def _attach(self, sock: Any, fd: int) -> None:
        if self._client.socket() is not sock:
            return  # already replaced or closed again before the loop got here
        self._sock, self._fd = sock, fd
        if not self._paused:
            self._loop.add_reader(fd, self._on_readable)
            self._reading = True

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._detach, sock)

    def _detach(self, sock: Any = None) -> None:
        if sock is not None and sock is not self._sock:
            return
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._sock, self._fd = None, -1

    def _on_socket_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._schedule_flush)

    def _on_socket_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._stop_writing, sock)

    def _stop_writing(self, sock: Any) -> None:
        if self._writing and sock is self._sock:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _schedule_flush(self) -> None:
        # Coalesce: all packets queued during this loop iteration (typically many PUBACKs) are written by
        # one loop_write call instead of registering a writer per packet.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._client.socket() is None or self._sock is None:
            return
        self._client.loop_write()
        if self._client.want_write() and not self._writing and self._sock is not None:
            # The kernel buffer is full: wait until the socket is writable.
            self._loop.add_writer(self._fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        self._client.loop_write()

    def _on_readable(self) -> None:
        client = self._client
        for _ in range(READ_BATCH):
            before = self._received
            if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return  # paho closed the socket and reported the disconnect
            if self._paused or self._sock is None:
                return
            if self._received == before:
                # Not a PUBLISH or nothing more to read; TLS may still hold decrypted bytes the kernel
                # will not announce again (paho issue 131).
                pending = getattr(self._sock, "pending", None)
                if pending is None or pending() <= 0:
                    return

    async def _misc_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return

    # -- flow control ------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        """True while reading is paused (``pause_reading``)."""
        return self._paused

    def pause_reading(self) -> None:
        """Stop reading from the socket (bytes wait in the kernel; TCP pushes back on the broker)."""
        self._paused = True
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        """Read again after ``pause_reading``."""
        self._paused = False
        if self._sock is not None and not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True
            # Bytes already decrypted by TLS will not make the socket readable again: read them now.
            self._loop.call_soon(self._on_readable_if_open)

    def _on_readable_if_open(self) -> None:
        if self._sock is not None and not self._paused:
            self._on_readable()

    # -- protocol callbacks (loop thread) ----------------------------------------------------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        fut = self._connack
        if reason.is_failure:
            if fut is not None and not fut.done():
                fut.set_exception(
                    MQTTConnectError(
                        f"broker {self.host}:{self.port} refused the connection: {reason} "
                        f"(code {reason.value})",
                        permanent=reason.value in PERMANENT_CONNACK_CODES,
                    )
                )
            return
        self.connected = True
        self.session_present = bool(flags.session_present)
        self._misc_task = self._loop.create_task(self._misc_loop())
        if fut is not None and not fut.done():
            fut.set_result(self.session_present)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        was_connected = self.connected
        self.connected = False
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        detail = f"connection to {self.host}:{self.port} lost: {reason}"
        if self._connack is not None and not self._connack.done():
            self._connack.set_exception(MQTTConnectError(detail))
        for fut in self._pending_subs.values():
            if not fut.done():
                fut.set_exception(MQTTSubscribeError(detail))
        self._pending_subs.clear()
        # Pending publishes stay: paho keeps the messages and resends them after the reconnect.
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if was_connected and not self._closing:
            self._on_lost(detail)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._received += 1
        self._on_message_cb(message)

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        fut = self._pending_subs.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reasons)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        fut = self._pending_pubs.pop(mid, None)
        if fut is None or fut.done():
            return
        if reason.is_failure:
            fut.set_exception(MQTTPublishError(f"broker refused the publish: {reason} (code {reason.value})"))
        else:
            fut.set_result(None)

    # -- operations --------------------------------------------------------------------------
    def _connect_blocking(self) -> None:
        if self.v5:
            self._client.connect(
                self.host,
                self.port,
                self._keepalive,
                clean_start=not self._persistent,
                properties=self._connect_props,
            )
        else:
            self._client.connect(self.host, self.port, self._keepalive)

    async def connect(self, limit: float) -> bool:
        """Open the connection and wait for a successful CONNACK; returns the broker's session-present flag.

        Args:
            limit: seconds for the TCP/TLS connect plus the CONNACK.

        Raises:
            MQTTConnectError: unreachable broker, TLS failure, refusal (``permanent`` set for bad
                credentials and the like) or no CONNACK within ``timeout``.
        """
        self._closing = False
        self._detach()
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        self.connected = False
        await self._settle_blocking_connect()
        self._connack = self._loop.create_future()
        try:
            async with asyncio.timeout(limit):
                self._blocking = self._loop.run_in_executor(None, self._connect_blocking)
                try:
                    await asyncio.shield(self._blocking)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    raise MQTTConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
                return await self._connack
        except TimeoutError:
            raise MQTTConnectError(f"no CONNACK from {self.host}:{self.port} within {limit:g}s") from None
        finally:
            if not self._connack.done():
                self._connack.cancel()
            elif not self._connack.cancelled():
                self._connack.exception()  # retrieved either way: no "never retrieved" warnings

    async def _settle_blocking_connect(self) -> None:
        # A connect abandoned by a timeout still runs in its worker thread (bounded by paho's connect
        # timeout); a second one on the same paho client must not start until it is over.
        pending = self._blocking
        if pending is not None and not pending.done():
            with contextlib.suppress(Exception):
                await pending
        self._blocking = None

    async def subscribe(
        self, subscriptions: list[tuple[str, int]], limit: float, *, identifiers: bool = False
    ) -> list[ReasonCode]:
        """Subscribe to ``(filter, qos)`` pairs and return the SUBACK reason codes, in the same order.

        Args:
            subscriptions: ``(topic filter, qos)`` pairs.
            limit: seconds to wait for every SUBACK.
            identifiers: MQTT 5 only: send one SUBSCRIBE per filter with Subscription Identifier
                ``index + 1`` (MQTT 5 section 3.8.2.1.2), so that each received copy names the subscription
                it was sent for (``paho.MQTTMessage.properties.SubscriptionIdentifier``). Without it (and
                on MQTT 3.1.1) all filters go in one SUBSCRIBE.

        Raises:
            MQTTSubscribeError: not connected, connection lost, or no SUBACK within ``limit`` seconds.
        """
        # MQTT 5 "No Local": never receive our own publications (birth message, send()) back, so a bus
        # that publishes into a topic it also consumes cannot loop; not allowed on shared subscriptions
        # (MQTT 5 section 3.8.3.1). Retain Handling 1: retained messages only for a new subscription, so
        # subscribing again after a reconnect does not replay them.
        topics: list[tuple[str, Any]] = [
            (
                t,
                SubscribeOptions(
                    qos=q,
                    noLocal=not t.startswith("$share/"),
                    retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB,
                )
                if self.v5
                else q,
            )
            for t, q in subscriptions
        ]
        if not (identifiers and self.v5):
            return await self._subscribe_packet(topics, None, limit)
        packets = []
        for i, topic in enumerate(topics):
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = i + 1
            packets.append(self._subscribe_packet([topic], props, limit))
        results = await asyncio.gather(*packets)
        return [r for reasons in results for r in reasons]

    async def unsubscribe(self, filters: list[str], limit: float) -> None:
        """Unsubscribe from ``filters`` (as subscribed, ``$share/`` prefix included) and wait for the
        UNSUBACK (MQTT 5 section 3.10 / 3.1.1 section 3.10).

        Raises:
            MQTTSubscribeError: not connected, no UNSUBACK within ``limit`` seconds, or (MQTT 5) a failure
                reason code for one of the filters.
        """
        if not filters:
            return
        rc, mid = self._client.unsubscribe(filters)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MQTTSubscribeError(f"cannot unsubscribe: {paho.error_string(rc)}")
        fut: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._pending_subs[mid] = fut
        try:
            async with asyncio.timeout(limit):
                reasons = await fut
        except TimeoutError:
            raise MQTTSubscribeError(f"no UNSUBACK within {limit:g}s") from None
        finally:
            self._pending_subs.pop(mid, None)
        refused = [f"{f}: {r}" for f, r in zip(filters, reasons or [], strict=False) if r.is_failure]
        if refused:
            raise MQTTSubscribeError(f"broker refused to unsubscribe: {'; '.join(refused)}")

    async def _subscribe_packet(
        self, topics: list[tuple[str, Any]], properties: Properties | None, limit: float
    ) -> list[ReasonCode]:
        rc, mid = self._client.subscribe(topics, properties=properties)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MQTTSubscribeError(f"cannot subscribe: {paho.error_string(rc)}")
        fut: asyncio.Future[list[ReasonCode]] = self._loop.create_future()
        self._pending_subs[mid] = fut
        try:
            async with asyncio.timeout(limit):
                return await fut
        except TimeoutError:
            raise MQTTSubscribeError(f"no SUBACK within {limit:g}s") from None
        finally:
            self._pending_subs.pop(mid, None)

    async def publish(
        self, topic: str, payload: bytes | str, qos: int, retain: bool, properties: Properties | None = None
    ) -> None:
        """Publish one message; for QoS 1 and 2 wait for the broker's acknowledgement (cancel to give up;
        paho may still deliver it later, at least once).

        Raises:
            MQTTPublishError: paho refused the message (invalid topic, payload too large) or the broker
                answered with a failure reason code.
        """
        info = self._client.publish(topic, payload, qos, retain, properties)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MQTTPublishError(f"cannot publish to {topic!r}: {paho.error_string(info.rc)}")
        if qos == 0:
            return
        fut: asyncio.Future[None] = self._loop.create_future()
        self._pending_pubs[info.mid] = fut
        try:
            await fut
        finally:
            self._pending_pubs.pop(info.mid, None)

    def ack(self, mid: int, qos: int) -> None:
        """Send the PUBACK (QoS 1) for message ``mid`` received on the current connection."""
        self._client.ack(mid, qos)

    async def disconnect(self, limit: float = 2.0) -> None:
        """Send DISCONNECT (the broker then does not publish the will) and close the socket."""
        self._closing = True
        await self._settle_blocking_connect()
        if self._client.socket() is not None:
            self._closed = self._loop.create_future()
            self._client.disconnect()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await self._closed
        self._detach()
        sock = self._client.socket()
        if sock is not None:
            # DISCONNECT could not be written in time (dead peer): drop the socket without it.
            sock.close()
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        self.connected = False
        for fut in self._pending_pubs.values():
            if not fut.done():
                fut.set_exception(MQTTError("connection closed before the broker acknowledged the publish"))
