"""``CFXTransport``: IPC-CFX over AMQP 0-9-1 on RabbitMQ (aio-pika), at-least-once.

Consuming: one durable queue bound to the CFX exchange. Each message is decoded (``content-encoding: gzip``
or the gzip magic bytes are undone) into events that are submitted to the bus; the message is acknowledged
only after the bus has settled every event it produced (handled, or durably dead-lettered). Many messages
are in flight at once (bounded by ``prefetch``); acknowledgements are sent in batches with
``multiple=True``, but only up to the highest delivery tag below which every message is settled, so a
slow message never gets acknowledged by a fast one behind it.

What the transport does with a message that it cannot settle normally:

- bytes that cannot be decoded (bad JSON, not CFX, an unknown ``content-encoding``): stored whole in the
  bus's dead-letter queue (``IngestSink.dead_letter_raw``), then acked. If even that store write fails, the
  message is parked in the broker's dead-letter queue (``<queue>.dead-letter``) with the reason in its
  headers, then acked.
- handler failures: the bus retries and dead-letters them itself; the settlement then succeeds: acked.
- the settlement fails (the store is down): after ``requeue_delay`` seconds the message is put back in the
  queue with its own ``x-pywats-delivery-count`` header incremented and the original acked; at
  ``max_deliveries`` it is parked in the broker's dead-letter queue instead. Nothing loops forever.

Reconnection: when the connection or the consuming channel drops (broker restart, network), the state
goes RECONNECTING, the session's unsettled messages are left to the broker (it redelivers them, flagged
``redelivered``, and the bus's idempotency records skip handlers that already finished), and a new
connection, topology and consumer are set up with exponential backoff (tenacity) until it works; then
CONNECTED. This is a reconnect loop of our own rather than aio-pika's robust connection so that acks of
the old channel can never be sent on the new one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import ssl
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, Self, cast
from urllib.parse import urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq.abc import DeliveredMessage
from aiormq.connection import TransportFactory
from yarl import URL

from pywats_events import tracing
from pywats_events.codec import DecodeContext, Decoder
from pywats_events.errors import BusClosedError, DecodeError
from pywats_events.event import Event
from pywats_events.transport import (
    InboundMessage,
    RawRecord,
    SettleResult,
    Transport,
    TransportState,
    return_large_buffers,
    too_large_record,
)
from pywats_events.transports.reconnect import ConnectFailedError, Reconnector

from .config import CFXConfig
from .envelope import CFXEnvelope
from .errors import CFXPublishError, CFXTransportError, UnsupportedContentEncodingError
from .publisher import OutgoingMessage, envelope_message, event_message
from .settings import CFXSettings

__all__ = ["DELIVERY_COUNT_HEADER", "AMQPMessage", "AckChannel", "CFXConnectError", "CFXTransport", "PublishChannel"]

log = logging.getLogger(__name__)

#: Our own count of failed settlements of a message (RabbitMQ's ``x-death`` does not count republishes).
DELIVERY_COUNT_HEADER = "x-pywats-delivery-count"
_ORIG_EXCHANGE = "x-pywats-original-exchange"
_ORIG_ROUTING_KEY = "x-pywats-original-routing-key"
_GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
# Producers misuse content-encoding for the charset; these all mean "not compressed".
_IDENTITY_ENCODINGS = frozenset({"", "identity", "utf-8", "utf8", "binary", "7bit", "8bit"})


def _delivery(message: DeliveredMessage) -> aiormq.spec.Basic.Deliver:
    # Consumed messages always carry Basic.Deliver (GetOk/Return come only from basic_get/mandatory).
    return cast(aiormq.spec.Basic.Deliver, message.delivery)


def _json_value(value: Any) -> Any:
    """AMQP header values (bytes, Decimal, datetime, nested tables) -> JSON-ready values for event headers."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return str(value)


def _check_encoding(encoding: str, body: bytes, origin: str) -> None:
    """Refuse a ``content-encoding`` the decoders cannot undo (``UnsupportedContentEncodingError``)."""
    encoding = encoding.strip().lower()
    if encoding in _GZIP_ENCODINGS:
        if body[:2] != b"\x1f\x8b":
            raise UnsupportedContentEncodingError(
                "content-encoding is gzip but the body does not start with the gzip magic bytes", origin
            )
    elif encoding not in _IDENTITY_ENCODINGS:
        raise UnsupportedContentEncodingError(
            f"unsupported content-encoding {encoding!r} (supported: gzip, identity)", origin
        )


