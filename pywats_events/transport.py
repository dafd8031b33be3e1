"""The one contract every transport fills in, and what the bus offers transports in return.

Data flows one way. A transport wraps each protocol message in an ``InboundMessage`` (body bytes, origin,
headers, redelivered flag, the decoder to use, and the message's own ``ack`` / ``settle_failed``) and hands
it to ``Transport.intake``, the one intake path every transport shares: decode; bytes that cannot be
decoded go whole to the dead-letter queue (``IngestSink.dead_letter_raw``) and the message is acked once
they are durably stored; decoded events are submitted to the bus (waiting while it is full:
backpressure), and the message is acked only when every delivery they produced has succeeded or is
durably in the dead-letter queue. When even that cannot be recorded, ``settle_failed`` is called and the
protocol takes the message back (nack/requeue, no PUBACK, HTTP 503, the file stays).

The transport keeps only its protocol's part: what ``ack`` and ``settle_failed`` mean (basic.ack window,
ordered PUBACK, status code, file move), connecting and reconnecting, and ``send``. This is the habit of
aio-pika's ``AbstractIncomingMessage``: the message carries its settlement; the framework decides when.
"""

from __future__ import annotations

import abc
import asyncio
import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Protocol

from . import tracing
from .codec import DecodeContext, Decoder, get_decoder
from .dead_letter import DeadLetterReason
from .errors import DecodeError, TransportSendNotSupported
from .event import Event

__all__ = [
    "TOO_LARGE",
    "TOO_LARGE_PREFIX",
    "InboundMessage",
    "IngestSink",
    "RawRecord",
    "SettleResult",
    "Transport",
    "TransportState",
    "changed_option_keys",
    "return_large_buffers",
    "too_large_record",
]

#: Dead-letter reason of a message larger than its transport's ``max_message_size``.
TOO_LARGE = DeadLetterReason.TOO_LARGE
#: Bytes of an oversized message kept in its dead-letter entry: enough to tell what it was and who sent it,
#: never the whole body (keeping it would put the memory and storage the limit protects at risk again).
TOO_LARGE_PREFIX = 4096

log = logging.getLogger(__name__)


