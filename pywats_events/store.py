"""The durable store interface (dead-letter queue, event store, idempotency records) and its in-memory form.

``SQLStore`` (``sql_store.py``) is the durable implementation on SQLAlchemy: SQLite by default,
PostgreSQL when several bus processes share work. ``MemoryStore`` keeps everything in dicts: for tests
and for a bus that needs no durability. ``open_store(url)`` picks one from a URL or file path.

Write methods (``mark_completed``, ``append_events``, ``add_dead_letters``, ``write``) return an awaitable
that resolves once the write is durable (committed), in the order the writes were queued. Durable
implementations group concurrent writes into one transaction (group commit), so callers that do not need
to wait at once may collect the awaitable and await it later.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

# The entry and its reasons live with the dead-letter queue; re-exported here, where users had them.
from .dead_letter import DeadLetterEntry, DeadLetterReason
from .errors import DeadLetterNotFoundError, StoreError
from .event import Event, severity_rank
from .pattern import compile_type_pattern

__all__ = [
    "COMPLETED",
    "DeadLetterEntry",
    "DeadLetterQuery",
    "DeadLetterReason",
    "EventQuery",
    "MemoryStore",
    "Store",
    "StoreWrite",
    "StoredEvent",
]


@dataclass(frozen=True, slots=True)
class StoreWrite:
    """Rows a handler asks the bus to write to the bus's store for it (returned from ``handle``).

    The bus commits them in the same transaction as the delivery's idempotency record, and settles the
    transport message only after that commit: the handler's effect and the record that vouches for it
    are durable together or not at all. Used by ``EventStoreHandler``.

    Attributes:
        events: events for the event store.
    """

    events: Sequence[Event] = ()


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filter for ``Store.query_events``.

    Attributes:
        type_pattern: event-type pattern (``asset.*``); ``None`` for all.
        category: exact category; ``None`` for all.
        min_severity: lowest severity included (``warning`` includes error and critical).
        since / until: timestamp range, inclusive start, exclusive end (aware datetimes).
        source: exact source.
        acknowledged: ``True`` only acknowledged, ``False`` only unacknowledged, ``None`` both.
        correlation_id: exact correlation id (indexed in the SQL store: column ``events.correlation_id``).
        event_id: exact event id (the one event, or none).
        limit: at most this many (1..100000); ``offset``: skip this many. Ordered by timestamp, oldest first,
            or newest first with ``newest_first`` (so the newest page of a large store is one indexed read).
        after: keyset cursor ``(timestamp, id)`` of the last row of the previous page: only rows after it
            in the query's order (older ones with ``newest_first``). A deep page then costs what the first
            page costs, where ``offset`` reads and skips every row before it.
        scan_limit: examine only the first ``scan_limit`` stored events in the query's order after the
            cursor (ignoring the other filters; ties at the boundary time included), then filter them:
            bounds what a filter no index serves costs (count, >= 1; ``None``: no bound).
    """

    type_pattern: str | None = None
    category: str | None = None
    min_severity: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None
    acknowledged: bool | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = False
    correlation_id: str | None = None
    event_id: str | None = None
    after: tuple[datetime, str] | None = None
    scan_limit: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    """Filter of ``Store.query_dead_letters``: dead letters newest first by ``(first_failure_at, id)``.

    Attributes:
        handler: only this handler's entries; ``None`` for all.
        reasons: only entries with one of these reasons (``DeadLetterReason`` values); ``None`` for all.
        event_id: only entries of the event with this id.
        before: keyset cursor ``(first_failure_at, id)`` of the last entry of the previous page: only
            entries older than it.
        limit: at most this many (count, >= 1).
    """

    handler: str | None = None
    reasons: tuple[str, ...] | None = None
    event_id: str | None = None
    before: tuple[datetime, str] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as kept by the event store, with its acknowledgement state."""

    event: Event
    stored_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """The event's JSON form plus ``stored_at``, ``acknowledged_at``, ``acknowledged_by``."""
        out = self.event.to_json_dict()
        out["stored_at"] = self.stored_at.isoformat()
        out["acknowledged_at"] = self.acknowledged_at.isoformat() if self.acknowledged_at else None
        out["acknowledged_by"] = self.acknowledged_by
        return out