class CFXConnectError(CFXTransportError):
    """One failed attempt to connect to RabbitMQ, as the operator reads it: the broker's reason (never
    credentials) and what to check. ``permanent``: retrying alone cannot help (refused login, unknown or
    forbidden vhost); the state is ERROR while it keeps retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class AckChannel(Protocol):
    """What the transport sends settlement frames on: an aiormq channel, or a test double
    (``pywats_cfx.testing.CFXTestBroker``). AMQP 0-9-1 ``basic.ack`` / ``basic.nack`` / ``basic.cancel``."""

    async def basic_ack(self, delivery_tag: int, multiple: bool = False) -> Any:
        """Acknowledge ``delivery_tag`` (and every tag below it when ``multiple``)."""
        ...

    async def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> Any:
        """Reject ``delivery_tag``; ``requeue`` puts it back in the queue."""
        ...

    async def basic_cancel(self, consumer_tag: str, timeout: float | None = None) -> Any:
        """Stop the consumer ``consumer_tag``."""
        ...


class PublishChannel(Protocol):
    """What the transport republishes on (requeue with its delivery count, park on the dead-letter
    exchange): an aio-pika channel with publisher confirms, or a test double."""

    @property
    def default_exchange(self) -> Any:
        """The default exchange (routing key = queue name)."""
        ...

    async def get_exchange(self, name: str, *, ensure: bool = False) -> Any:
        """The exchange ``name`` (``publish(message, routing_key, timeout=...)``)."""
        ...


class _AckWindow:
    """The unacknowledged deliveries of one channel, in delivery order, and what becomes of each.

    ``resolve(tag, ack)`` records the outcome of one delivery (settlements finish in any order);
    ``take()`` returns the protocol operations that may be sent now:

    - ``("ack", tag)``, sent with ``multiple=True``, for the longest run of resolved deliveries at the
      front of the window: one frame acknowledges the whole run, and never a delivery behind an
      unresolved one;
    - ``("one", tag)``, a single acknowledgement, for resolved deliveries stuck behind an unresolved one,
      once ``blocked_limit`` of them have piled up (or on ``final``): a slow message must not hold the
      prefetch window of the fast ones behind it;
    - ``("nack", tag)`` for each delivery to put back in the queue.
    """

    __slots__ = ("_last", "_order", "_outcome", "acked", "blocked_limit", "ordered")

    def __init__(self, blocked_limit: int = 64) -> None:
        self._order: deque[int] = deque()
        self._outcome: dict[int, bool] = {}
        self._last = 0
        #: Deliveries acknowledged (frames taken) so far.
        self.acked = 0
        self.blocked_limit = max(1, blocked_limit)
        #: False if tags ever arrived out of order; then every ack covers only its own tag.
        self.ordered = True

    def __len__(self) -> int:
        return len(self._order)

    def add(self, tag: int) -> None:
        if tag <= self._last:
            self.ordered = False
        self._last = max(self._last, tag)
        self._order.append(tag)

    def resolve(self, tag: int, ack: bool) -> None:
        self._outcome[tag] = ack

    def forget(self, tag: int) -> None:
        """Drop ``tag`` without an outcome (it was never handed on; the broker redelivers it)."""
        with contextlib.suppress(ValueError):
            self._order.remove(tag)

    def take(self, *, final: bool = False) -> list[tuple[str, int]]:
        ops: list[tuple[str, int]] = []
        order, outcome = self._order, self._outcome
        last_ack: int | None = None
        while order and order[0] in outcome:
            tag = order.popleft()
            if outcome.pop(tag):
                self.acked += 1
                if self.ordered:
                    last_ack = tag
                else:
                    ops.append(("one", tag))
                continue
            if last_ack is not None:
                ops.append(("ack", last_ack))
                last_ack = None
            ops.append(("nack", tag))
        if last_ack is not None:
            ops.append(("ack", last_ack))
        if outcome and (final or len(outcome) >= self.blocked_limit):
            keep: deque[int] = deque()
            for tag in order:
                ack = outcome.pop(tag, None)
                if ack is None:
                    keep.append(tag)
                else:
                    self.acked += ack
                    ops.append(("one" if ack else "nack", tag))
            self._order = keep
        return ops


class _ReadGate:
    """The socket transport as asyncio's ``StreamReader`` sees it: while ``held`` (the byte budget is spent)
    the reader's own ``resume_reading`` (it pauses and resumes around its 128 KiB buffer all the time) does
    not resume the socket; ``release`` resumes it if the reader wants data."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.held = False
        self._wanted = True

    def pause_reading(self) -> None:
        self._wanted = False
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._wanted = True
        if not self.held:
            self._transport.resume_reading()

    def hold(self) -> None:
        self.held = True
        if not self._transport.is_closing() and self._transport.is_reading():
            self._transport.pause_reading()

    def release(self) -> None:
        self.held = False
        t = self._transport
        if self._wanted and not t.is_closing() and not t.is_reading():
            t.resume_reading()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _GatedStreamReader(asyncio.StreamReader):
    gate: _ReadGate | None = None

    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        self.gate = _ReadGate(cast(asyncio.Transport, transport))
        super().set_transport(cast(asyncio.BaseTransport, self.gate))