class TransportState(StrEnum):
    """Connection state of a transport, as reported in readiness and ``system.transport_*`` events."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """Input that could not be decoded into any event, kept whole so nothing is lost.

    Attributes:
        body: the bytes exactly as received.
        origin: where they came from (file path, ``amqp://host/queue#routing.key``, MQTT topic, URL path).
        transport: name of the transport that received them.
        reason: why they could not be decoded (the decoder's message).
        error_type: the exception class name (``InvalidJSONError``...).
        headers: transport metadata (AMQP properties, MQTT properties, HTTP headers).
        received_at: when the transport received them (UTC).
        decoder: name of the decoder that failed, used again when the entry is replayed (``None``: the
            transport did not say; replay uses ``auto``).
    """

    body: bytes
    origin: str
    transport: str
    reason: str
    error_type: str = "DecodeError"
    headers: dict[str, Any] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    decoder: str | None = None


#: ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (glibc ``malloc.h``).
_M_MMAP_THRESHOLD = -3
_allocator_set = False


def return_large_buffers(threshold: int = 1024 * 1024) -> bool:
    """Make the C allocator give the memory of large message buffers back to the system when they are freed.

    glibc serves allocations of at least ``M_MMAP_THRESHOLD`` bytes with their own ``mmap`` (unmapped on
    free), but raises that threshold to the size of each mmapped block freed (up to 32 MiB): after one large
    message, the next ones come from the heap and their memory stays with the process (measured: +33 MB
    after six 24 MiB AMQP messages). Setting the threshold once turns that adjustment off (``mallopt(3)``).
    Process-wide and idempotent; a no-op off glibc (other allocators keep their own policy).

    Args:
        threshold: allocations of at least this many bytes are mmapped (default 1 MiB; glibc's initial
            value is 128 KiB).

    Returns:
        True when the threshold is set (now or before).
    """
    global _allocator_set
    if _allocator_set:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    _allocator_set = bool(mallopt(_M_MMAP_THRESHOLD, threshold))
    return _allocator_set


def too_large_record(
    body: bytes, origin: str, transport: str, limit: int, headers: dict[str, Any] | None = None
) -> RawRecord:
    """The dead-letter record of a message over ``limit`` bytes: reason ``too_large``, the first
    ``TOO_LARGE_PREFIX`` bytes, and the size in the headers (``pywats-size``, ``pywats-max-message-size``,
    ``pywats-truncated``), so the body itself can be freed at once.

    Args:
        body: the message as received (bytes).
        origin: where it came from. transport: the transport's name.
        limit: the ``max_message_size`` it exceeded, in bytes.
        headers: transport metadata to keep with it.
    """
    size = len(body)
    return RawRecord(
        body=bytes(body[:TOO_LARGE_PREFIX]),
        origin=origin,
        transport=transport,
        reason=(
            f"message of {size} bytes exceeds max_message_size ({limit} bytes); only the first "
            f"{min(size, TOO_LARGE_PREFIX)} bytes are kept"
        ),
        error_type="MessageTooLarge",
        headers={
            **(headers or {}),
            "pywats-reason": TOO_LARGE,
            "pywats-size": size,
            "pywats-max-message-size": limit,
            "pywats-truncated": size > TOO_LARGE_PREFIX,
        },
    )


@dataclass(slots=True)
class SettleResult:
    """What became of the deliveries of one submitted batch of events.

    Attributes:
        events: number of events in the batch.
        handled: deliveries that succeeded (handler returned).
        skipped: deliveries not run because the idempotency record shows they already succeeded.
        dead_lettered: deliveries durably stored in the dead-letter queue (failed, unrecoverable or parked
            because the handler's circuit was open).
        unrouted: events that matched no handler.
    """

    events: int = 0
    handled: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    unrouted: int = 0

    def merge(self, other: SettleResult) -> None:
        """Add ``other``'s counts into this one."""
        self.events += other.events
        self.handled += other.handled
        self.skipped += other.skipped
        self.dead_lettered += other.dead_lettered
        self.unrouted += other.unrouted


class InboundMessage(abc.ABC):
    """One protocol message as a transport hands it to the core (``Transport.intake``).

    Subclasses say what settling means for their protocol by implementing ``ack`` and ``settle_failed``;
    the core calls exactly one of them, exactly once, and only after the bus is done with the message.

    Args:
        body: the bytes exactly as received (before gunzip; decoders undo gzip by content).
        origin: where they came from, for errors and dead-letter records (file path,
            ``amqp://host/queue#routing.key``, MQTT topic, URL path).
        decoder: name of the registered decoder to use (``auto``, ``event-json``, ``cfx``...).
        source: a source name the transport knows (MQTT topic segment, AMQP ``cfx-handle``), used when
            the content names none.
        headers: transport metadata copied into every event's ``headers`` and into raw dead letters.
        redelivered: ``False`` when the protocol guarantees a first delivery, ``True`` for a redelivery,
            ``None`` when it cannot tell (then idempotency records are consulted).
        events: the events, when the protocol had to decode before taking the message (an HTTP route
            answers 400 to an invalid request, naming the field, instead of dead-lettering it); ``intake``
            then submits them as they are. ``None``: ``intake`` decodes ``body``.
    """

    __slots__ = (
        "body", "dead_letter_id", "decoder", "events", "headers", "origin", "received_at", "redelivered", "source"
    )

    def __init__(
        self,
        body: bytes,
        *,
        origin: str,
        decoder: str = "auto",
        source: str | None = None,
        headers: dict[str, Any] | None = None,
        redelivered: bool | None = None,
        events: Sequence[Event] | None = None,
    ) -> None:
        self.body = body
        self.events = events
        self.origin = origin
        self.decoder = decoder
        self.source = source
        self.headers: dict[str, Any] = headers if headers is not None else {}
        self.redelivered = redelivered
        self.received_at = datetime.now(UTC)
        #: Id of the dead-letter entry holding the body whole when it could not be decoded (set by
        #: ``Transport.intake`` before ``ack``; ``None`` otherwise). HTTP answers name it.
        self.dead_letter_id: str | None = None

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        """The record ``Transport.intake`` stores when the body cannot be decoded; ``record`` is built
        from the message (reason and error type from the decoder). Override to add protocol headers or
        a stable entry id (header ``pywats-entry-id``: the same input dead-lettered again replaces its
        entry), or to remember the reason for the answer. Default: ``record`` unchanged."""
        return record

    @abc.abstractmethod
    async def ack(self, result: SettleResult) -> None:
        """Settle the message as done: every delivery it produced succeeded or is durably in the
        dead-letter queue (``result`` says which; for undecodable input ``dead_lettered`` is 1 and
        ``events`` 0). Broker acknowledgement, PUBACK, file move, HTTP 2xx."""

    def ack_nowait(self, result: SettleResult) -> bool:
        """Settle as done at once, without awaiting, when the protocol can (the ack is queued for a writer
        task that batches or pipelines it); return ``True`` when it did. ``Transport.intake`` tries this
        first and awaits ``ack`` in a task only when it returns ``False`` (the default), which saves a
        task per message on the hot path. Must not raise."""
        return False

    @abc.abstractmethod
    async def settle_failed(self, exc: BaseException) -> None:
        """The core could not record the outcome durably (``exc``: the store error, the bus stopping):
        give the message back so it is delivered again (nack with requeue, no PUBACK, HTTP 503, the file
        stays). Must not raise."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.origin!r} {len(self.body)} bytes>"


class IngestSink(Protocol):
    """What a transport talks to (implemented by ``EventBus``)."""

    async def submit(
        self, events: Sequence[Event], *, transport: str = "", redelivered: bool | None = None
    ) -> asyncio.Future[SettleResult]:
        """Queue ``events`` for delivery; wait while the bus is full (backpressure).

        Returns a future that resolves when every delivery the events produced has succeeded or is
        durably in the dead-letter queue (only then may the transport settle its message). The future
        never raises for handler failures.

        Args:
            events: decoded events of one protocol message (may be empty: resolves at once).
            transport: name of the submitting transport (metrics, dead-letter records).
            redelivered: ``False`` when the protocol guarantees this is a first delivery; ``None`` (do not
                know) or ``True`` make the bus consult idempotency records. A hint only.

        Raises:
            BusClosedError: the bus is not running.
        """
        ...

    async def dead_letter_raw(self, record: RawRecord) -> str:
        """Durably store undecodable input in the dead-letter queue; returns the entry id."""
        ...

    def transport_state_changed(
        self, transport: Transport, old: TransportState, new: TransportState, detail: str | None
    ) -> None:
        """Told by a transport each time its state changes (emits ``system.transport_*`` events)."""
        ...


class Transport(abc.ABC):
    """Base class of every transport.

    Subclasses implement ``start`` and ``stop`` and may override ``send``. They report state changes with
    ``_set_state`` and hand decoded events to ``self.sink`` (bound by the bus before ``start``).

    Args:
        name: unique name of this transport instance within a bus (``cfx``, ``mqtt-line1``...).
    """

    #: Short kind name shown in metrics and readiness (``mock``, ``file``, ``cfx``, ``mqtt``, ``webhook``).
    kind: str = "transport"
    #: The pydantic model of this transport's options (shown by ``pywats-events plugins``), if it has one.
    settings_model: ClassVar[type[Any] | None] = None
    #: The options this transport was built from (its ``[[transports]]`` table without ``kind`` and ``name``;
    #: set by ``pywats_events.config.build_transport``), which ``reload`` compares new options against.
    config_options: Mapping[str, Any] = MappingProxyType({})

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = TransportState.DISCONNECTED
        self._sink: IngestSink | None = None
        self.last_error: str | None = None
        self._decoders: dict[str, Decoder] = {}
        self._intake_settling: set[asyncio.Task[None]] = set()

    @property
    def state(self) -> TransportState:
        """The current connection state."""
        return self._state

    @property
    def sink(self) -> IngestSink:
        """The bus this transport feeds.

        Raises:
            RuntimeError: the transport was not added to a bus.
        """
        if self._sink is None:
            raise RuntimeError(f"transport {self.name!r} is not bound to a bus; use bus.add_transport()")
        return self._sink

    def bind(self, sink: IngestSink) -> None:
        """Attach the transport to the bus that will receive its events (done by ``EventBus.add_transport``)."""
        self._sink = sink

    def _set_state(self, new: TransportState, detail: str | None = None) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        if new is TransportState.ERROR:
            self.last_error = detail
        log.info("transport %s: %s -> %s%s", self.name, old, new, f" ({detail})" if detail else "")
        if self._sink is not None:
            self._sink.transport_state_changed(self, old, new, detail)

    def decoder(self, name: str) -> Decoder:
        """The registered decoder ``name``, looked up once per transport.

        Raises:
            KeyError: no decoder of that name (the message lists the known ones).
        """
        found = self._decoders.get(name)
        if found is None:
            found = self._decoders[name] = get_decoder(name)
        return found

    async def intake(self, message: InboundMessage) -> asyncio.Future[SettleResult]:
        """The one intake path: decode ``message``, submit its events, settle it when the bus is done.

        Waits only while the bus is full (backpressure), so a transport calls it once per message in
        arrival order and takes the next message as soon as it returns. The returned future resolves after
        ``message.ack`` was called, with the settlement (raw dead letter: ``dead_lettered`` 1, ``events``
        0); or raises the cause after ``message.settle_failed`` was called. A transport that needs the
        outcome (HTTP status code) awaits it; others may ignore it: it never goes unretrieved.

        Bytes the decoder refuses (``DecodeError``) and decoder bugs (any other exception) both go whole
        to the dead-letter queue with the decoder's name, so nothing is lost and the consumer never stops.

        Raises:
            BusClosedError: the bus is not running (nothing was settled; the caller gives the message back).
        """
        loop = asyncio.get_running_loop()
        out: asyncio.Future[SettleResult] = loop.create_future()
        if tracing.active:  # receive span; its context goes into the headers the events get
            tracing.receive(self, message, out)
        events = message.events
        if events is None:
            ctx = DecodeContext(origin=message.origin, source=message.source, headers=message.headers)
            try:
                events = self.decoder(message.decoder)(message.body, ctx)
            except Exception as exc:  # a decoder bug must not stop the consumer either
                self._intake_spawn(message, self._intake_dead_letter(message, exc), out)
                return out
        try:
            submitted = await self.sink.submit(events, transport=self.name, redelivered=message.redelivered)
        except BaseException:
            out.cancel()  # never submitted: nothing will settle it (the caller gives the message back)
            raise
        if submitted.done():
            self._intake_submitted(message, out, submitted)
        else:
            submitted.add_done_callback(lambda f: self._intake_submitted(message, out, f))
        return out

    def _intake_submitted(
        self, message: InboundMessage, out: asyncio.Future[SettleResult], submitted: asyncio.Future[SettleResult]
    ) -> None:
        if not submitted.cancelled() and submitted.exception() is None:
            result = submitted.result()
            if message.ack_nowait(result):  # settled without a task
                if not out.done():
                    out.set_result(result)
                return
        self._intake_spawn(message, submitted, out)

    async def _intake_dead_letter(self, message: InboundMessage, exc: Exception) -> SettleResult:
        if isinstance(exc, DecodeError):
            reason, error_type = exc.reason, type(exc).__name__
        else:
            log.exception("transport %s: decoder %r failed on %s", self.name, message.decoder, message.origin)
            reason, error_type = f"decoder {message.decoder!r} failed: {type(exc).__name__}: {exc}", "DecoderBug"
        record = message.dead_letter_record(
            RawRecord(
                body=message.body,
                origin=message.origin,
                transport=self.name,
                reason=reason,
                error_type=error_type,
                headers={**message.headers, "pywats-decoder": message.decoder},
                received_at=message.received_at,
                decoder=message.decoder,
            )
        )
        message.dead_letter_id = await self.sink.dead_letter_raw(record)
        return SettleResult(dead_lettered=1)

    def _intake_spawn(
        self, message: InboundMessage, outcome: Awaitable[SettleResult], out: asyncio.Future[SettleResult]
    ) -> None:
        task = asyncio.ensure_future(self._intake_settle(message, outcome, out))
        self._intake_settling.add(task)
        task.add_done_callback(self._intake_settling.discard)

    async def _intake_settle(
        self, message: InboundMessage, outcome: Awaitable[SettleResult], out: asyncio.Future[SettleResult]
    ) -> None:
        try:
            result = await outcome
        except BaseException as exc:
            log.warning("transport %s: cannot settle %s: %s: %s", self.name, message.origin, type(exc).__name__, exc)
            await message.settle_failed(exc)
            if not out.done():
                out.set_exception(exc)
                _retrieve(out)  # never "exception was never retrieved": the message is already given back
            if not isinstance(exc, Exception):
                raise
            return
        await message.ack(result)
        if not out.done():
            out.set_result(result)

    async def drain_settlements(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (``None``: no bound) for settlements in progress; returns how
        many are still running. Call from ``stop`` before closing the connection."""
        pending = set(self._intake_settling)
        if not pending:
            return 0
        _done, still = await asyncio.wait(pending, timeout=timeout)
        return len(still)

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and begin consuming. Returns once consuming has begun (or reconnection is scheduled).

        Raises:
            TransportError: the settings are unusable (bad URL, missing folder); transient network
                failures do not raise but move the state to RECONNECTING.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop consuming, wait for in-flight messages to settle where possible, and disconnect."""

    async def send(self, event: Event) -> None:
        """Publish ``event`` through this transport's protocol.

        Raises:
            TransportSendNotSupported: the protocol cannot publish.
            TransportError: the publish failed.
        """
        raise TransportSendNotSupported(f"transport {self.name!r} ({self.kind}) cannot send events")

    async def reload(self, options: Mapping[str, Any]) -> list[str]:
        """Take new options from a configuration reload (``SIGHUP`` to ``pywats-events run``) while running.

        Args:
            options: this transport's new ``[[transports]]`` table without ``kind`` and ``name`` (relative
                drop-folder paths already resolved, as ``build_transport`` passes them to ``from_config``).

        Returns:
            The option keys that changed and need a restart to take effect (sorted). Keys whose value is
            unchanged are never reported. This default applies nothing: every changed key is returned and
            logged at WARNING ("needs a restart"); the transport keeps running with its previous options.
            A transport that can swap some options safely overrides this, applies those, updates
            ``config_options`` for them, and returns (and logs) the rest.
        """
        changed = changed_option_keys(self.config_options, options)
        if changed:
            log.warning(
                "transport %s (%s): option%s %s changed: needs a restart (still running with the previous value%s)",
                self.name,
                self.kind,
                "s" if len(changed) > 1 else "",
                ", ".join(changed),
                "s" if len(changed) > 1 else "",
            )
        return changed

    def describe(self) -> dict[str, Any]:
        """State summary for readiness and the admin API (no secrets)."""
        return {"name": self.name, "kind": self.kind, "state": self._state.value, "last_error": self.last_error}


def changed_option_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The keys whose value differs between two option mappings (added, removed or changed), sorted.

    Args:
        old: the options in use.
        new: the options just read.
    """
    missing = object()
    return sorted(k for k in set(old) | set(new) if old.get(k, missing) != new.get(k, missing))


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a settlement future's exception as retrieved: a transport that does not wait for the outcome
    has already given the message back through ``settle_failed``, so there is nothing more to report."""
    if not future.cancelled():
        future.exception()
