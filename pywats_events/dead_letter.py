"""The dead-letter queue: failed deliveries, parked deliveries and undecodable input; listable,
replayable and purgeable. One module holds the entry (``DeadLetterEntry``), its reasons
(``DeadLetterReason``, an enum), the builders the delivery layer and the intake use, and replay.

Entries live in the bus's store (durable with ``SQLStore``). Replaying a delivery entry calls only the
handler that failed, through the delivery layer (``Redelivery``); on success the entry is deleted and the
idempotency record written. Replaying a raw entry decodes its bytes again (after a fix to a decoder or a
mapping) and submits the events through the ingest interface, as a transport would. Parked entries
(``circuit_open``) are replayed automatically, oldest first, whenever their handler can run again.
"""

from __future__ import annotations

import asyncio
import logging
import traceback as tb
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from .codec import DecodeContext, get_decoder
from .errors import BusError, DecodeError
from .event import Event
from .tracing import trace_headers

if TYPE_CHECKING:
    # For annotations only: the store holds entries (it imports this module), and the transport contract
    # sits above the dead-letter queue; neither is needed at run time here.
    from .store import Store
    from .transport import IngestSink, RawRecord

__all__ = [
    "DeadLetterEntry",
    "DeadLetterQueue",
    "DeadLetterReason",
    "Redelivery",
    "ReplayReport",
    "entry_for_failure",
    "entry_for_raw",
    "entry_for_refused",
]

log = logging.getLogger(__name__)

#: Longest traceback text kept per entry, in characters (the tail is kept: it names the failing line).
MAX_TRACEBACK_CHARS = 16_000


class DeadLetterReason(StrEnum):
    """Why a dead-letter entry exists: the core's vocabulary (``enum.StrEnum``).

    Each member *is* its string (``DeadLetterReason.FAILED == "failed"``), so the stores, JSON output, the
    command line's ``--reason`` filter, the console and metrics labels all carry the plain value. Entries
    read back from a store give the member for a known value. A plug-in may record a reason of its own (a
    plain string in the raw record's ``pywats-reason`` header); such a string, or one from a database
    written by a newer version, is kept as it is rather than refused, so ``DeadLetterEntry.reason`` is
    typed ``str`` and this enum is the vocabulary the core and this distribution's plug-ins use.
    """

    #: The handler kept failing until the retry policy gave up.
    FAILED = "failed"
    #: The handler raised an exception marked unrecoverable (``UnrecoverableError``): not retried.
    UNRECOVERABLE = "unrecoverable"
    #: Parked, not failed: the handler's breaker was OPEN (or its sink unreachable); replayed when it closes.
    CIRCUIT_OPEN = "circuit_open"
    #: Raw input that could not be decoded into events.
    DECODE_ERROR = "decode_error"
    #: Raw input that no mapping rule matched (an MQTT topic or NATS subject without a rule).
    UNROUTED = "unrouted"
    #: The handler exceeded its time limit on every attempt.
    TIMEOUT = "timeout"
    #: The database refused to store the event; kept raw, as the event's JSON bytes.
    STORE_REFUSED = "store_refused"
    #: A message larger than its transport's ``max_message_size``; only its first bytes are kept.
    TOO_LARGE = "too_large"
    #: A symbolic link found in a drop folder: not followed, its target never read (``FileTransport``).
    SYMLINK_NOT_FOLLOWED = "symlink_not_followed"
    #: The broker gave up redelivering (NATS JetStream ``max_deliver`` reached) before settlement.
    MAX_DELIVER = "max_deliver"

    @classmethod
    def parse(cls, value: str) -> str:
        """The member equal to ``value``, or ``value`` itself (a plain string) when it is none of them.

        Used when an entry is built or read back, so an unknown reason (a plug-in's own, an old row) still
        loads. Never raises.
        """
        return cls._value2member_map_.get(value, value)  # type: ignore[return-value]


