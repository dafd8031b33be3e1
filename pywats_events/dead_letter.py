"""The dead-letter queue: failed deliveries and undecodable input, listable, replayable and purgeable.

Entries live in the bus's store (durable with ``SQLStore``). Replaying a delivery entry calls only the
handler that failed; on success the entry is deleted and the idempotency record written. Replaying a raw
entry decodes its bytes again (after a fix to a decoder or a mapping) and routes the events.
"""

from __future__ import annotations

import traceback as tb
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .event import Event
from .store import DeadLetterEntry, DeadLetterReason, Store
from .transports.base import RawRecord

__all__ = ["DeadLetterEntry", "DeadLetterQueue", "DeadLetterReason", "ReplayReport"]

#: Longest traceback text kept per entry, in characters (the tail is kept: it names the failing line).
MAX_TRACEBACK_CHARS = 16_000


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


@dataclass
class ReplayReport:
    """Outcome of a bulk replay: how many entries were tried, succeeded (and deleted) and failed again."""

    replayed: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_ids: list[str] = field(default_factory=list)


class DeadLetterQueue:
    """List, replay and purge dead letters (``bus.dead_letters``).

    Args:
        store: where entries live.
        replayer: the bus's replay of one entry; returns True when it succeeded (entry deleted).
    """

    def __init__(self, store: Store, replayer: Callable[[DeadLetterEntry], Awaitable[bool]]) -> None:
        self.store = store
        self._replayer = replayer

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
        return await self._replayer(await self.store.get_dead_letter(entry_id))

    async def replay_all(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 10_000
    ) -> ReplayReport:
        """Replay every matching entry (up to ``limit``), oldest first, one at a time."""
        report = ReplayReport()
        for entry in await self.store.list_dead_letters(handler=handler, reason=reason, limit=limit):
            report.replayed += 1
            if await self._replayer(entry):
                report.succeeded += 1
            else:
                report.failed += 1
                report.failed_ids.append(entry.id)
        return report

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