class _SocketFactory(TransportFactory):
    """Opens the broker connection as aiormq's TCP/TLS factories do (``asyncio.open_connection``, TLS for
    ``amqps``), through aiormq's ``TransportFactory`` extension point, with a stream reader whose socket
    the session can hold for the byte budget."""

    def __init__(self) -> None:
        self.gate: _ReadGate | None = None

    async def create(self, url: Any, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        provider = kwargs.pop("ssl_context_provider", None)
        ssl_ctx = await provider.get_context() if url.scheme == "amqps" and provider is not None else None
        loop = asyncio.get_running_loop()
        reader = _GatedStreamReader(limit=kwargs.pop("limit", 2**16), loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, url.host, url.port, ssl=ssl_ctx, **kwargs)
        except OSError as exc:
            raise aiormq.exceptions.AMQPConnectionError(*exc.args) from exc
        self.gate = reader.gate
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


class _Session:
    """One connection's consuming session: its channels, ack window, byte budget and tasks.

    Closed for good when the connection drops or the transport stops; callbacks of settlements that
    resolve afterwards find it closed and do nothing (the broker redelivers those messages).

    Byte budget: RabbitMQ ignores ``basic.qos`` ``prefetch_size`` and a client's ``channel.flow``, so
    ``prefetch`` bounds only the count of messages in flight, and deliveries the broker has committed to us
    arrive even after a ``basic.cancel``. Like the MQTT transport, the session therefore stops reading the
    socket while the bodies received but unsettled reach ``budget`` bytes (TCP flow control then holds the
    rest at the broker) and reads again once they are below half of it: the bytes in flight stay below the
    budget plus one message plus what was already read (asyncio reads up to 256 KiB per loop iteration).

    Batched settlement: ``resolve`` only records the outcome; the acker task sends the frames the window
    allows (one ``basic.ack multiple=True`` per contiguous settled run) once ``ack_batch`` settlements have
    piled up, or ``ack_flush`` seconds after the first of them, whichever comes first.
    """

    def __init__(
        self,
        conn: AbstractConnection | None,
        channel: AbstractChannel | None,
        raw: AckChannel,
        publish: PublishChannel,
        prefetch: int,
        gate: _ReadGate | None = None,
        budget: int = 1 << 62,
        ack_batch: int = 128,
        ack_flush: float = 0.005,
    ) -> None:
        self.conn = conn
        self.channel = channel
        self.raw = raw
        self.publish = publish
        self.window = _AckWindow(blocked_limit=prefetch // 4)
        self.inbox: asyncio.Queue[DeliveredMessage] = asyncio.Queue()
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.closed = False
        self.consumer_tag: str | None = None
        self.intake: asyncio.Task[None] | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.exchanges: dict[str, Any] = {}
        self.gate = gate
        self.budget = budget
        #: Body bytes of the messages delivered and not yet resolved, and each one's size by delivery tag.
        self.inflight_bytes = 0
        self.peak_inflight_bytes = 0
        self._sizes: dict[int, int] = {}
        self.paused = False
        self.pauses = 0
        self.ack_batch = max(1, ack_batch)
        self.ack_flush = max(0.0, ack_flush)
        #: Settlements recorded since the last frames were sent, and the acker's wait for a full batch.
        self._resolved = 0
        self._full: asyncio.Future[None] | None = None
        #: Frames sent: ``basic.ack multiple=True``, single acks, nacks (for ``describe`` and benchmarks).
        self.frames = {"ack_multiple": 0, "ack_single": 0, "nack": 0}
        #: Set each time frames were sent (``CFXTransport.wait_acked``).
        self.sent = asyncio.Event()

    def on_deliver(self, message: DeliveredMessage) -> None:
        # Called in delivery order (aiormq's consumer callback); queue at once so order is kept.
        size = len(message.body)
        self._sizes[int(_delivery(message).delivery_tag or 0)] = size
        self.inflight_bytes += size
        if self.inflight_bytes > self.peak_inflight_bytes:
            self.peak_inflight_bytes = self.inflight_bytes
        if self.inflight_bytes >= self.budget:
            self._pause()
        self.inbox.put_nowait(message)

    async def on_deliver_async(self, message: DeliveredMessage) -> None:
        self.on_deliver(message)

    def _pause(self) -> None:
        if self.paused or self.gate is None:
            return
        self.paused = True
        self.pauses += 1
        log.info("cfx: %d body bytes in flight (budget %d); reading paused", self.inflight_bytes, self.budget)
        self.gate.hold()

    def _resume(self) -> None:
        self.paused = False
        if self.gate is not None:
            self.gate.release()

    def resolve(self, tag: int, ack: bool) -> None:
        if self.closed:
            return
        self.inflight_bytes -= self._sizes.pop(tag, 0)
        if self.paused and self.inflight_bytes < self.budget // 2:
            self._resume()
        self.window.resolve(tag, ack)
        self._resolved += 1
        if not ack or self._resolved >= self.ack_batch:
            # A full batch (or a nack, which must not wait) goes out at once.
            full = self._full
            if full is not None and not full.done():
                full.set_result(None)
        self.wake.set()

    async def send(self, ops: list[tuple[str, int]]) -> None:
        raw, frames = self.raw, self.frames
        for op, tag in ops:
            if op == "ack":
                frames["ack_multiple"] += 1
                await raw.basic_ack(tag, multiple=True)
            elif op == "one":
                frames["ack_single"] += 1
                await raw.basic_ack(tag, multiple=False)
            else:
                frames["nack"] += 1
                await raw.basic_nack(tag, multiple=False, requeue=True)
        if ops:
            self.sent.set()

    async def run_acker(self) -> None:
        window = self.window
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            if self._resolved < self.ack_batch and self.ack_flush > 0:
                # Let the settlements of the next moment join this frame: one ack per batch instead of one
                # per message costs the broker and us far less, and delays nothing that matters.
                full = self._full = loop.create_future()
                timer = loop.call_later(self.ack_flush, _set_done, full)
                try:
                    await full
                finally:
                    timer.cancel()
                    self._full = None
            self.wake.clear()
            self._resolved = 0
            await self.send(window.take())
            if not window:
                self.idle.set()


def _deliver_inline(raw: Any, session: _Session) -> bool:
    """Hand this channel's deliveries to ``session.on_deliver`` in aiormq's frame reader itself.

    aiormq (7.x) starts a task per delivery to run the consumer callback; ours only queues the message,
    so that task (creation, a loop turn, its done callback: about a tenth of the client's CPU per message)
    buys nothing. This replaces the channel's ``_on_deliver_frame`` with the same steps (content header,
    body frames, consumer-tag check: deliveries for a cancelled consumer are dropped, as aiormq drops them)
    ending in a plain call, in delivery order. Returns False, changing nothing, when this aiormq lacks the
    members it relies on; the regular callback path then runs.
    """
    read_header = getattr(raw, "_Channel__get_content_header", None)
    read_content = getattr(raw, "_read_content", None)
    consumers = getattr(raw, "consumers", None)
    if read_header is None or read_content is None or not isinstance(consumers, dict):
        return False
    on_deliver = session.on_deliver

    async def on_deliver_frame(frame: Any) -> None:
        message = await read_content(frame, await read_header())
        if frame.consumer_tag is not None and frame.consumer_tag in consumers:
            on_deliver(message)

    raw._on_deliver_frame = on_deliver_frame
    return True


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AMQPMessage(InboundMessage):
    """One ``basic.deliver`` as ``Transport.intake`` sees it: the body, ``amqp://host/queue#routing.key``
    as origin, the AMQP properties and headers in ``headers`` (see ``CFXTransport``), the broker's
    redelivered flag (or our ``x-pywats-delivery-count`` header).

    Settling: ``ack`` records the delivery as settled in the channel's acknowledgement window (the acker
    sends ``basic.ack multiple=True`` for the contiguous settled run, see ``ack_batch_size`` /
    ``ack_flush_ms``). ``settle_failed`` (the store could not record the outcome) puts the message back in
    the queue after ``requeue_delay`` seconds with ``x-pywats-delivery-count`` incremented, parks it on the
    dead-letter exchange at ``max_deliveries``, and parks undecodable input at once (it is never requeued).

    Attributes:
        tag: the delivery tag (AMQP 0-9-1, per channel). delivered: the aiormq message.
    """

    __slots__ = ("delivered", "raw_record", "session", "tag", "transport")

    def __init__(
        self, transport: CFXTransport, session: _Session, tag: int, delivered: DeliveredMessage, **kw: Any
    ) -> None:
        super().__init__(delivered.body, **kw)
        self.transport = transport
        self.session = session
        self.tag = tag
        self.delivered = delivered
        #: The dead-letter record, when the body could not be decoded.
        self.raw_record: RawRecord | None = None

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        """Remember that this delivery is undecodable (a failure to store it parks it, never requeues)."""
        self.raw_record = record
        return record

    def ack_nowait(self, result: SettleResult) -> bool:
        """Record the delivery as settled in the window; the acker sends the frame. Always True."""
        self.transport.stats["settled" if self.raw_record is None else "raw_dead_lettered"] += 1
        self.session.resolve(self.tag, True)
        return True

    async def ack(self, result: SettleResult) -> None:
        """Same as ``ack_nowait``."""
        self.ack_nowait(result)

    async def settle_failed(self, exc: BaseException) -> None:
        """Requeue with the delivery count (park at ``max_deliveries``); park undecodable input at once."""
        t, session, record = self.transport, self.session, self.raw_record
        if record is None:
            await t._settlement_failed(session, self.tag, self.delivered, exc)
            return
        log.error(
            "transport %s: cannot store undecodable message from %s (%s); parking it in %s",
            t.name, self.origin, t._describe_error(exc), t.settings.dlq_name,
        )
        try:
            await t._park(session, self.delivered, record.reason, record.error_type)
        except Exception:
            session.resolve(self.tag, False)
            return
        t.stats["raw_dead_lettered"] += 1
        session.resolve(self.tag, True)


class CFXTransport(Transport):
    """Consume and publish IPC-CFX on RabbitMQ (AMQP 0-9-1), with at-least-once delivery into the bus.

    Args:
        name: transport name within the bus (default ``cfx``).
        settings: a ``CFXSettings``; or give its fields as keyword arguments instead.
        **options: ``CFXSettings`` fields (``url``, ``exchange``, ``queue``, ``binding_keys``, ``prefetch``,
            ``handle``...), when ``settings`` is not given.

    Raises:
        pydantic.ValidationError: invalid keyword options (``from_config`` raises ``ConfigError``).
        KeyError: the ``decoder`` setting names no registered decoder.

    Event headers set on every event (``Event.headers``): ``transport``, ``amqp.exchange``,
    ``amqp.routing_key``, ``amqp.redelivered``, and when present ``amqp.message_id``,
    ``amqp.content_type``, ``amqp.content_encoding``, ``amqp.timestamp`` (ISO 8601), ``amqp.app_id``,
    ``amqp.correlation_id``, ``amqp.type``; plus every AMQP header under its own name (``cfx-topic``,
    ``cfx-message``, ``cfx-handle``...; binary values as UTF-8 text, or ``base64:...``).
    """

    kind = "cfx"
    settings_model = CFXSettings

    def __init__(
        self, name: str | CFXConfig = "cfx", settings: CFXSettings | None = None, **options: Any
    ) -> None:
        if isinstance(name, CFXConfig):  # the pyWATS document's ``CFXTransport(config)``
            if settings is not None or options:
                raise TypeError("CFXTransport(config): give the CFXConfig alone")
            settings = name.to_settings()
            name = "cfx"
        super().__init__(name)
        self.settings = settings if settings is not None else CFXSettings(**options)
        self._checked: dict[str, Decoder] = {}
        self.decoder(self.settings.decoder)  # KeyError now for an unknown decoder, not at the first message
        self._session: _Session | None = None
        self._last_session: _Session | None = None
        self._stopping = False
        self._connected = asyncio.Event()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._reconnector = Reconnector(
            self,
            self.settings.reconnect,
            where=self.settings.where(),
            permanent=lambda exc: isinstance(exc, CFXConnectError) and exc.permanent,
        )
        host = urlsplit(self.settings.url.get_secret_value()).hostname or "broker"
        self._origin_prefix = f"amqp://{host}/{self.settings.queue}#"
        #: Counters for tests and the admin API: messages acked, nacked, dead-lettered raw, parked, sessions.
        self.stats: dict[str, int] = {
            "received": 0,
            "settled": 0,
            "raw_dead_lettered": 0,
            "parked": 0,
            "requeued": 0,
            "sessions": 0,
            "too_large": 0,
        }

    @property
    def inflight_bytes(self) -> tuple[int, int, int]:
        """``(now, peak, pauses)`` of the current (or last) session: body bytes received and not settled,
        the most at once, and how often the consumer was paused for the ``max_inflight_bytes`` budget."""
        s = self._last_session
        return (0, 0, 0) if s is None else (s.inflight_bytes, s.peak_inflight_bytes, s.pauses)

    @property
    def ack_frames(self) -> dict[str, int]:
        """Settlement frames sent in the current (or last) session: ``ack_multiple`` (``basic.ack`` with
        ``multiple=True``), ``ack_single``, ``nack`` (counts), and ``acked``: deliveries they acknowledged."""
        s = self._last_session
        if s is None:
            return {"ack_multiple": 0, "ack_single": 0, "nack": 0, "acked": 0}
        return {**s.frames, "acked": s.window.acked}

    async def wait_acked(self, count: int, timeout: float | None = None) -> None:
        """Wait until ``count`` deliveries of the current session are acknowledged to the broker (the
        frames sent, not only settled): the finish line of benchmarks and tests.

        Raises:
            TimeoutError: not so many within ``timeout`` seconds (``None``: no bound).
        """
        async with asyncio.timeout(timeout):
            while True:
                session = self._last_session
                if session is None:
                    await asyncio.sleep(0.01)
                    continue
                if session.window.acked >= count:
                    return
                session.sent.clear()
                await session.sent.wait()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[transports]]`` table's options (``kind = "cfx"``).

        Raises:
            ConfigError: an unknown or invalid option (the message names the key) or an unknown decoder.
        """
        from pywats_events.errors import ConfigError

        settings = CFXSettings.from_options(options)
        try:
            return cls(name, settings)
        except KeyError as exc:
            raise ConfigError(f"cfx transport option 'decoder': {exc.args[0]}") from None

    def __repr__(self) -> str:
        s = self.settings
        return f"CFXTransport(name={self.name!r}, url={s.redacted_url!r}, queue={s.queue!r})"

    def describe(self) -> dict[str, Any]:
        """State summary for readiness and the admin API (URL without password)."""
        out = super().describe()
        out.update(self.settings.describe())
        out["stats"] = dict(self.stats)
        out["ack_frames"] = self.ack_frames
        session = self._session
        if session is not None:
            out["inflight_bytes"] = session.inflight_bytes
            out["reading_paused"] = session.paused
        return out

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, declare the topology and start consuming.

        If the broker cannot be reached, the state goes RECONNECTING (ERROR for a refused login or vhost)
        and connecting goes on in the background with backoff (the shared ``Reconnector``); this returns
        after the first attempt then.

        Raises:
            ConfigError: unreadable TLS files.
        """
        self._stopping = False
        self.settings.ssl_context()  # fail fast on unreadable TLS files (ConfigError)
        return_large_buffers()  # large bodies must not keep the process's memory up after they are freed
        tried = asyncio.Event()
        self._schedule_connect(first=True, tried=tried)
        await tried.wait()
        await asyncio.sleep(0)  # let the reconnector report the first failure before returning

    def attach(self, channel: AckChannel, publisher: PublishChannel, *, detail: str = "attached") -> None:
        """Consume from ``channel`` instead of a broker connection: what ``start`` does once connected,
        for a test double (``pywats_cfx.testing.CFXTestBroker``) that records the frames. Deliveries are
        then handed in with ``receive``; ``stop`` is the usual one (drain, final acks).

        Args:
            channel: receives ``basic_ack`` / ``basic_nack`` frames. publisher: receives republishes.
            detail: shown with the CONNECTED state.
        """
        s = self.settings
        self._stopping = False
        session = _Session(
            None, None, channel, publisher, s.max_in_flight,
            ack_batch=s.ack_batch_size, ack_flush=s.ack_flush_ms / 1000,
        )
        self._begin(session)
        self._set_state(TransportState.CONNECTED, detail)

    def receive(self, message: DeliveredMessage) -> None:
        """Take one ``basic.deliver`` (with its content header and body) from the consuming channel; it
        is decoded, submitted and settled in delivery order.

        Raises:
            RuntimeError: no consuming session (not started, or the connection is lost).
        """
        session = self._session
        if session is None or session.closed:
            raise RuntimeError(f"transport {self.name!r} has no consuming session ({self.state.value})")
        session.on_deliver(message)

    async def stop(self) -> None:
        """Stop consuming, wait up to ``drain_timeout`` seconds for in-flight messages to settle and be
        acked, then close. Messages not settled by then are redelivered by the broker."""
        self._stopping = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
            self._reconnect_task = None
        session = self._session
        if session is not None:
            await self._drain(session)
            await self._close_session(session, graceful=True)
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._set_state(TransportState.DISCONNECTED)

    async def _drain(self, session: _Session) -> None:
        if session.closed:
            return
        with contextlib.suppress(Exception):
            if session.consumer_tag is not None:
                await session.raw.basic_cancel(session.consumer_tag, timeout=2)
        # Messages still waiting in the inbox were never submitted: the broker redelivers them on close.
        if session.intake is not None:
            session.intake.cancel()
        try:
            await asyncio.wait_for(session.idle.wait(), self.settings.drain_timeout)
        except TimeoutError:
            log.warning(
                "transport %s: %d message(s) not settled within %.1fs; the broker will redeliver them",
                self.name,
                len(session.window),
                self.settings.drain_timeout,
            )

    async def _close_session(self, session: _Session, *, graceful: bool = False) -> None:
        session.closed = True
        if self._session is session:
            self._session = None
            self._connected.clear()
        for task in session.tasks:
            task.cancel()
        await asyncio.gather(*session.tasks, return_exceptions=True)
        if graceful:
            # Acks the acker had not sent yet: send them before closing, or those messages come back.
            with contextlib.suppress(Exception):
                await session.send(session.window.take(final=True))
        if session.conn is not None:
            with contextlib.suppress(Exception):
                await session.conn.close()

    # -- connecting --------------------------------------------------------------------------
    def _connect_url(self) -> str:
        url = self.settings.connection_url()
        if "heartbeat=" not in url:
            url += ("&" if "?" in url else "?") + f"heartbeat={self.settings.heartbeat}"
        return url

    def _begin(self, session: _Session) -> None:
        session.intake = asyncio.create_task(self._consume(session), name=f"cfx-intake-{self.name}")
        session.tasks.append(session.intake)
        session.tasks.append(asyncio.create_task(session.run_acker(), name=f"cfx-acker-{self.name}"))
        self._session = session
        self.stats["sessions"] += 1
        self._last_session = session
        self._connected.set()

    async def _open_session(self) -> None:
        s = self.settings
        # aio_pika.connect() would put a transport factory into the URL's query: build the connection as
        # it does and hand aiormq the factory that keeps the socket (for the byte budget's read pause).
        sockets = _SocketFactory()
        conn = aio_pika.Connection(
            URL(self._connect_url()),
            ssl_context=s.ssl_context(),
            client_properties={"connection_name": f"pywats-events/{self.name}"},
        )
        conn.kwargs["transport_factory"] = sockets
        await conn.connect(timeout=s.connect_timeout)
        session: _Session | None = None
        try:
            channel = await conn.channel(publisher_confirms=False)
            await channel.set_qos(prefetch_count=s.max_in_flight)
            await self._declare(channel)
            publish = await conn.channel(publisher_confirms=True)
            raw = await channel.get_underlay_channel()
            session = _Session(
                conn, channel, cast(AckChannel, raw), cast(PublishChannel, publish), s.max_in_flight, sockets.gate,
                s.max_inflight_bytes,
                ack_batch=s.ack_batch_size, ack_flush=s.ack_flush_ms / 1000,
            )
            conn.close_callbacks.add(functools.partial(self._on_lost, session))
            channel.close_callbacks.add(functools.partial(self._on_lost, session))
            # The broker cancels the consumer when the queue is deleted (or a quorum queue loses its
            # leader): start over with a fresh session, which declares the queue and consumes again.
            raw.on_consumer_cancel_callbacks.add(
                lambda frame: self._on_lost(session, None, CFXTransportError("the broker cancelled the consumer"))
            )
            # Deliveries that arrive before the tasks below exist wait in the session's inbox.
            _deliver_inline(raw, session)
            ok = await raw.basic_consume(s.queue, session.on_deliver_async, no_ack=False)
            session.consumer_tag = ok.consumer_tag
        except BaseException:
            if session is not None:
                session.closed = True
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        self._begin(session)

    async def _declare(self, channel: AbstractChannel) -> None:
        s = self.settings
        queue_args: dict[str, Any] = {"x-queue-type": s.queue_type}
        if s.declare_exchange:
            await channel.declare_exchange(s.exchange, aio_pika.ExchangeType(s.exchange_type), durable=True)
        dlx = await channel.declare_exchange(s.dlx_name, aio_pika.ExchangeType.FANOUT, durable=True)
        dlq = await channel.declare_queue(s.dlq_name, durable=True, arguments=queue_args)
        await dlq.bind(dlx, "")
        queue = await channel.declare_queue(
            s.queue, durable=True, arguments={**queue_args, "x-dead-letter-exchange": s.dlx_name}
        )
        for key in s.binding_keys:
            await queue.bind(s.exchange, key)

    async def declare_topology(self) -> None:
        """Declare the exchange, queue, bindings and dead-letter exchange and queue, then disconnect.

        ``start`` does this too; call it before publishers start when messages must not be dropped for want
        of a bound queue (deploy scripts, tests). Idempotent.

        Raises:
            CFXTransportError: the broker cannot be reached or refuses a declaration (e.g. the queue exists
                with other arguments; the message gives the broker's reason).
        """
        s = self.settings
        try:
            conn = await aio_pika.connect(self._connect_url(), ssl_context=s.ssl_context(), timeout=s.connect_timeout)
            async with conn:
                await self._declare(await conn.channel())
        except (aiormq.exceptions.AMQPError, ConnectionError, OSError, TimeoutError) as exc:
            raise CFXTransportError(f"cannot declare the CFX topology: {self._describe_error(exc)}") from exc

    def _on_lost(self, session: _Session, _sender: Any, exc: BaseException | None = None) -> None:
        if session.closed or self._stopping:
            return
        detail = self._describe_error(exc) if exc is not None else "connection closed"
        log.warning("transport %s: lost the broker session (%s); reconnecting", self.name, detail)
        session.closed = True
        if self._session is session:
            self._session = None
            self._connected.clear()
        task = asyncio.ensure_future(self._close_session(session))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        self.last_error = detail
        self._schedule_connect(first=False)

    def _schedule_connect(self, *, first: bool, tried: asyncio.Event | None = None) -> None:
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._connect(first, tried), name=f"cfx-connect-{self.name}")
        elif tried is not None:
            tried.set()

    async def _connect(self, first: bool, tried: asyncio.Event | None) -> None:
        async def attempt() -> None:
            try:
                await self._open_session()
            except Exception as exc:
                error = self._connect_error(exc)
                self.last_error = str(error)
                raise error from exc
            finally:
                if tried is not None:
                    tried.set()

        try:
            await self._reconnector.connect(attempt, first=first)
        except ConnectFailedError as exc:
            log.error("%s", exc)

    def _connect_error(self, exc: BaseException) -> CFXConnectError:
        """The failed attempt as the operator reads it: the broker's reason without credentials and what to
        check (refused login, unknown vhost, unreachable host:port, TLS); ``permanent`` when retrying cannot
        help until someone changes a setting (refused login, unknown or forbidden vhost: state ERROR)."""
        detail = self._describe_error(exc)
        s = self.settings
        host = urlsplit(s.url.get_secret_value())
        address = f"{host.hostname}:{host.port or (5671 if s.uses_tls else 5672)}"
        permanent = False
        if isinstance(exc, aiormq.exceptions.ProbableAuthenticationError):
            permanent = True
            check = "the broker refused the login: check the user name and password (password / password_env)"
        elif isinstance(exc, aiormq.exceptions.ConnectionNotAllowed) or (
            isinstance(exc, aiormq.exceptions.InvalidFrameError) and "Connection.Close" in str(exc)
        ):
            # RabbitMQ answers Connection.Open for a vhost that does not exist, or that the user may not use,
            # with Connection.Close (NOT_ALLOWED); aiormq reports that as an unexpected frame.
            permanent = True
            check = (
                "the broker closed the connection when opening the vhost: check that it exists and that the "
                "user has access (rabbitmqctl list_permissions -p <vhost>)"
            )
        elif isinstance(exc, (ssl.SSLError, aiormq.exceptions.AMQPConnectionError)) and "SSL" in detail.upper():
            check = "TLS failed: check the tls table (ca_file, cert_file/key_file, verify_hostname)"
        elif isinstance(exc, (ConnectionError, OSError, TimeoutError, aiormq.exceptions.AMQPConnectionError)):
            check = f"cannot reach {address}: check the host and port, that RabbitMQ runs, and firewalls"
        else:
            check = "see the error"
        what = "fix the setting; still retrying" if permanent else "retrying with backoff"
        return CFXConnectError(
            f"connecting to RabbitMQ failed ({what}): {detail.rstrip('.')}. {check[:1].upper() + check[1:]}",
            permanent=permanent,
        )

    @staticmethod
    def _describe_error(exc: BaseException) -> str:
        # aiormq messages can carry the URL; keep type and the broker's reason, never credentials.
        text = str(exc).split("amqp://")[0].split("amqps://")[0].strip() or repr(exc.args[:1])
        return f"{type(exc).__name__}: {text}"[:300]

    # -- consuming ---------------------------------------------------------------------------
    def decoder(self, name: str) -> Decoder:
        """The registered decoder ``name`` behind this transport's ``content-encoding`` check: ``gzip``
        bodies must start with the gzip magic bytes (the decoders undo gzip themselves, bounded against
        gzip bombs), identity names pass, anything else (``br``) is an ``UnsupportedContentEncodingError``
        (a ``DecodeError``: the body goes whole to the dead-letter queue). Any other exception of the
        decoder (a bug) becomes a ``DecodeError`` ``decoder failed: <type>: <text>`` too.

        Raises:
            KeyError: no decoder of that name.
        """
        found = self._checked.get(name)
        if found is None:
            inner = super().decoder(name)

            def decode(body: bytes, ctx: DecodeContext) -> list[Event]:
                encoding = ctx.headers.get("amqp.content_encoding") if ctx.headers else None
                if encoding is not None:
                    _check_encoding(str(encoding), body, ctx.origin or "")
                try:
                    return inner(body, ctx)
                except DecodeError:
                    raise
                except Exception as exc:
                    # A decoder bug must not stop the consumer: keep the bytes like any undecodable input.
                    log.exception("transport %s: decoder %r failed on %s", self.name, name, ctx.origin)
                    raise DecodeError(f"decoder failed: {type(exc).__name__}: {exc}", ctx.origin) from exc

            found = self._checked[name] = decode
        return found

    def _event_headers(self, message: DeliveredMessage) -> dict[str, Any]:
        d = _delivery(message)
        p = message.header.properties
        h: dict[str, Any] = {
            "transport": self.name,
            "amqp.exchange": d.exchange,
            "amqp.routing_key": d.routing_key,
            "amqp.redelivered": bool(d.redelivered),
        }
        if p.message_id:
            h["amqp.message_id"] = p.message_id
        if p.content_type:
            h["amqp.content_type"] = p.content_type
        if p.content_encoding:
            h["amqp.content_encoding"] = p.content_encoding
        if p.timestamp:
            h["amqp.timestamp"] = _json_value(p.timestamp)
        if p.app_id:
            h["amqp.app_id"] = p.app_id
        if p.correlation_id:
            h["amqp.correlation_id"] = p.correlation_id
        if p.message_type:
            h["amqp.type"] = p.message_type
        if p.headers:
            for key, value in p.headers.items():
                h[key] = _json_value(value)
            if _ORIG_ROUTING_KEY in h:
                h["amqp.exchange"] = h.pop(_ORIG_EXCHANGE, d.exchange)
                h["amqp.routing_key"] = h.pop(_ORIG_ROUTING_KEY)
        return h

    async def _consume(self, session: _Session) -> None:
        """Take deliveries in order and hand each to ``Transport.intake`` (decode, raw dead letter,
        submit: waits while the bus is full); the size limit is this protocol's own."""
        inbox, take = session.inbox, self._consume_one
        # The delivery is passed straight in, not kept in a local of this loop: a local would hold the
        # last message's body (up to max_message_bytes) while waiting for the next one.
        while await take(session, await inbox.get()):
            pass

    async def _consume_one(self, session: _Session, delivered: DeliveredMessage) -> bool:
        """One delivery into ``Transport.intake``; False when the bus is closed (stop consuming)."""
        s = self.settings
        self.stats["received"] += 1
        tag = int(_delivery(delivered).delivery_tag or 0)
        headers = self._event_headers(delivered)
        rk = str(headers["amqp.routing_key"])
        source = headers.get("cfx-handle")
        if not isinstance(source, str):
            cut = rk.find(".CFX.")
            source = rk[:cut] if cut > 0 else None
        redelivered: bool | None = None
        if s.trust_redelivered_flag:
            redelivered = headers["amqp.redelivered"] or DELIVERY_COUNT_HEADER in headers
        message = AMQPMessage(
            self, session, tag, delivered,
            origin=self._origin_prefix + rk, decoder=s.decoder, source=source, headers=headers,
            redelivered=redelivered,
        )
        session.window.add(tag)
        session.idle.clear()
        if len(delivered.body) > s.max_message_bytes:
            self._spawn(self._dead_letter_too_large(message))
            return True
        try:
            await self.intake(message)
        except BusClosedError:
            session.window.forget(tag)  # left unacked: the broker redelivers it
            return False
        except Exception as exc:
            # The bus could not even queue the events (its idempotency lookup failed): same as a
            # failed settlement, so the message is requeued with our counter, not lost or stuck.
            self._spawn(message.settle_failed(exc))
        return True

    async def _dead_letter_too_large(self, message: AMQPMessage) -> None:
        limit = self.settings.max_message_bytes
        record = too_large_record(message.body, message.origin, self.name, limit, message.headers)
        log.warning("transport %s: %s from %s; dead-lettered (too_large)", self.name, record.reason, message.origin)
        session, tag = message.session, message.tag
        try:
            await self.sink.dead_letter_raw(record)
        except Exception as store_exc:
            log.error(
                "transport %s: cannot store the too-large message from %s (%s); parking it in %s",
                self.name,
                message.origin,
                self._describe_error(store_exc),
                self.settings.dlq_name,
            )
            try:
                await self._park(session, message.delivered, record.reason, record.error_type)
            except Exception:
                session.resolve(tag, False)
                return
        self.stats["too_large"] += 1
        session.resolve(tag, True)

    async def _settlement_failed(
        self, session: _Session, tag: int, message: DeliveredMessage, exc: BaseException | None
    ) -> None:
        s = self.settings
        old = (message.header.properties.headers or {}).get(DELIVERY_COUNT_HEADER, 0)
        count = (old if isinstance(old, int) else 0) + 1
        reason = f"settlement failed {count} time(s): {type(exc).__name__ if exc else 'cancelled'}: {exc}"
        log.warning("transport %s: message %s: %s", self.name, tag, reason)
        try:
            await asyncio.sleep(s.requeue_delay)
            if session.closed:
                return
            if count >= s.max_deliveries:
                await self._park(session, message, reason, type(exc).__name__ if exc else "CancelledError")
            else:
                await self._republish(session, message, {DELIVERY_COUNT_HEADER: count}, "", s.queue)
                self.stats["requeued"] += 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("transport %s: could not requeue message %s; nacking it", self.name, tag)
            session.resolve(tag, False)
            return
        session.resolve(tag, True)

    async def _park(self, session: _Session, message: DeliveredMessage, reason: str, error_type: str) -> None:
        """Publish the message as received to the broker's dead-letter exchange (confirmed)."""
        extra = {
            "x-pywats-reason": reason[:1000],
            "x-pywats-error-type": error_type,
            "x-pywats-transport": self.name,
            "x-pywats-dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        await self._republish(session, message, extra, self.settings.dlx_name, _delivery(message).routing_key or "")
        self.stats["parked"] += 1

    async def _republish(
        self,
        session: _Session,
        message: DeliveredMessage,
        extra: dict[str, Any],
        exchange: str,
        routing_key: str,
    ) -> None:
        p = message.header.properties
        headers = dict(p.headers or {})
        d = _delivery(message)
        headers.setdefault(_ORIG_EXCHANGE, d.exchange or "")
        headers.setdefault(_ORIG_ROUTING_KEY, d.routing_key or "")
        headers.update(extra)
        out = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=p.content_type,
            content_encoding=p.content_encoding,
            message_id=p.message_id,
            timestamp=p.timestamp,
            app_id=p.app_id,
            correlation_id=p.correlation_id,
            type=p.message_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        ex = session.publish.default_exchange if not exchange else await self._exchange(session, exchange)
        await ex.publish(out, routing_key, timeout=self.settings.send_timeout)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- publishing --------------------------------------------------------------------------
    async def _exchange(self, session: _Session, name: str) -> AbstractExchange:
        ex = session.exchanges.get(name)
        if ex is None:
            ex = await session.publish.get_exchange(name, ensure=False)
            session.exchanges[name] = ex
        return ex

    async def _publish(self, out: OutgoingMessage, exchange: str | None = None) -> None:
        s = self.settings
        try:
            await asyncio.wait_for(self._connected.wait(), s.send_timeout)
        except TimeoutError:
            raise CFXPublishError(
                f"transport {self.name!r} is {self.state.value}: no broker connection within {s.send_timeout}s"
            ) from None
        session = self._session
        if session is None:
            raise CFXPublishError(f"transport {self.name!r} lost its broker connection")
        message = aio_pika.Message(
            out.body,
            headers=out.headers,
            content_type=out.content_type,
            content_encoding=out.content_encoding,
            message_id=out.message_id,
            timestamp=out.timestamp,
            app_id=s.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            ex = await self._exchange(session, exchange or s.exchange)
            confirm = await ex.publish(message, out.routing_key, timeout=s.send_timeout)
        except Exception as exc:  # aiormq raises many kinds when the channel or connection goes away
            raise CFXPublishError(f"publish to {exchange or s.exchange!r} failed: {self._describe_error(exc)}") from exc
        if confirm is not None and not isinstance(confirm, aiormq.spec.Basic.Ack):
            raise CFXPublishError(f"broker refused the message for {out.routing_key!r}: {type(confirm).__name__}")

    async def send(self, event: Event) -> None:
        """Publish ``event`` on the CFX exchange and wait for the broker's confirm.

        A ``CFX.*`` event becomes that CFX envelope again; any other event is published as normalized event
        JSON (see ``pywats_cfx.publisher.event_message``).

        Raises:
            CFXPublishError: no connection within ``publish_timeout`` seconds, or the broker did not confirm.

        The message carries W3C ``traceparent``/``tracestate`` AMQP headers (``tracing.send_span``: a
        PRODUCER span's context while tracing, else the event's own).
        """
        out = event_message(event, handle=self.settings.handle, gzip=self.settings.gzip)
        with tracing.send_span("rabbitmq", self.settings.exchange, event) as trace:
            out.headers.update(trace)
            await self._publish(out)

    async def publish_envelope(
        self,
        envelopes: dict[str, Any] | CFXEnvelope | Sequence[dict[str, Any] | CFXEnvelope],
        *,
        routing_key: str | None = None,
        gzip: bool | None = None,
        exchange: str | None = None,
    ) -> None:
        """Publish one CFX envelope or a batch (JSON array) as the CFX SDK writes it, persistent, confirmed.

        Args:
            envelopes: wire dicts (``pywats_cfx.envelope.encode_envelope``) or ``CFXEnvelope`` objects.
            routing_key: default ``<Source or handle>.<MessageName>`` of the first envelope.
            gzip: compress (``content-encoding: gzip``); default the ``gzip`` setting.
            exchange: default the ``exchange`` setting.

        Raises:
            ValueError: an empty batch or an envelope without ``MessageName``.
            CFXPublishError: no connection within ``publish_timeout`` seconds, or the broker did not confirm.
        """
        out = envelope_message(
            envelopes,
            handle=self.settings.handle,
            gzip=self.settings.gzip if gzip is None else gzip,
            routing_key=routing_key,
        )
        await self._publish(out, exchange)