@dataclass(slots=True)
class DeadLetterEntry:
    """One dead-letter record: a failed (event, handler) delivery, or raw input that could not be decoded.

    Attributes:
        id: entry id (UUID string).
        reason: a ``DeadLetterReason`` (a plug-in's own reason stays a plain string).
        event: the whole event (``None`` for raw input).
        handler: the handler's name (``None`` for raw input).
        error_type: exception class name.
        error_message: exception message.
        traceback: formatted traceback text ('' when there is none).
        attempts: how many times the handler was called (0 for parked and raw entries).
        first_failure_at / last_failure_at: UTC times.
        raw_body: the undecodable bytes (raw input only).
        origin: where raw input came from (file, topic, routing key).
        transport: the transport that received it.
        headers: transport metadata of raw input.
    """

    id: str
    reason: str
    event: Event | None = None
    handler: str | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    attempts: int = 0
    first_failure_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_failure_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    raw_body: bytes | None = None
    origin: str = ""
    transport: str = ""
    headers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reason = DeadLetterReason.parse(self.reason)

    @property
    def error(self) -> str:
        """``"<error_type>: <error_message>"`` (the pyWATS document reads ``entry.error``)."""
        return f"{self.error_type}: {self.error_message}" if self.error_message else self.error_type

    def to_json_dict(self, *, include_body: bool = False) -> dict[str, Any]:
        """JSON form for ``--json`` output and the admin API; ``raw_body`` as text (or base64 when not UTF-8)
        only with ``include_body``, else its size in bytes."""
        import base64

        out: dict[str, Any] = {
            "id": self.id,
            "reason": str(self.reason),
            "handler": self.handler,
            "event": self.event.to_json_dict() if self.event is not None else None,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "first_failure_at": self.first_failure_at.isoformat(),
            "last_failure_at": self.last_failure_at.isoformat(),
            "origin": self.origin,
            "transport": self.transport,
            "raw_size": len(self.raw_body) if self.raw_body is not None else None,
        }
        if include_body:
            out["traceback"] = self.traceback
            out["headers"] = self.headers
            if self.raw_body is not None:
                try:
                    out["raw_body"] = self.raw_body.decode("utf-8")
                except UnicodeDecodeError:
                    out["raw_body_base64"] = base64.b64encode(self.raw_body).decode("ascii")
        return out


def entry_for_failure(
    event: Event,
    handler: str,
    reason: str,
    exc: BaseException | None,
    attempts: int,
    first_failure_at: datetime | None = None,
) -> DeadLetterEntry:
    """Build the entry for a delivery of ``event`` to ``handler`` that failed for good or was parked."""
    now = datetime.now(UTC)
    text = ""
    if exc is not None and exc.__traceback__ is not None:
        text = "".join(tb.format_exception(type(exc), exc, exc.__traceback__))[-MAX_TRACEBACK_CHARS:]
    return DeadLetterEntry(
        id=str(uuid.uuid4()),
        reason=reason,
        event=event,
        handler=handler,
        error_type=type(exc).__name__ if exc is not None else "",
        error_message=str(exc) if exc is not None else "",
        traceback=text,
        attempts=attempts,
        first_failure_at=first_failure_at or now,
        last_failure_at=now,
        transport=str(event.headers.get("transport", "")),
    )


def entry_for_raw(record: RawRecord) -> DeadLetterEntry:
    """Build the entry for undecodable input (reason ``decode_error`` unless the record says otherwise)."""
    reason = record.headers.get("pywats-reason", DeadLetterReason.DECODE_ERROR)
    return DeadLetterEntry(
        # A transport that can name its input stably (a file's path and bytes) passes an id, so the same
        # input dead-lettered again replaces its entry instead of adding a copy.
        id=str(record.headers.get("pywats-entry-id") or uuid.uuid4()),
        reason=str(reason),
        error_type=record.error_type,
        error_message=record.reason,
        first_failure_at=record.received_at,
        last_failure_at=record.received_at,
        raw_body=record.body,
        origin=record.origin,
        transport=record.transport,
        headers=dict(record.headers),
    )


