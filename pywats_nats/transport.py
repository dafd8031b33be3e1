"""``NATSTransport``: NATS JetStream messages in (subject mapping rules to events), events out (``send``).

Delivery (a durable pull consumer with explicit acknowledgement):

1. The transport sends JetStream pull requests for batches to the durable consumer ``durable`` on
   ``stream`` (made if missing; the stream itself is made when ``create_stream`` is on, else it must
   exist); the messages arrive on its inbox subscription. At most ``max_in_flight`` messages are pulled
   and unsettled at once; that number is also the consumer's MaxAckPending.
2. Each message is mapped to events (``pywats_nats.mapping``) and goes through ``Transport.intake``. Messages no
   rule matches, or whose body cannot be decoded, are stored whole in the dead-letter queue (reason
   ``unrouted`` or ``decode_error``) and acknowledged.
3. The message is acknowledged only when the bus has settled it (every delivery handled or durably
   dead-lettered). While it is in the bus longer than ``in_progress_interval``, the transport sends
   ``+WPI`` (in progress) so the server's AckWait does not expire and redeliver it to someone else.
4. If settling fails (the store is down), the message is negatively acknowledged with a growing delay
   (``nak_delay``) and comes back. On the last delivery ``max_deliver`` allows, it is stored whole in the
   dead-letter queue (reason ``max_deliver``) and acknowledged instead, so JetStream never drops it.
5. If the process dies first, the server redelivers the message after AckWait with ``num_delivered``
   raised; the event keeps its id (``Nats-Msg-Id`` or stream sequence), and the bus's idempotency records
   make the copy a no-op for handlers that already finished.

Connection: nats-py reconnects by itself (``reconnect.initial_delay`` apart, for ever); the transport
reports RECONNECTING while it is away and CONNECTED when it is back. A first connection that fails is
retried in the background by the shared ``Reconnector`` (exponential backoff with jitter). ``send``
publishes to JetStream with a ``Nats-Msg-Id`` (the event id), so a retried publish is stored once
(JetStream de-duplication).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from typing import Any, Self
from urllib.parse import urlsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATSClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api

from pywats_events import tracing
from pywats_events.codec import DecodeContext, register_decoder
from pywats_events.dead_letter import DeadLetterReason
from pywats_events.errors import BusClosedError
from pywats_events.event import Event
from pywats_events.transport import InboundMessage, RawRecord, SettleResult, Transport, TransportState
from pywats_events.transports.reconnect import ConnectFailedError, Reconnector

from .errors import (
    NATSConnectError,
    NATSError,
    NATSPublishError,
    NATSStreamError,
)
from .mapping import MappingRule, SubjectMapper, Template, valid_subject
from .settings import NATSSettings

__all__ = ["MSG_ID_HEADER", "NATSTransport"]

log = logging.getLogger(__name__)

#: The JetStream de-duplication header (NATS docs, "JetStream Model Deep Dive: Message Deduplication").
MSG_ID_HEADER = "Nats-Msg-Id"
#: Fields a ``publish_subject`` template may use.
PUBLISH_FIELDS = ("type", "category", "source", "severity", "id")
#: Dead-letter reason of a message whose last allowed delivery could not be settled.
REASON_MAX_DELIVER = DeadLetterReason.MAX_DELIVER
#: NATS headers also copied to the top level of the message headers (W3C Trace Context).
TRACE_HEADERS = ("traceparent", "tracestate")


class _Delivery(InboundMessage):
    """One fetched JetStream message on its way through ``Transport.intake``; ``ack`` queues ``+ACK``,
    ``settle_failed`` naks it with a delay (or dead-letters it on its last allowed delivery)."""

    __slots__ = (
        "delivered",
        "message_id",
        "msg",
        "nats_headers",
        "progress_at",
        "record",
        "seq",
        "stream",
        "subject",
        "subject_origin",
        "transport",
        "twins",
    )

    def __init__(self, transport: NATSTransport, msg: Msg, progress_every: float) -> None:
        md = msg.metadata
        self.transport = transport
        self.msg = msg
        self.subject: str = msg.subject
        self.nats_headers: dict[str, str] = dict(msg.headers) if msg.headers else {}
        self.delivered: int = md.num_delivered
        self.seq: int = md.sequence.stream
        self.stream: str = md.stream
        own = self.nats_headers.get(MSG_ID_HEADER)
        self.message_id = own if own else f"{md.stream}#{self.seq}"
        self.subject_origin = f"{transport._origin_prefix}{self.subject}"
        # The fragment carries the message id so a replay rebuilds the same event ids.
        super().__init__(
            msg.data, origin=f"{self.subject_origin}#{self.message_id}", decoder=transport._decoder_name
        )
        self.progress_at = time.monotonic() + progress_every
        #: Later deliveries of the same stream message that arrived while this one was still in the bus.
        self.twins: list[_Delivery] | None = None
        #: The raw dead-letter record, when the body could not be decoded.
        self.record: RawRecord | None = None

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        """The raw record with the NATS metadata (reason ``unrouted`` when no rule matched)."""
        reason = DeadLetterReason.UNROUTED if record.error_type == "UnroutedSubjectError" else None
        self.record = self.transport._raw_record(self, record.reason, record.error_type, reason)
        return self.record

    async def ack(self, result: SettleResult) -> None:
        """Settled: queue ``+ACK`` for this delivery (and its twins)."""
        self.transport._queue_ack(self, result)

    def ack_nowait(self, result: SettleResult) -> bool:
        """``+ACK`` is queued for the acker task without waiting: settled at once."""
        self.transport._queue_ack(self, result)
        return True

    async def settle_failed(self, exc: BaseException) -> None:
        """Not recorded: ``-NAK`` with a growing delay, or the dead-letter queue on the last delivery."""
        await self.transport._settlement_failed(self, exc, self.record)


class NATSTransport(Transport):
    """NATS JetStream transport: a durable pull consumer, at-least-once into the bus, and ``send``.

    Args:
        name: transport name within the bus (default ``nats``).
        settings: a ``NATSSettings``; or give its fields as keyword ``options`` instead.
        options: ``NATSSettings`` fields (``servers=[...], stream=..., rules=[...]``) when ``settings`` is
            not given.

    Raises:
        NATSConfigError: invalid settings, subject filter or template.

    Event headers set on every event: ``transport``, ``nats_subject``, ``nats_stream``, ``nats_seq``
    (stream sequence), ``nats_delivered`` (delivery count), ``nats_msg_id`` (when the message has a
    ``Nats-Msg-Id``), ``nats_headers`` (the message's other headers), ``nats_fields`` and ``nats_rule``.

    Attributes:
        state_detail: why the transport is in its current state.
        stats: counters (count): ``received``, ``acked``, ``nacked``, ``in_progress`` (``+WPI`` sent),
            ``raw_dead_lettered`` (undecodable or unrouted), ``max_deliver`` (dead-lettered at the last
            delivery), ``parked`` (published to ``dead_letter_subject``), ``redelivered`` (messages with
            ``num_delivered > 1``).
        pending_high_water: the most messages ever fetched but unsettled at once (count).
    """

    kind = "nats"

    def __init__(self, name: str = "nats", settings: NATSSettings | None = None, **options: Any) -> None:
        super().__init__(name)
        if settings is None:
            settings = NATSSettings.from_options(options, f"transports[{name}]")
        elif options:
            raise TypeError("give either settings or keyword options, not both")
        self.settings = s = settings
        self.mapper = SubjectMapper(
            [
                MappingRule.build(
                    r.subject,
                    decoder=r.decoder,
                    type=r.type,
                    source=r.source,
                    subjects=r.subjects,
                    severity=r.severity,
                    id_field=r.id_field,
                    index=i,
                )
                for i, r in enumerate(s.rules)
            ]
        )
        self._publish_subject = Template(s.publish_subject, PUBLISH_FIELDS, "publish_subject")
        first = urlsplit(s.servers[0])
        self._origin_prefix = f"nats://{first.hostname or 'server'}:{first.port or 4222}/{s.stream}/"
        self._decoder_name = f"nats:{name}"
        # Registered so that dead-lettered NATS messages can be replayed through the (fixed) rules.
        register_decoder(self._decoder_name, self._replay_decode)

        self._nc: NATSClient | None = None
        self._js: JetStreamContext | None = None
        self._sub: Subscription | None = None
        #: Where pull requests are sent and where the consumer delivers (this connection's inbox).
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{s.stream}.{s.durable}"
        self._inbox: str | None = None
        self._requested = 0
        self._request_done = asyncio.Event()
        self._inflight: dict[int, _Delivery] = {}
        self._by_seq: dict[int, _Delivery] = {}
        #: Room (messages) the intake waits for before it fetches again.
        self._low_water = max(1, min(s.fetch_batch, s.max_inflight) // 2)
        # Stream sequences up to this one may be redeliveries even when the server counts a first delivery:
        # a server that restarts can lose its consumer's delivery counts (they are flushed periodically).
        self._distrust_through: float = 0
        self._acks: deque[_Delivery] = deque()
        self._ack_wake = asyncio.Event()
        self._room = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._connector: asyncio.Task[None] | None = None
        self._reconnector = Reconnector(
            self,
            s.reconnect,
            where=f"{','.join(s.servers)} stream {s.stream} consumer {s.durable}",
            permanent=lambda exc: isinstance(exc, NATSStreamError) and exc.permanent,
        )
        self._stopping = False
        self._started = False
        self.state_detail: str | None = None
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "received",
                "acked",
                "nacked",
                "in_progress",
                "raw_dead_lettered",
                "max_deliver",
                "parked",
                "redelivered",
            ),
            0,
        )
        self.pending_high_water = 0

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[transports]] kind = "nats"`` table (``options`` without ``kind``/``name``).

        Raises:
            NATSConfigError: the first invalid key, named as ``transports[<name>].<key>``.
        """
        return cls(name, NATSSettings.from_options(options, f"transports[{name}]"))

    # -- status ------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Messages fetched and not yet settled and acknowledged (count); at most ``max_inflight``."""
        return len(self._inflight)

    def describe(self) -> dict[str, Any]:
        """State, servers, stream, consumer and counters; no secrets."""
        s = self.settings
        return super().describe() | {
            "servers": list(s.servers),
            "stream": s.stream,
            "durable": s.durable,
            "detail": self.state_detail,
            "pending": self.pending,
            "stats": dict(self.stats),
            "settings": s.describe(),
        }

    def __repr__(self) -> str:
        s = self.settings
        return f"NATSTransport(name={self.name!r}, servers={s.servers!r}, stream={s.stream!r}, durable={s.durable!r})"

    def _set_state(self, new: TransportState, detail: str | None = None) -> None:
        self.state_detail = detail
        super()._set_state(new, detail)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, bind (or create) the stream and the durable consumer, and begin fetching. Returns after
        the first attempt; when it fails the transport is RECONNECTING (ERROR for a stream that does not
        exist or a refused configuration) and keeps trying in the background."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._room = asyncio.Event()
        self._room.set()
        self._ack_wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._set_state(TransportState.CONNECTING, self._where())
        try:
            await self._open()
        except Exception as exc:
            self._report_failure(exc)
            self._connector = asyncio.create_task(self._connect_loop(), name=f"pywats-nats-{self.name}-connect")
            return
        self._on_open()

    async def stop(self) -> None:
        """Stop fetching, wait up to ``drain_timeout`` seconds for messages in the bus to settle and
        acknowledge them, and disconnect. Unsettled messages stay unacknowledged: the server redelivers
        them after AckWait (to another process of the same durable consumer, if one runs)."""
        if not self._started:
            return
        self._stopping = True
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
            self._connector = None
        pull = self._tasks[0] if self._tasks else None
        grace = max(1.0, self.settings.drain_timeout)
        if pull is not None:
            pull.cancel()
            await asyncio.wait([pull], timeout=grace)
        await self.drain_settlements(self.settings.drain_timeout)
        if self._background:
            await asyncio.wait(list(self._background), timeout=self.settings.drain_timeout)
        # Every step below is bounded: a stop never hangs on a dead connection or a stuck task.
        try:
            await asyncio.wait_for(self._flush_acks(), grace)
        except Exception as exc:
            log.warning("transport %s: acknowledgements not flushed at stop: %s", self.name, type(exc).__name__)
        leftover = [*self._tasks, *self._background]
        for task in leftover:
            task.cancel()
        if leftover:
            _, stuck = await asyncio.wait(leftover, timeout=grace)
            if stuck:
                log.warning("transport %s: %d task(s) did not end at stop; abandoned", self.name, len(stuck))
        self._tasks = []
        try:
            await asyncio.wait_for(self._close(), grace)
        except Exception as exc:
            log.warning("transport %s: connection not closed cleanly at stop: %s", self.name, type(exc).__name__)
        self._started = False
        self._inflight.clear()
        self._by_seq.clear()
        self._set_state(TransportState.DISCONNECTED)

    def _where(self) -> str:
        s = self.settings
        return f"{','.join(s.servers)} stream {s.stream} consumer {s.durable}"

    # -- connection --------------------------------------------------------------------------
    async def _open(self) -> None:
        """Connect and set up stream, consumer and pull subscription (the test double replaces this)."""
        s = self.settings
        nc = NATSClient()
        # nats-py retries a failed first connection for ever when reconnection is unlimited, so the first
        # connection gets a deadline; our own backoff loop (``_connect_loop``) then tries again.
        first_deadline = s.connect_timeout * len(s.servers) + s.reconnect.initial_delay
        try:
            async with asyncio.timeout(first_deadline):
                await nc.connect(
                    servers=list(s.servers),
                    name=s.connection_name or f"pywats-{self.name}",
                    user=s.user,
                    password=s.password.get_secret_value() if s.password else None,
                    token=s.token.get_secret_value() if s.token else None,
                    connect_timeout=max(1, round(s.connect_timeout)),
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=s.reconnect.initial_delay,  # type: ignore[arg-type]
                    tls=s.tls.client_context() if s.tls is not None else None,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                    closed_cb=self._on_closed,
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(exc, TimeoutError):
                raise NATSConnectError(
                    f"cannot connect to {','.join(s.servers)}: no server answered within {first_deadline:g}s"
                ) from None
            if isinstance(exc, nats.errors.Error | OSError):
                where = ",".join(s.servers)
                raise NATSConnectError(f"cannot connect to {where}: {type(exc).__name__}: {exc}") from None
            raise
        try:
            js = nc.jetstream(timeout=s.connect_timeout)
            await self._ensure_stream(js)
            await self._ensure_consumer(js)
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox, cb=self._on_pulled, pending_msgs_limit=max(s.max_in_flight * 4, 4096))
        except BaseException:
            with contextlib.suppress(Exception):
                await nc.close()
            raise
        self._nc, self._js, self._sub, self._inbox = nc, js, sub, inbox

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        s = self.settings
        try:
            info = await js.stream_info(s.stream)
        except nats.js.errors.NotFoundError:
            info = None
        except nats.js.errors.ServiceUnavailableError:
            raise NATSStreamError("JetStream is not enabled on the server (start nats-server with -js)") from None
        except nats.errors.NoRespondersError:
            raise NATSStreamError("JetStream is not enabled on the server (start nats-server with -js)") from None
        except nats.errors.TimeoutError:
            raise NATSStreamError(f"JetStream did not answer about stream {s.stream!r} in time") from None
        if not s.create_stream:
            if info is None:
                raise NATSStreamError(
                    f"stream {s.stream!r} does not exist; create it, or set create_stream = true and "
                    "stream_subjects",
                    permanent=True,
                )
            return
        wanted = set(s.stream_subjects)
        try:
            if info is None:
                await js.add_stream(
                    name=s.stream,
                    subjects=list(s.stream_subjects),
                    storage=api.StorageType.FILE if s.storage == "file" else api.StorageType.MEMORY,
                    duplicate_window=s.duplicate_window,
                )
            elif not wanted <= set(info.config.subjects or ()):
                config = info.config
                config.subjects = sorted(set(config.subjects or ()) | wanted)
                await js.update_stream(config)
        except nats.js.errors.APIError as exc:
            raise NATSStreamError(f"stream {s.stream!r}: the server refused it: {exc}", permanent=True) from None

    async def _ensure_consumer(self, js: JetStreamContext) -> None:
        s = self.settings
        config = api.ConsumerConfig(
            durable_name=s.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=s.ack_wait,
            max_deliver=s.max_deliver,
            max_ack_pending=s.max_in_flight,
            filter_subject=s.filter_subject,
            deliver_policy=api.DeliverPolicy.ALL if s.deliver_policy == "all" else api.DeliverPolicy.NEW,
        )
        try:
            existing = await js.consumer_info(s.stream, s.durable)
        except nats.js.errors.NotFoundError:
            existing = None
        if existing is not None:
            c = existing.config
            same = (c.ack_wait, c.max_deliver, c.max_ack_pending, c.filter_subject or None) == (
                s.ack_wait,
                s.max_deliver,
                s.max_in_flight,
                s.filter_subject,
            )
            if same:
                return  # several processes share this durable: leave it alone
            config.deliver_policy = c.deliver_policy  # cannot change on an existing consumer
        try:
            await js.add_consumer(s.stream, config)
        except nats.js.errors.APIError as exc:
            raise NATSStreamError(
                f"consumer {s.durable!r} on stream {s.stream!r}: the server refused it: {exc}", permanent=True
            ) from None

    async def _close(self) -> None:
        nc, self._nc, self._js, self._sub, self._inbox = self._nc, None, None, None, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    def _on_open(self) -> None:
        self._connected.set()
        self._set_state(TransportState.CONNECTED, self._where())
        self._tasks = [
            asyncio.create_task(self._pull(), name=f"pywats-nats-{self.name}-pull"),
            asyncio.create_task(self._acker(), name=f"pywats-nats-{self.name}-acker"),
            asyncio.create_task(self._keep_alive(), name=f"pywats-nats-{self.name}-progress"),
        ]

    def _report_failure(self, exc: BaseException) -> None:
        permanent = isinstance(exc, NATSStreamError) and exc.permanent
        self._set_state(TransportState.ERROR if permanent else TransportState.RECONNECTING, str(exc))

    async def _connect_loop(self) -> None:
        # Any failure is retried: giving up would leave the line without its input; the state and the log
        # say what is wrong (a missing stream is ERROR and fixed by creating it). Only ``give_up_after``
        # ends it (state ERROR).
        try:
            await self._reconnector.connect(self._open, first=False)
        except ConnectFailedError as exc:
            log.error("transport %s: %s", self.name, exc)
            return
        finally:
            self._connector = None
        self._on_open()

    async def _on_disconnected(self) -> None:
        self._connected.clear()
        self._distrust_through = float("inf")
        if not self._stopping and self._nc is not None:
            self._set_state(TransportState.RECONNECTING, f"disconnected from {','.join(self.settings.servers)}")

    async def _on_reconnected(self) -> None:
        if self._stopping:
            return
        self._connected.set()
        nc = self._nc
        url = nc.connected_url.netloc if nc is not None and nc.connected_url else "server"
        self._set_state(TransportState.CONNECTED, f"reconnected to {url}; {self._where()}")
        self._spawn(self._measure_distrust())

    async def _measure_distrust(self) -> None:
        # Every message stored before the reconnection may have been delivered before it; later ones not.
        js = self._js
        if js is None:
            return
        try:
            info = await js.stream_info(self.settings.stream)
        except Exception as exc:
            log.warning("transport %s: stream info after reconnecting failed (%s); checking all", self.name, exc)
            return
        if self._connected.is_set():
            self._distrust_through = info.state.last_seq

    async def _on_error(self, exc: Exception) -> None:
        # nats-py reports each failed reconnection attempt here; the state already says RECONNECTING.
        log.debug("transport %s: nats client: %s: %s", self.name, type(exc).__name__, exc)
        if self._state is TransportState.RECONNECTING:
            self.state_detail = f"{type(exc).__name__}: {exc}"

    async def _on_closed(self) -> None:
        # Only a connection that was up counts: closing the client of a failed first attempt is ours.
        if not self._stopping and self._nc is not None:
            self._set_state(TransportState.ERROR, "the NATS connection was closed")

    # -- intake ------------------------------------------------------------------------------
    async def _pull(self) -> None:
        """Ask the durable consumer for messages as room allows: JetStream pull requests
        (``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>`` with ``batch`` and ``expires``, NATS docs
        "JetStream wire API"), one at a time. The messages arrive on this connection's inbox and go to
        ``receive`` from the subscription's callback, one coroutine call each (nats-py's ``fetch`` awaits
        every message with a timeout: a task per message). A request ends when its batch has been
        received, or with the server's status 404/408/409; one the server never answers (lost in a
        reconnect) is given up after ``expires`` plus a margin. Every message that arrives is taken, so
        request accounting affects only the pace, never what is delivered."""
        s = self.settings
        failures = 0
        expires_ns = int(s.fetch_timeout * 1e9)
        margin = s.fetch_timeout + max(1.0, s.connect_timeout)
        while True:
            room = s.max_in_flight - len(self._inflight)
            if room < self._low_water:
                # Wait for a useful amount of room: fetching one message per ack would cost one round trip
                # to the server per message.
                self._room.clear()
                await self._room.wait()
                continue
            nc, inbox = self._nc, self._inbox
            if nc is None or inbox is None:
                return
            batch = min(s.fetch_batch, room)
            self._requested = batch
            self._request_done.clear()
            request = json.dumps({"batch": batch, "expires": expires_ns}).encode()
            try:
                await nc.publish(self._next_subject, request, reply=inbox)
            except (nats.errors.Error, OSError) as exc:
                failures += 1
                delay = min(s.reconnect.max_delay, s.reconnect.initial_delay * 2 ** min(failures, 8))
                log.warning(
                    "transport %s: pull request failed (%s: %s); again in %.1fs",
                    self.name, type(exc).__name__, exc, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                continue
            failures = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(margin):
                    await self._request_done.wait()

    async def _on_pulled(self, msg: Msg) -> None:
        """The inbox subscription's callback: a JetStream message, or a status ending the pull request."""
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status is not None and not msg.data and not msg.reply.startswith("$JS.ACK."):
            if status != "100":  # 100: idle heartbeat / flow control; 404, 408, 409 end the request
                if status == "409":
                    why = (headers or {}).get("Description")
                    log.info("transport %s: pull request ended: %s %s", self.name, status, why)
                self._request_done.set()
            return
        self._requested -= 1
        if self._requested <= 0:
            self._request_done.set()
        if self._stopping:
            self._spawn(self._nak(_Delivery(self, msg, self.settings.progress_every), 0.0))  # hand it back now
            return
        try:
            await self.receive(msg)
        except Exception:  # never let one message end the subscription's task
            log.exception("transport %s: intake of %s failed", self.name, msg.subject)

    async def receive(self, msg: Msg) -> None:
        """Hand one fetched JetStream message to the intake path: map it, ``Transport.intake`` (submit,
        settle), and ack, nak or dead-letter it when the bus is done. Returns once it is submitted.

        The pull loop calls it for every fetched message; ``pywats_nats.testing`` feeds its messages in
        through it as well. ``msg``: a ``nats.aio.msg.Msg`` of this transport's consumer (or an object with
        the same ``subject``, ``data``, ``headers``, ``metadata``, ``ack``/``nak``/``in_progress``).
        """
        s = self.settings
        d = _Delivery(self, msg, s.progress_every)
        self.stats["received"] += 1
        if d.delivered > 1:
            self.stats["redelivered"] += 1
        self._inflight[id(d)] = d
        if len(self._inflight) > self.pending_high_water:
            self.pending_high_water = len(self._inflight)
        leader = self._by_seq.get(d.seq)
        if leader is not None:
            # The server sent this message again while an earlier delivery of it is still in the bus (its
            # AckWait ran out during a reconnect, or the server lost the delivery state in a restart). The
            # idempotency records cannot catch it yet (the first copy has not finished), so it is not
            # submitted: it is settled together with the first copy.
            if leader.twins is None:
                leader.twins = [d]
            else:
                leader.twins.append(d)
            return
        self._by_seq[d.seq] = d
        d.headers = self._event_headers(d)
        try:
            d.events = self.mapper.map(d.subject, d.body, d.headers, d.subject_origin, d.message_id)
        except Exception:
            pass  # ``intake`` decodes it again with the registered decoder and dead-letters it whole
        if s.trust_redelivered_flag and d.seq > self._distrust_through:
            d.redelivered = d.delivered > 1
        try:
            await self.intake(d)
        except BusClosedError:
            # Never entered the bus: hand it back at once (another process of the durable may take it).
            self._spawn(self._nak(d, 0.0))
        except Exception as exc:
            self._spawn(self._settlement_failed(d, exc))

    def _event_headers(self, d: _Delivery) -> dict[str, Any]:
        h: dict[str, Any] = {
            "transport": self.name,
            "nats_subject": d.subject,
            "nats_stream": d.stream,
            "nats_seq": d.seq,
            "nats_delivered": d.delivered,
        }
        own = d.nats_headers
        if own:
            msg_id = own.get(MSG_ID_HEADER)
            if msg_id:
                h["nats_msg_id"] = msg_id
            others = {k: v for k, v in own.items() if k != MSG_ID_HEADER}
            if others:
                h["nats_headers"] = others
                for key in TRACE_HEADERS:  # W3C Trace Context travels as NATS headers
                    if key in others:
                        h[key] = others[key]
        return h

    def _queue_ack(self, d: _Delivery, result: SettleResult) -> None:
        self._acks.append(d)
        self._ack_wake.set()
        if result.events == 0 and result.dead_lettered:
            self.stats["raw_dead_lettered"] += 1

    async def _acker(self) -> None:
        # One task sends the acknowledgements: a done-callback cannot await, and a task per message costs
        # more than the ack itself (nats-py only appends it to its write buffer).
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        acks = self._acks
        while acks:
            d = acks.popleft()
            await self._send_ack(d)

    async def _send_ack(self, d: _Delivery) -> None:
        for one in self._with_twins(d):
            try:
                await one.msg.ack()
                self.stats["acked"] += 1
            except Exception as exc:
                # Not acknowledged: the server redelivers it after AckWait and idempotency skips the handlers.
                log.warning("transport %s: ack of %s failed: %s", self.name, one.message_id, exc)
            self._release(one)

    def _with_twins(self, d: _Delivery) -> list[_Delivery]:
        if self._by_seq.get(d.seq) is d:
            del self._by_seq[d.seq]
        twins, d.twins = d.twins, None
        return [d, *twins] if twins else [d]

    def _release(self, d: _Delivery) -> None:
        self._inflight.pop(id(d), None)
        if self.settings.max_inflight - len(self._inflight) >= self._low_water:
            self._room.set()

    async def _nak(self, d: _Delivery, delay: float) -> None:
        for one in self._with_twins(d):
            try:
                await one.msg.nak(delay=delay or None)
                self.stats["nacked"] += 1
            except Exception as exc:
                log.warning("transport %s: nak of %s failed: %s", self.name, one.message_id, exc)
            self._release(one)

    async def _keep_alive(self) -> None:
        # Tell the server a message is still being worked on before AckWait runs out, so a slow handler
        # (or a long retry backoff) does not make it redeliver the message to another process.
        every = self.settings.progress_every
        while True:
            await asyncio.sleep(min(every / 2, 1.0))
            now = time.monotonic()
            for d in list(self._inflight.values()):
                if now >= d.progress_at:
                    d.progress_at = now + every
                    try:
                        await d.msg.in_progress()
                        self.stats["in_progress"] += 1
                    except Exception as exc:
                        log.debug("transport %s: in_progress of %s failed: %s", self.name, d.message_id, exc)

    def _raw_record(self, d: _Delivery, reason: str, error_type: str, dl_reason: str | None) -> RawRecord:
        headers: dict[str, Any] = {
            "pywats-decoder": self._decoder_name,
            "nats_subject": d.subject,
            "nats_stream": self.settings.stream,
            "nats_seq": d.seq,
            "nats_delivered": d.delivered,
            "nats_msg_id": d.message_id,
        }
        if d.nats_headers:
            headers["nats_headers"] = dict(d.nats_headers)
        if dl_reason is not None:
            headers["pywats-reason"] = dl_reason
        return RawRecord(
            body=d.body,
            origin=d.origin,
            transport=self.name,
            reason=reason,
            error_type=error_type,
            headers=headers,
            received_at=d.received_at,
            decoder=self._decoder_name,
        )

    async def _settlement_failed(self, d: _Delivery, exc: BaseException, record: RawRecord | None = None) -> None:
        """Nak with a growing delay; on the last delivery ``max_deliver`` allows, dead-letter and ack."""
        s = self.settings
        what = f"{type(exc).__name__}: {exc}"
        if d.delivered < s.max_deliver:
            delay = min(s.nak_delay_max, s.nak_delay * 2 ** (d.delivered - 1))
            log.warning(
                "transport %s: message %s (delivery %d of %d) not settled (%s); redelivery in %.1fs",
                self.name, d.message_id, d.delivered, s.max_deliver, what, delay,
            )  # fmt: skip
            await self._nak(d, delay)
            return
        text = f"delivery {d.delivered} of max_deliver {s.max_deliver} could not be settled: {what}"
        if record is not None:
            text = f"{record.reason}; then {text}"
        last = self._raw_record(d, text, type(exc).__name__, REASON_MAX_DELIVER)
        try:
            await self.sink.dead_letter_raw(last)
        except Exception as store_exc:
            await self._park(d, last, store_exc)
            return
        self.stats["max_deliver"] += 1
        log.error("transport %s: message %s dead-lettered: %s", self.name, d.message_id, text)
        await self._send_ack(d)

    async def _park(self, d: _Delivery, record: RawRecord, store_exc: BaseException) -> None:
        s = self.settings
        js = self._js
        if s.dead_letter_subject is None or js is None:
            log.error(
                "transport %s: message %s reached max_deliver and cannot be stored (%s: %s); it stays in stream "
                "%s at sequence %d (JetStream will not deliver it again to %s)",
                self.name, d.message_id, type(store_exc).__name__, store_exc, s.stream, d.seq, s.durable,
            )  # fmt: skip
            await self._nak(d, 0.0)
            return
        headers = {
            **d.nats_headers,
            "Pywats-Reason": record.reason[:1000],
            "Pywats-Original-Subject": d.subject,
            "Pywats-Original-Stream": s.stream,
            "Pywats-Original-Sequence": str(d.seq),
            "Pywats-Transport": self.name,
        }
        headers.pop(MSG_ID_HEADER, None)
        try:
            await js.publish(s.dead_letter_subject, d.body, timeout=s.send_timeout, headers=headers)
        except Exception as exc:
            log.error("transport %s: parking %s on %s failed: %s", self.name, d.message_id, s.dead_letter_subject, exc)
            await self._nak(d, 0.0)
            return
        self.stats["parked"] += 1
        await self._send_ack(d)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- replay ------------------------------------------------------------------------------
    def _replay_decode(self, body: bytes, ctx: DecodeContext) -> list[Event]:
        origin = ctx.origin
        path, _, message_id = origin.partition("#")
        subject = path.rsplit("/", 1)[-1]
        headers = {"transport": self.name, "nats_subject": subject, **ctx.headers}
        return self.mapper.map(subject, body, headers, path, message_id or str(uuid.uuid4()))

    # -- publishing --------------------------------------------------------------------------
    def publish_subject_for(self, event: Event) -> str:
        """The subject ``send`` publishes ``event`` to (``publish_subject`` rendered from the event).

        Raises:
            NATSPublishError: the rendered subject is not a valid NATS subject.
        """
        values = {
            "type": event.type,
            "category": event.category,
            "source": event.source,
            "severity": event.severity.value,
            "id": event.id,
        }
        subject = self._publish_subject.render(values)
        if not valid_subject(subject):
            raise NATSPublishError(
                f"publish subject {subject!r} (from {self._publish_subject.text!r}) is not a valid NATS subject"
            )
        return subject

    async def send(self, event: Event) -> None:
        """Publish ``event`` as normalized event JSON to ``publish_subject`` on JetStream, with header
        ``Nats-Msg-Id: <event id>`` so that a publish retried after a lost PubAck is stored once (within
        the stream's duplicate window), and W3C ``traceparent``/``tracestate`` headers
        (``tracing.send_span``: a PRODUCER span's context while tracing, else the event's own). Waits for a
        connection and the PubAck, together at most ``send_timeout`` seconds.

        Raises:
            NATSPublishError: the transport is not started, the rendered subject is invalid, no stream
                captures the subject, or no connection or PubAck in time (the message may still have been
                stored: publish again, de-duplication keeps one copy).
        """
        if not self._started or self._stopping:
            raise NATSPublishError(f"transport {self.name!r} is not started")
        subject = self.publish_subject_for(event)
        headers = {MSG_ID_HEADER: event.id, "Content-Type": "application/json"}
        with tracing.send_span("nats", subject, event) as trace:  # W3C Trace Context as NATS headers
            headers.update(trace)
            await self._publish(subject, event.to_json().encode(), headers)

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        """Publish to JetStream and wait for the PubAck (the test double replaces this)."""
        s = self.settings
        try:
            async with asyncio.timeout(s.send_timeout):
                await self._connected.wait()
                js = self._js
                if js is None:
                    raise NATSPublishError(f"transport {self.name!r} lost its connection")
                ack = await js.publish(subject, body, timeout=s.send_timeout, headers=headers)
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
            raise NATSPublishError(f"no JetStream stream captures subject {subject!r}") from None
        except TimeoutError:
            what = "PubAck" if self._connected.is_set() else "connection"
            raise NATSPublishError(f"no {what} within {s.send_timeout:g}s publishing to {subject!r}") from None
        except NATSError:
            raise
        except nats.errors.Error as exc:
            raise NATSPublishError(f"publishing to {subject!r} failed: {type(exc).__name__}: {exc}") from None
        if ack.duplicate:
            log.debug("transport %s: %s on %s was a duplicate; the stream kept one copy", self.name, headers, subject)