class Store(abc.ABC):
    """Storage for dead letters, stored events and idempotency records. See the module docstring."""

    #: Printable location without credentials (``sqlite:///events.db``, ``memory://``).
    url: str = ""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Create tables if needed and get ready. Raises ``StoreError`` when the database is unusable."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush pending writes and release connections."""

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def write(
        self,
        *,
        completed: Sequence[tuple[str, str]] = (),
        events: Sequence[Event] = (),
        dead_letters: Sequence[DeadLetterEntry] = (),
    ) -> Awaitable[None]:
        """Queue idempotency records, events and dead-letter entries that must be durable together; the
        awaitable resolves once all are committed. The bus makes one such call per event it handled.

        The default queues the three writes one after the other and relies on their awaitables resolving in
        queue order (as this interface requires of ``mark_completed``, ``append_events`` and
        ``add_dead_letters``); durable stores write them in one transaction.
        """
        writes = (
            self.append_events(events) if events else COMPLETED,
            self.add_dead_letters(dead_letters) if dead_letters else COMPLETED,
            self.mark_completed(completed) if completed else COMPLETED,
        )
        last: Awaitable[None] = COMPLETED
        for written in writes:
            if written is not COMPLETED:
                last = written
        return last

    # -- idempotency ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def completed_handlers(self, event_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each of ``event_ids`` that has records, the set of handler names that already succeeded."""

    @abc.abstractmethod
    def mark_completed(self, records: Sequence[tuple[str, str]]) -> Awaitable[None]:
        """Record that handler ``name`` succeeded for event ``id``, for each ``(id, name)``; durable when
        the returned awaitable resolves. Recording an existing pair again is not an error."""

    # -- event store ---------------------------------------------------------------------------
    @abc.abstractmethod
    def append_events(self, events: Sequence[Event]) -> Awaitable[None]:
        """Store ``events`` (an id already stored is left as it is); durable when the awaitable resolves."""

    @abc.abstractmethod
    async def query_events(self, query: EventQuery) -> list[StoredEvent]:
        """Stored events matching ``query``, oldest first (newest first with ``query.newest_first``)."""

    async def scan_edge(self, query: EventQuery) -> datetime | None:
        """The timestamp where ``query.scan_limit`` ends: that of the ``scan_limit``-th stored event in the
        query's order after its cursor (other filters ignored), or ``None`` when there are no more than
        ``scan_limit`` such events (the bound cuts nothing off).

        This default reads that row with an offset; ``SQLStore`` reads the timestamp index alone.

        Raises:
            ValueError: ``query.scan_limit`` is not set.
            StoreError: the store cannot be read.
        """
        if query.scan_limit is None:
            raise ValueError("scan_edge needs query.scan_limit")
        window = EventQuery(after=query.after, newest_first=query.newest_first, offset=query.scan_limit - 1, limit=1)
        rows = await self.query_events(window)
        return rows[0].event.timestamp if rows else None

    @abc.abstractmethod
    async def count_events(self, query: EventQuery | None = None) -> int:
        """How many stored events match ``query`` (limit and offset ignored); all when ``None``."""

    @abc.abstractmethod
    async def acknowledge_events(self, ids: Sequence[str], *, by: str | None = None) -> int:
        """Mark events acknowledged (by an operator or system ``by``); returns how many changed."""

    @abc.abstractmethod
    async def purge_events(
        self,
        *,
        older_than_days: float | None = None,
        keep_at_most: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Delete events older than ``older_than_days`` days (by timestamp), then the oldest beyond
        ``keep_at_most``, and those in ``ids``; also drops idempotency records older than
        ``older_than_days``. Returns how many events were deleted."""

    # -- dead letters --------------------------------------------------------------------------
    @abc.abstractmethod
    def add_dead_letters(self, entries: Sequence[DeadLetterEntry]) -> Awaitable[None]:
        """Store entries; durable when the awaitable resolves."""

    @abc.abstractmethod
    async def list_dead_letters(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DeadLetterEntry]:
        """Entries, oldest first, optionally only for one handler and/or reason."""

    @abc.abstractmethod
    async def count_dead_letters(self, *, handler: str | None = None, reason: str | None = None) -> int:
        """How many entries match."""

    @abc.abstractmethod
    async def get_dead_letter(self, entry_id: str) -> DeadLetterEntry:
        """One entry. Raises ``DeadLetterNotFoundError`` if there is none with that id."""

    @abc.abstractmethod
    async def update_dead_letter(self, entry: DeadLetterEntry) -> None:
        """Replace the stored entry with the same id (after a failed replay: attempts, last failure).
        Raises ``DeadLetterNotFoundError`` if it is gone."""

    @abc.abstractmethod
    async def delete_dead_letters(self, entry_ids: Sequence[str]) -> int:
        """Delete entries by id; returns how many were deleted."""

    async def query_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetterEntry]:
        """Entries matching ``query``, newest first by ``(first_failure_at, id)``, at most ``query.limit``.

        This default reads every matching entry through ``list_dead_letters`` (fine for small stores);
        ``MemoryStore`` and ``SQLStore`` answer it with one indexed read (keyset paging).

        Raises:
            StoreError: the store cannot be read.
        """
        rows: list[DeadLetterEntry] = []
        for reason in query.reasons if query.reasons is not None else (None,):
            offset = 0
            while True:
                chunk = await self.list_dead_letters(handler=query.handler, reason=reason, limit=1000, offset=offset)
                rows += [e for e in chunk if _dead_matches(e, query)]
                if len(chunk) < 1000:
                    break
                offset += 1000
        rows.sort(key=lambda e: (e.first_failure_at, e.id), reverse=True)
        return rows[: query.limit]

    # -- id prefixes (the command line accepts abbreviated ids, as git does) ---------------------
    async def event_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids of stored events starting with ``prefix`` (case-sensitive), ascending, at most ``limit``.

        Raises:
            StoreError: this store cannot look ids up by prefix.
        """
        raise StoreError(f"{type(self).__name__} cannot look up event ids by prefix")

    async def dead_letter_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids of dead-letter entries starting with ``prefix`` (case-sensitive), ascending, at most ``limit``.

        Raises:
            StoreError: this store cannot look ids up by prefix.
        """
        raise StoreError(f"{type(self).__name__} cannot look up dead-letter ids by prefix")


def _matches(stored: StoredEvent, q: EventQuery) -> bool:
    ev = stored.event
    if q.type_pattern and not compile_type_pattern(q.type_pattern)(ev.type):
        return False
    if q.category and ev.category != q.category:
        return False
    if q.min_severity and ev.severity_rank < severity_rank(q.min_severity):
        return False
    if q.since and ev.timestamp < q.since:
        return False
    if q.until and ev.timestamp >= q.until:
        return False
    if q.source and ev.source != q.source:
        return False
    if q.acknowledged is not None and (stored.acknowledged_at is not None) != q.acknowledged:
        return False
    if q.correlation_id is not None and ev.correlation_id != q.correlation_id:
        return False
    if q.event_id is not None and ev.id != q.event_id:
        return False
    if q.after is not None:
        key, cursor = (ev.timestamp, ev.id), q.after
        if (key >= cursor) if q.newest_first else (key <= cursor):
            return False
    return True


def _dead_matches(e: DeadLetterEntry, q: DeadLetterQuery) -> bool:
    if q.handler is not None and e.handler != q.handler:
        return False
    if q.reasons is not None and e.reason not in q.reasons:
        return False
    if q.event_id is not None and (e.event is None or e.event.id != q.event_id):
        return False
    return q.before is None or (e.first_failure_at, e.id) < q.before


class _Completed:
    """An awaitable that is already done: what in-memory writes return (no future, no loop needed)."""

    __slots__ = ()

    def __await__(self):  # type: ignore[no-untyped-def]
        return iter(())

    def __repr__(self) -> str:
        return "COMPLETED"


#: Returned by writes that are durable (or as durable as they get) at once.
COMPLETED: Awaitable[None] = _Completed()


class MemoryStore(Store):
    """Everything in process memory: fast, lost on exit. For tests and throwaway buses."""

    url = "memory://"

    def __init__(self, max_idempotency_records: int = 200_000) -> None:
        self.max_idempotency_records = max_idempotency_records
        self._completed: dict[str, set[str]] = {}
        self._completed_at: dict[str, datetime] = {}
        self._events: dict[str, StoredEvent] = {}
        self._dead: dict[str, DeadLetterEntry] = {}

    async def completed_handlers(self, event_ids: Sequence[str]) -> dict[str, set[str]]:
        return {i: set(self._completed[i]) for i in event_ids if i in self._completed}

    def mark_completed(self, records: Sequence[tuple[str, str]]) -> Awaitable[None]:
        now = datetime.now(UTC)
        done = self._completed
        for event_id, handler in records:
            names = done.get(event_id)
            if names is None:
                names = done[event_id] = set()
                self._completed_at[event_id] = now
                if len(done) > self.max_idempotency_records:  # bounded: forget the oldest event
                    oldest = next(iter(done))
                    del done[oldest]
                    self._completed_at.pop(oldest, None)
            names.add(handler)
        return COMPLETED

    def append_events(self, events: Sequence[Event]) -> Awaitable[None]:
        now = datetime.now(UTC)
        for ev in events:
            self._events.setdefault(ev.id, StoredEvent(event=ev, stored_at=now))
        return COMPLETED

    async def query_events(self, query: EventQuery) -> list[StoredEvent]:
        candidates: Iterable[StoredEvent] = self._events.values()
        if query.scan_limit is not None:
            window = EventQuery(after=query.after, newest_first=query.newest_first)
            ordered = sorted(
                (s for s in candidates if _matches(s, window)),
                key=lambda s: (s.event.timestamp, s.event.id),
                reverse=query.newest_first,
            )
            if len(ordered) > query.scan_limit:
                edge = ordered[query.scan_limit - 1].event.timestamp
                newest = query.newest_first
                ordered = [s for s in ordered if (s.event.timestamp >= edge if newest else s.event.timestamp <= edge)]
            candidates = ordered
        rows = sorted(
            (s for s in candidates if _matches(s, query)),
            key=lambda s: (s.event.timestamp, s.event.id),
            reverse=query.newest_first,
        )
        return rows[query.offset : query.offset + query.limit]

    async def count_events(self, query: EventQuery | None = None) -> int:
        if query is None:
            return len(self._events)
        return sum(1 for s in self._events.values() if _matches(s, query))

    async def acknowledge_events(self, ids: Sequence[str], *, by: str | None = None) -> int:
        now = datetime.now(UTC)
        n = 0
        for i in ids:
            s = self._events.get(i)
            if s is not None and s.acknowledged_at is None:
                self._events[i] = replace(s, acknowledged_at=now, acknowledged_by=by)
                n += 1
        return n

    async def purge_events(
        self,
        *,
        older_than_days: float | None = None,
        keep_at_most: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        doomed: set[str] = set(i for i in (ids or ()) if i in self._events)
        if older_than_days is not None:
            cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
            doomed |= {i for i, s in self._events.items() if s.event.timestamp < cutoff}
            for i in [i for i, t in self._completed_at.items() if t < cutoff]:
                self._completed.pop(i, None)
                self._completed_at.pop(i, None)
        if keep_at_most is not None:
            rest = sorted((s for i, s in self._events.items() if i not in doomed), key=lambda s: s.event.timestamp)
            excess = len(rest) - keep_at_most
            if excess > 0:
                doomed |= {s.event.id for s in rest[:excess]}
        for i in doomed:
            del self._events[i]
        return len(doomed)

    def add_dead_letters(self, entries: Sequence[DeadLetterEntry]) -> Awaitable[None]:
        for e in entries:
            self._dead[e.id] = e
        return COMPLETED

    def _dead_matching(self, handler: str | None, reason: str | None) -> list[DeadLetterEntry]:
        return [
            e
            for e in self._dead.values()
            if (handler is None or e.handler == handler) and (reason is None or e.reason == reason)
        ]

    async def list_dead_letters(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DeadLetterEntry]:
        rows = sorted(self._dead_matching(handler, reason), key=lambda e: e.first_failure_at)
        return rows[offset : offset + limit]

    async def count_dead_letters(self, *, handler: str | None = None, reason: str | None = None) -> int:
        return len(self._dead_matching(handler, reason))

    async def query_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetterEntry]:
        rows = sorted(
            (e for e in self._dead.values() if _dead_matches(e, query)),
            key=lambda e: (e.first_failure_at, e.id),
            reverse=True,
        )
        return rows[: query.limit]

    async def get_dead_letter(self, entry_id: str) -> DeadLetterEntry:
        try:
            return self._dead[entry_id]
        except KeyError:
            raise DeadLetterNotFoundError(f"no dead-letter entry with id {entry_id!r}") from None

    async def update_dead_letter(self, entry: DeadLetterEntry) -> None:
        if entry.id not in self._dead:
            raise DeadLetterNotFoundError(f"no dead-letter entry with id {entry.id!r}")
        self._dead[entry.id] = entry

    async def delete_dead_letters(self, entry_ids: Sequence[str]) -> int:
        return sum(1 for i in entry_ids if self._dead.pop(i, None) is not None)

    async def event_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return sorted(i for i in self._events if i.startswith(prefix))[:limit]

    async def dead_letter_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        return sorted(i for i in self._dead if i.startswith(prefix))[:limit]