def entry_for_refused(event: Event, error: BaseException) -> DeadLetterEntry:
    """Build the raw entry for an event the store refused to hold (reason ``store_refused``): the body is
    the event's JSON (``Event.to_json``, UTF-8 with escapes), so replaying it decodes the same event."""
    now = datetime.now(UTC)
    body = event.to_json().encode("utf-8", "backslashreplace")
    return DeadLetterEntry(
        id=str(uuid.uuid4()),
        reason=DeadLetterReason.STORE_REFUSED,
        error_type=type(error).__name__,
        error_message=str(error),
        first_failure_at=now,
        last_failure_at=now,
        raw_body=body,
        origin=f"event:{event.id}",
        transport=str(event.headers.get("transport", "")),
        headers={"pywats-decoder": "event-json", "event_type": event.type, "source": event.source},
    )


class Redelivery(Protocol):
    """What replay needs from the delivery layer (``DeliveryLayer`` implements it)."""

    def can_deliver(self, handler: str) -> bool:
        """True when ``handler`` is registered and its circuit lets calls through now."""
        ...

    def is_registered(self, handler: str) -> bool:
        """True when a handler of that name is registered."""
        ...

    async def redeliver(self, event: Event, handler: str) -> Any:
        """Run one delivery of ``event`` to ``handler`` and make it durable; returns a ``DeliveryResult``
        (``outcome``, ``reason``, ``error``, ``attempts``)."""
        ...


@dataclass
class ReplayReport:
    """Outcome of a bulk replay: how many entries were tried, succeeded (and deleted) and failed again."""

    replayed: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)


class DeadLetterQueue:
    """List, replay and purge dead letters (``bus.dead_letters``); replays parked deliveries automatically.

    Args:
        store: where entries live.
        sink: where replayed raw input is submitted (the bus's ingest interface).
        redelivery: runs one delivery to one named handler (the bus's delivery layer).
        idempotency: consult idempotency records before replaying a delivery entry.
    """

    def __init__(self, store: Store, sink: IngestSink, redelivery: Redelivery, *, idempotency: bool = True) -> None:
        self.store = store
        self._sink = sink
        self._redelivery = redelivery
        self._idempotency = idempotency
        self._replaying: dict[str, asyncio.Task[None]] = {}
        #: Automatic replay of parked deliveries runs only while True (set by the bus while it runs).
        self.active = False

    async def list(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DeadLetterEntry]:
        """Entries oldest first, optionally for one handler and/or reason."""
        return await self.store.list_dead_letters(handler=handler, reason=reason, limit=limit, offset=offset)

    async def count(self, *, handler: str | None = None, reason: str | None = None) -> int:
        """How many entries match."""
        return await self.store.count_dead_letters(handler=handler, reason=reason)

    async def get(self, entry_id: str) -> DeadLetterEntry:
        """One entry. Raises ``DeadLetterNotFoundError`` when there is none with that id."""
        return await self.store.get_dead_letter(entry_id)

    async def replay(self, entry_id: str) -> bool:
        """Replay one entry to its handler (or re-decode raw input); True if it succeeded and was deleted.

        Raises:
            DeadLetterNotFoundError: no such entry.
            BusError: the entry's handler is not registered on this bus.
        """
        return await self.replay_entry(await self.store.get_dead_letter(entry_id))

    async def replay_all(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 10_000
    ) -> ReplayReport:
        """Replay every matching entry (up to ``limit``), oldest first, one at a time."""
        report = ReplayReport()
        for entry in await self.store.list_dead_letters(handler=handler, reason=reason, limit=limit):
            report.replayed += 1
            if await self.replay_entry(entry):
                report.succeeded += 1
            else:
                report.failed += 1
                report.failed_ids.append(entry.id)
        return report

    async def replay_entry(self, entry: DeadLetterEntry) -> bool:
        """Replay ``entry`` (delivery or raw); True if it succeeded and the entry was deleted, False if it
        failed again (the entry is updated with the new attempt count and error).

        Raises:
            BusError: the entry's handler is not registered on this bus.
        """
        if entry.event is None:
            return await self._replay_raw(entry)
        name = entry.handler or ""
        if not self._redelivery.is_registered(name):
            raise BusError(f"cannot replay entry {entry.id}: handler {name!r} is not registered on this bus")
        if self._idempotency and name in (await self.store.completed_handlers([entry.event.id])).get(
            entry.event.id, ()
        ):
            await self.store.delete_dead_letters([entry.id])
            return True
        res = await self._redelivery.redeliver(entry.event, name)
        if res.outcome in ("handled", "deferred"):
            await self.store.delete_dead_letters([entry.id])
            log.info("replayed dead letter %s to handler %s", entry.id, name)
            return True
        entry.attempts += res.attempts
        entry.last_failure_at = datetime.now(UTC)
        entry.reason = res.reason
        if res.error is not None:
            entry.error_type = type(res.error).__name__
            entry.error_message = str(res.error)
        await self.store.update_dead_letter(entry)
        return False

    async def _replay_raw(self, entry: DeadLetterEntry) -> bool:
        # The trace headers the input came with (the receive span's, when traced), so the replayed
        # events' deliveries continue the original trace.
        ctx = DecodeContext(origin=entry.origin, headers={**trace_headers(entry.headers), "replayed_from": entry.id})
        try:
            decoder = get_decoder(str(entry.headers.get("pywats-decoder", "auto")))
            events = decoder(entry.raw_body or b"", ctx)
        except KeyError as exc:  # the decoder's transport is not configured in this process
            entry.last_failure_at = datetime.now(UTC)
            entry.error_message = f"cannot replay: {exc.args[0]}"
            entry.error_type = "UnknownDecoder"
            await self.store.update_dead_letter(entry)
            return False
        except DecodeError as exc:
            entry.last_failure_at = datetime.now(UTC)
            entry.error_message = exc.reason
            entry.error_type = type(exc).__name__
            await self.store.update_dead_letter(entry)
            return False
        future = await self._sink.submit(events, transport=entry.transport or "replay")
        await future
        await self.store.delete_dead_letters([entry.id])
        return True

    # -- parked deliveries -------------------------------------------------------------------------
    def schedule_parked(self, handler: str) -> None:
        """Start replaying ``handler``'s parked deliveries in the background (once at a time)."""
        if not self.active:
            return
        task = self._replaying.get(handler)
        if task is not None and not task.done():
            return
        self._replaying[handler] = asyncio.ensure_future(self._replay_parked(handler))

    async def stop_replays(self) -> None:
        """Stop automatic replay (at bus stop); an interrupted replay leaves its entry parked."""
        self.active = False
        tasks = list(self._replaying.values())
        self._replaying.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _replay_parked(self, name: str) -> None:
        """Replay deliveries parked while the circuit was open, oldest first, until none are left or the
        breaker stops letting calls through."""
        try:
            while self.active:
                entries = await self.store.list_dead_letters(
                    handler=name, reason=DeadLetterReason.CIRCUIT_OPEN, limit=100
                )
                if not entries:
                    return
                for entry in entries:
                    if not self.active or not self._redelivery.can_deliver(name):
                        return
                    if not await self.replay_entry(entry) and entry.reason == DeadLetterReason.CIRCUIT_OPEN:
                        return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("replay of parked deliveries for handler %s failed", name)

    async def purge(
        self,
        ids: Sequence[str] | None = None,
        *,
        handler: str | None = None,
        reason: str | None = None,
        everything: bool = False,
    ) -> int:
        """Delete entries: those in ``ids``, or all matching ``handler``/``reason`` (``everything=True`` is
        needed to delete every entry with no filter). Returns how many were deleted.

        Raises:
            ValueError: no ids, no filter and ``everything`` is False.
        """
        if ids is not None:
            return await self.store.delete_dead_letters(list(ids))
        if handler is None and reason is None and not everything:
            raise ValueError("purge needs ids, a handler or reason filter, or everything=True")
        total = 0
        while True:
            batch = await self.store.list_dead_letters(handler=handler, reason=reason, limit=1000)
            if not batch:
                return total
            total += await self.store.delete_dead_letters([e.id for e in batch])
