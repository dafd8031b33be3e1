"""The durable store on SQLAlchemy 2 (async): SQLite by default, PostgreSQL for several bus processes.

``open_store(url_or_path)`` turns what a user types after ``--db`` (or sets in ``PYWATS_EVENTS_DB``) into a
store: a file path or ``sqlite:///`` URL gives a SQLite file (aiosqlite), ``postgresql://`` gives
PostgreSQL (asyncpg), ``memory://`` gives a ``MemoryStore``.

Writes that sit on the bus's hot path (``mark_completed``, ``append_events``, ``add_dead_letters``) use
group commit: each call only queues its rows and returns a future; one background writer task takes
everything queued, writes it in one transaction, commits, and resolves the futures. The queue is FIFO, so a
resolved future implies every write queued before it is committed. The writer runs SQL compiled once from
the Core statements below on its own driver connection (aiosqlite / asyncpg) with parameter tuples built
here, skipping SQLAlchemy's per-statement cursor, per-row bind processing and reset-on-return (on aiosqlite
each of those is a hop to the connection's thread). PostgreSQL gets one ``executemany`` per table (asyncpg
pipelines it); SQLite gets one ``INSERT ... SELECT FROM json_each(?) ON CONFLICT DO NOTHING`` per table,
so the whole batch runs in C with the GIL released instead of re-taking the GIL for every row while the
event loop competes for it. Concurrent ``completed_handlers`` calls are merged into one query on a second
dedicated connection.

Administrative calls (queries, acknowledge, purge, dead-letter reads and edits) first wait for writes
queued before them, so they see the caller's own writes; ``completed_handlers`` does not wait (it is on
the hot path, and a record whose future has not resolved is not durable yet anyway).

Timestamps are stored in UTC (``timestamptz`` on PostgreSQL, fixed-width UTC text on SQLite, which sorts
in time order) and always come back as timezone-aware UTC datetimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic_core import PydanticSerializationError
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import _json, jsonsafe
from .errors import DeadLetterNotFoundError, StoreError, StoreRefusedError, StoreSchemaError
from .event import Event, Severity, severity_rank
from .pattern import pattern_to_sql_like, validate_type_pattern
from .store import DeadLetterEntry, DeadLetterQuery, EventQuery, MemoryStore, Store, StoredEvent

if TYPE_CHECKING:  # alembic is imported when a store opens, not with this module
    from .migrations import SchemaState

__all__ = ["CORRELATION_ID_CHARS", "DEFAULT_DB", "ENV_VAR", "SQLStore", "UTCDateTime", "driver_url_of", "open_store"]

#: The store used when neither ``--db`` nor ``PYWATS_EVENTS_DB`` says otherwise (relative to the cwd).
DEFAULT_DB = "./pywats-events.db"
#: Environment variable read by ``open_store(None)``.
ENV_VAR = "PYWATS_EVENTS_DB"

#: Characters of an event's correlation id kept in the indexed ``events.correlation_id`` column; a longer
#: id is matched on that prefix through the index and then exactly against the stored event JSON.
CORRELATION_ID_CHARS = 200

#: Bounds of a stored timestamp, for an open-ended comparison.
_TIME_MIN = datetime(1, 1, 2, tzinfo=UTC)
_TIME_MAX = datetime(9999, 12, 30, tzinfo=UTC)

#: Ids per ``IN (...)`` list: below SQLite's oldest bound-parameter limit (999).
_CHUNK = 500

_SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}
_PG_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}


# -- schema ------------------------------------------------------------------------------------------


class _UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (naive input is taken to be UTC already)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif value.utcoffset():
            value = value.astimezone(UTC)
        # SQLite keeps text; dropping the (UTC) zone keeps it fixed-width, so text order is time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: Public name of the column type (for plug-in tables in the store's database: same text form on SQLite,
#: so their rows sort and compare like the store's own timestamps).
UTCDateTime = _UTCDateTime

_metadata = sa.MetaData()

_events = sa.Table(
    "events",
    _metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False, index=True),
    sa.Column("category", sa.String(200), nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("timestamp", _UTCDateTime, nullable=False, index=True),
    sa.Column("body", sa.JSON, nullable=False),
    # The event's correlation id (its first CORRELATION_ID_CHARS characters; revision 0002), for the
    # correlation filter. Before ``stored_at``: the group-commit writer appends that column's value last.
    sa.Column("correlation_id", sa.String(200), nullable=True, index=True),
    sa.Column("stored_at", _UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", _UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    # Revision 0003: one category's time range in timestamp order, severity answered from the index.
    sa.Index("ix_events_category_timestamp", "category", "timestamp", "severity"),
)

_idempotency = sa.Table(
    "idempotency",
    _metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("handler", sa.String(200), primary_key=True),
    sa.Column("completed_at", _UTCDateTime, nullable=False, index=True),
    # The primary key is the table: one B-tree insert per record instead of two (SQLite only).
    sqlite_with_rowid=False,
)

_dead_letters = sa.Table(
    "dead_letters",
    _metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("reason", sa.String(50), nullable=False, index=True),
    sa.Column("handler", sa.String(200), nullable=True),
    sa.Column("event", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("error_type", sa.Text, nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    sa.Column("traceback", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failure_at", _UTCDateTime, nullable=False, index=True),
    sa.Column("last_failure_at", _UTCDateTime, nullable=False),
    sa.Column("raw_body", sa.LargeBinary, nullable=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("transport", sa.Text, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
    # Revision 0003: one handler's entries in the listing's order (first failure, then id).
    sa.Index("ix_dead_letters_handler_first_failure", "handler", "first_failure_at", "id"),
)


def _safe_text(value: str) -> str:
    """``value`` in a form both databases hold as text: PostgreSQL refuses U+0000 in text columns, and a
    lone surrogate (possible in decoded JSON, ``"\\ud800"``) has no UTF-8 form at all. U+0000 becomes the
    six characters ``\\u0000`` and a lone surrogate its ``\\udXXX`` escape: readable, and the same input
    always gives the same text, so idempotency lookups still match. The event's JSON body keeps the exact
    original (JSON escapes both), so the stored event is recovered unchanged."""
    if not isinstance(value, str):  # not text (a bug elsewhere): the database gives the precise refusal
        return value
    if value.isascii():
        return value.replace("\x00", "\\u0000") if "\x00" in value else value
    if "\x00" in value:
        value = value.replace("\x00", "\\u0000")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _plain(value: str) -> bool:
    return value.isascii() and "\x00" not in value


def _safe_pairs(records: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Idempotency records with ``_safe_text`` applied (the list as it is when nothing needs it)."""
    out = list(records)
    for i, (event_id, handler) in enumerate(out):
        if not (_plain(event_id) and _plain(handler)):
            out[i] = (_safe_text(event_id), _safe_text(handler))
    return out


def _correlation_key(correlation_id: str | None) -> str | None:
    """The ``events.correlation_id`` column value of a correlation id."""
    if correlation_id is None:
        return None
    return _safe_text(correlation_id)[:CORRELATION_ID_CHARS]


def _event_json(ev: Event) -> str:
    """The event's JSON form (the same document as ``Event.to_json_dict``; pydantic's serializer is several
    times faster than ``json.dumps``); a payload value pydantic cannot serialize is written with ``str``."""
    try:
        return ev.model_dump_json()
    except PydanticSerializationError:
        return _json_dumps(ev.to_json_dict())


def _json_rows(rows: list[tuple[Any, ...]]) -> str:
    # Non-ASCII written as is: text goes to SQLite as UTF-8, no \u escapes to decode there. orjson when
    # installed: this encodes every row of a group commit (event rows hold their JSON body as a string).
    return _json.dumps_compact(rows)


def _json_dumps(value: Any) -> str:
    # ``default=str`` as in Event.to_json: a payload value JSON cannot hold is written as text, not lost;
    # non-finite floats as "NaN"/"Infinity"/"-Infinity" (jsonsafe), never bare tokens.
    return jsonsafe.dumps(value)


# -- URLs --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    driver_url: URL | None  # None: memory store
    display: str
    password: str | None


def _resolve(url_or_path: str | None) -> _Target:
    """Translate a ``--db`` value to the async driver URL and its printable form.

    Raises:
        StoreError: unknown scheme, malformed URL, or an in-memory SQLite URL.
    """
    raw = (url_or_path or "").strip() or os.environ.get(ENV_VAR, "").strip() or DEFAULT_DB
    if raw.lower() == "memory://" or raw.lower() == "memory:":
        return _Target(None, "memory://", None)
    if "://" not in raw:
        path = str(Path(raw).expanduser())
        return _Target(URL.create("sqlite+aiosqlite", database=path), f"sqlite:///{path}", None)
    scheme = raw.split("://", 1)[0].lower()
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise StoreError(f"malformed database URL {_strip_credentials(raw)!r}: {exc}") from None
    if scheme in _SQLITE_SCHEMES:
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise StoreError("an in-memory SQLite database is not supported; use 'memory://' instead")
        database = str(Path(database).expanduser())
        return _Target(url.set(drivername="sqlite+aiosqlite", database=database), f"sqlite:///{database}", None)
    if scheme in _PG_SCHEMES:
        url = url.set(drivername="postgresql+asyncpg")
        display = url.set(drivername="postgresql").render_as_string(hide_password=True)
        return _Target(url, display, url.password)
    raise StoreError(
        f"unsupported database URL scheme {scheme!r}; use a file path, sqlite:///<path>, "
        "postgresql://user@host/db or memory://"
    )


def driver_url_of(url_or_path: str | None) -> URL | None:
    """The async SQLAlchemy URL (aiosqlite / asyncpg, password included) that ``open_store`` would use for
    ``url_or_path`` (same rules: a path, ``sqlite:///``, ``postgresql://``, ``$PYWATS_EVENTS_DB``, the
    default file), or ``None`` for ``memory://``. For plug-ins keeping their own tables in the store's
    database on their own connection pool.

    Raises:
        StoreError: unknown scheme, malformed URL, or an in-memory SQLite URL.
    """
    return _resolve(url_or_path).driver_url


def _strip_credentials(raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return raw


def open_store(url_or_path: str | None = None) -> Store:
    """Make the store named by ``url_or_path`` (not opened yet: ``await store.open()`` or ``async with``).

    Args:
        url_or_path: a file path (``./events.db``, ``/var/lib/x.db``), ``sqlite:///rel.db``,
            ``sqlite:////abs/path.db``, ``postgresql://user:pw@host:5432/db`` (also ``postgres://`` and
            ``postgresql+asyncpg://``) or ``memory://``. ``None`` or empty: the ``PYWATS_EVENTS_DB``
            environment variable, else ``./pywats-events.db``.

    Returns:
        A ``MemoryStore`` for ``memory://``, else a ``SQLStore``.

    Raises:
        StoreError: the scheme is unknown or the URL is malformed (the message names the scheme; it never
            contains a password).
    """
    target = _resolve(url_or_path)
    if target.driver_url is None:
        return MemoryStore()
    return SQLStore(url_or_path)


# -- group commit ------------------------------------------------------------------------------------

_IDEM, _EVENT, _DEAD, _MARK = 0, 1, 2, 3


@dataclass(slots=True)
class _Write:
    kind: int
    rows: list[tuple[Any, ...]]
    future: asyncio.Future[None]
    #: Rows for other tables that must commit in the same transaction (``SQLStore.write``).
    more: tuple[tuple[int, list[tuple[Any, ...]]], ...] = ()

    @property
    def size(self) -> int:
        return len(self.rows) + sum(len(rows) for _, rows in self.more)


@dataclass(slots=True)
class _Lookup:
    ids: Sequence[str]
    future: asyncio.Future[dict[str, set[str]]]


def _ts_sqlite(value: datetime) -> str:
    """UTC text as SQLAlchemy's SQLite ``DATETIME`` writes it (fixed width, so text order is time order)."""
    if value.tzinfo is UTC:  # the usual case (Event timestamps, datetime.now(UTC)): drop "+00:00"
        return value.isoformat(" ", "microseconds")[:26]
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _ts_pg(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Rows:
    """Builds driver parameter tuples (insert column order) for one dialect, bypassing SQLAlchemy's
    per-row bind processing on the group-commit path; the text matches what SQLAlchemy writes and reads.

    Idempotency and event rows leave out their last column (``completed_at``, ``stored_at``): the writer
    adds the commit time of the batch, which saves a clock read and a format per call.
    """

    def __init__(self, sqlite: bool) -> None:
        self.ts: Callable[[datetime], Any] = _ts_sqlite if sqlite else _ts_pg

    def event(self, ev: Event) -> tuple[Any, ...]:
        eid, etype, source = ev.id, ev.type, ev.source
        if not (_plain(eid) and _plain(etype) and _plain(source)):
            eid, etype, source = _safe_text(eid), _safe_text(etype), _safe_text(source)
        return (
            eid,
            etype,
            _safe_text(ev.category),
            source,
            ev.severity_rank,
            self.ts(ev.timestamp),
            _event_json(ev),
            _correlation_key(ev.correlation_id),
        )

    def dead_letter(self, e: DeadLetterEntry) -> tuple[Any, ...]:
        return (
            e.id,
            _safe_text(e.reason),
            _safe_text(e.handler) if e.handler is not None else None,
            _json_dumps(e.event.to_json_dict()) if e.event is not None else None,
            _safe_text(e.error_type),
            _safe_text(e.error_message),
            _safe_text(e.traceback),
            e.attempts,
            self.ts(e.first_failure_at),
            self.ts(e.last_failure_at),
            e.raw_body,
            _safe_text(e.origin),
            _safe_text(e.transport),
            _json_dumps(e.headers),
        )


def _dead_values(e: DeadLetterEntry) -> dict[str, Any]:
    """Column values of an entry for SQLAlchemy statements (which do their own type processing)."""
    return {
        "reason": _safe_text(e.reason),
        "handler": _safe_text(e.handler) if e.handler is not None else None,
        "event": e.event.to_json_dict() if e.event is not None else None,
        "error_type": _safe_text(e.error_type),
        "error_message": _safe_text(e.error_message),
        "traceback": _safe_text(e.traceback),
        "attempts": e.attempts,
        "first_failure_at": e.first_failure_at,
        "last_failure_at": e.last_failure_at,
        "raw_body": e.raw_body,
        "origin": _safe_text(e.origin),
        "transport": _safe_text(e.transport),
        "headers": e.headers,
    }


def _dead_entry(row: Any) -> DeadLetterEntry:
    m = row._mapping
    return DeadLetterEntry(
        id=m["id"],
        reason=m["reason"],
        event=Event.from_json_dict(m["event"]) if m["event"] is not None else None,
        handler=m["handler"],
        error_type=m["error_type"],
        error_message=m["error_message"],
        traceback=m["traceback"],
        attempts=m["attempts"],
        first_failure_at=m["first_failure_at"],
        last_failure_at=m["last_failure_at"],
        raw_body=bytes(m["raw_body"]) if m["raw_body"] is not None else None,
        origin=m["origin"],
        transport=m["transport"],
        headers=m["headers"] or {},
    )


def _type_conditions(pattern: str, sqlite: bool) -> list[sa.ColumnElement[bool]]:
    """SQL conditions for an event-type pattern, shaped for the indexes: an exact type is an equality
    (``ix_events_type``); a pattern whose first segment is literal (``test.*``, ``CFX.Production.*``) also
    names its category, since ``Event.category`` is always the type's first segment, so
    ``ix_events_category_timestamp`` reads only that category's time range. Matching is case-sensitive
    on both databases, as ``pywats_events.pattern`` defines it: SQLite gets ``GLOB`` (its ``LIKE``
    ignores ASCII case), PostgreSQL ``LIKE``.

    Raises:
        ValueError: the pattern is invalid.
    """
    c = _events.c
    if "*" not in pattern and "?" not in pattern:
        validate_type_pattern(pattern)
        return [c.type == _safe_text(pattern)]
    out: list[sa.ColumnElement[bool]] = []
    head, dot, _rest = pattern.partition(".")
    if dot and "*" not in head and "?" not in head:
        out.append(c.category == _safe_text(head))
    if sqlite:
        # GLOB's own wildcards are ours; "[" opens a character class there, so a literal one is "[[]".
        out.append(c.type.op("GLOB")(_safe_text(pattern).replace("[", "[[]")))
    else:
        out.append(c.type.like(pattern_to_sql_like(_safe_text(pattern)), escape="\\"))
    return out


_BODY_KEYS = frozenset(
    ("id", "type", "source", "timestamp", "category", "severity", "payload", "correlation_id", "causation_id",
     "subjects", "tags", "headers")
)
_SEVERITIES = {s.value: s for s in Severity}


def _stored_event(data: dict[str, Any]) -> Event:
    """An event from a body this store wrote (``Event.model_dump_json``): built with ``Event.trusted``
    (no re-validation, pages of query results are read often). A body of any other shape (edited by
    hand, written by another version) goes through ``Event.from_json_dict``, which validates it."""
    try:
        if (
            data.keys() <= _BODY_KEYS
            and isinstance(data.get("type"), str)
            and isinstance(data.get("id"), str)
            and isinstance(data.get("source"), str)
            and isinstance(data.get("payload"), dict)
            and isinstance(data.get("headers", {}), dict)
        ):
            ts = datetime.fromisoformat(data["timestamp"])
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            elif ts.utcoffset():
                ts = ts.astimezone(UTC)
            return Event.trusted(
                id=data["id"],
                type=data["type"],
                source=data["source"],
                timestamp=ts,
                payload=data["payload"],
                correlation_id=data.get("correlation_id"),
                causation_id=data.get("causation_id"),
                severity=_SEVERITIES[data["severity"]],
                subjects=tuple(data.get("subjects") or ()),
                tags=tuple(data.get("tags") or ()),
                headers=data.get("headers") or {},
            )
    except (KeyError, TypeError, ValueError):
        pass
    return Event.from_json_dict(data)


def _chunks(items: Sequence[str], size: int = _CHUNK) -> list[list[str]]:
    unique = list(dict.fromkeys(items))
    return [unique[i : i + size] for i in range(0, len(unique), size)]


class SQLStore(Store):
    """The durable store on SQLAlchemy 2 async: SQLite (aiosqlite) or PostgreSQL (asyncpg).

    Args:
        url_or_path: as for ``open_store`` (``memory://`` is not accepted here).
        busy_timeout: SQLite only: seconds a write waits for another process's lock before failing.
        connect_timeout: PostgreSQL only: seconds to wait for a connection.
        max_batch_rows: group commit writes at most about this many rows per transaction (count).
        pool_size: connections kept open for reads and administrative writes.
        synchronous: SQLite only: ``"NORMAL"`` (default) or ``"FULL"``, SQLite's ``PRAGMA synchronous`` for
            the writer. Under WAL both keep the database consistent and lose nothing on a process crash;
            after a power loss or an operating-system crash ``NORMAL`` may roll back the last committed
            transactions (their messages were already acknowledged: those idempotency records, stored
            events and dead letters are gone), ``FULL`` does not, at one fsync of the WAL per group commit.

    Attributes:
        url: printable location without a password (``sqlite:////abs/events.db``,
            ``postgresql://user:***@host/db``).

    Raises:
        StoreError: from the constructor for a bad URL; from ``open()`` when the database cannot be
            opened or its tables created; from write futures when the transaction failed; from the
            write methods when the store is not open.
    """

    def __init__(
        self,
        url_or_path: str | None = None,
        *,
        busy_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_batch_rows: int = 20_000,
        synchronous: str = "NORMAL",
        pool_size: int = 5,
    ) -> None:
        target = _resolve(url_or_path)
        if target.driver_url is None:
            raise StoreError("SQLStore needs a SQLite or PostgreSQL URL; use open_store('memory://')")
        self._driver_url: URL = target.driver_url
        self.url = target.display
        self._password = target.password
        self._is_sqlite = self._driver_url.get_backend_name() == "sqlite"
        self._busy_timeout = busy_timeout
        self._connect_timeout = connect_timeout
        self._max_batch_rows = max(1, max_batch_rows)
        self._pool_size = pool_size
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise StoreError(f"SQLStore synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._rows = _Rows(self._is_sqlite)
        self._engine: AsyncEngine | None = None
        #: Alembic revision(s) of the schema once open (``"0003_query_indexes"``), shown by ``/readyz``.
        self.schema_version: str | None = None
        self._closing = False
        self._accepting = False  # open, with both background tasks running: the hot-path check
        # group commit: queued writes, and the task that commits them on its own connection
        self._pending: deque[_Write] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._in_flight = False
        self._wconn: AsyncConnection | None = None
        # SQLite: the writer's own sqlite3 connection, used only on its one executor thread (below)
        self._wsync: sqlite3.Connection | None = None
        self._wthread: ThreadPoolExecutor | None = None
        # idempotency lookups: concurrent calls are answered by one query on a dedicated connection
        self._lookups: deque[_Lookup] = deque()
        self._lookup_wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._rconn: AsyncConnection | None = None
        self._build_statements()

    # -- lifecycle -------------------------------------------------------------------------------
    def _build_statements(self) -> None:
        from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
        from sqlalchemy.dialects.sqlite import aiosqlite as sqlite_aiosqlite

        dialect: Dialect = sqlite_aiosqlite.dialect() if self._is_sqlite else pg_asyncpg.dialect()
        ins: Any = sqlite_dialect.insert if self._is_sqlite else pg_dialect.insert
        dead = ins(_dead_letters)
        dead = dead.on_conflict_do_update(
            index_elements=[_dead_letters.c.id],
            set_={c.name: dead.excluded[c.name] for c in _dead_letters.c if c.name != "id"},
        )
        # Driver-level SQL for the hot path, compiled once from Core constructs; parameters are positional
        # in table column order (checked here, since the row builders rely on it).
        self._sql: dict[int, str] = {}
        columns = {
            _IDEM: [c.name for c in _idempotency.c],
            _EVENT: [c.name for c in _events.c if c.name not in ("acknowledged_at", "acknowledged_by")],
            _DEAD: [c.name for c in _dead_letters.c],
        }
        for kind, table, stmt in (
            (_IDEM, _idempotency, ins(_idempotency).on_conflict_do_nothing()),
            (_EVENT, _events, ins(_events).on_conflict_do_nothing()),
            (_DEAD, _dead_letters, dead),
        ):
            compiled = stmt.compile(dialect=dialect, column_keys=columns[kind])
            if list(compiled.positiontup or ()) != columns[kind]:
                raise StoreError(f"unexpected parameter order compiling the {table.name} insert")
            self._sql[kind] = str(compiled)
        # SQLite: idempotency and event rows go in as ONE statement reading a JSON array (json_each), not
        # an executemany. sqlite3 holds the GIL while it binds each executemany row, so a busy event loop
        # slowed the writer thread to a crawl; one statement runs the whole batch with the GIL released.
        self._bulk: dict[int, tuple[str, list[str]]] = {}
        if self._is_sqlite:
            for kind, table in ((_IDEM, _idempotency), (_EVENT, _events)):
                names = columns[kind]
                rows = sa.func.json_each(sa.bindparam("rows", type_=sa.Text)).table_valued("value").alias("r")
                values = [
                    sa.func.json_extract(rows.c.value, sa.literal_column(f"'$[{i}]'")) for i in range(len(names) - 1)
                ]
                select = sa.select(*values, sa.bindparam("stamp", type_=sa.Text)).select_from(rows)
                # WHERE: SQLite's parser needs one between INSERT ... SELECT and ON CONFLICT
                stmt = ins(table).from_select(names, select.where(sa.true())).on_conflict_do_nothing()
                compiled = stmt.compile(dialect=dialect)
                self._bulk[kind] = (str(compiled), list(compiled.positiontup or ()))
        if self._is_sqlite:
            self._lookup_sql = "SELECT event_id, handler FROM idempotency WHERE event_id IN ({})"
        else:
            # One prepared statement for any number of ids.
            self._lookup_sql = "SELECT event_id, handler FROM idempotency WHERE event_id = ANY($1::varchar[])"

    def _scrub(self, text: str) -> str:
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            orig = exc.orig
            text = f"{type(orig).__name__}: {orig}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return self._scrub(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)

    def _make_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "pool_size": self._pool_size}
        if self._is_sqlite:
            kwargs["connect_args"] = {"timeout": self._busy_timeout}
        else:
            kwargs["connect_args"] = {"timeout": self._connect_timeout}
        engine = create_async_engine(self._driver_url, **kwargs)
        if self._is_sqlite:
            busy_ms = int(self._busy_timeout * 1000)

            @sa_event.listens_for(engine.sync_engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
                cur = dbapi_connection.cursor()
                cur.execute(f"PRAGMA busy_timeout={busy_ms}")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

        return engine

    @property
    def driver_url(self) -> URL:
        """The resolved async SQLAlchemy URL of this store (password included: do not print it; ``url`` is
        the printable form). For plug-ins that keep their own tables in this database (the analytics
        status history) on a pool of their own."""
        return self._driver_url

    async def open(self) -> None:
        """Connect, bring the schema to this version (Alembic migrations: creates the tables in an empty
        database, adopts a 0.1.0 store, runs newer revisions), and start the group-commit writer.

        Safe when several processes open the same database at once (PostgreSQL: an advisory lock,
        SQLite: the file's write lock, serialize the migration; see ``pywats_events.migrations``).
        Opening an open store does nothing.

        Raises:
            StoreSchemaError: the database was migrated by a newer pywats-events (a revision unknown here),
                or a table of the store's name belongs to another application.
            StoreError: the database cannot be reached or opened, or the schema cannot be migrated; the
                message gives the URL (without password) and the reason.
        """
        if self._engine is not None:
            return
        try:
            engine = self._make_engine()
        except ImportError as exc:
            driver = "aiosqlite" if self._is_sqlite else "asyncpg (pip install 'pywats-events[postgres]')"
            raise StoreError(f"cannot open {self.url}: the driver {driver} is not installed") from exc
        try:
            await self._create_schema(engine)
        except StoreSchemaError as exc:
            await engine.dispose()
            raise StoreSchemaError(f"cannot open database {self.url}: {exc}") from None
        except Exception as exc:
            await engine.dispose()
            raise StoreError(f"cannot open database {self.url}: {self._reason(exc)}") from None
        self._engine = engine
        self._closing = False
        self._wake = asyncio.Event()
        self._lookup_wake = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop(), name=f"pywats-store-writer {self.url}")
        self._reader = asyncio.create_task(self._lookup_loop(), name=f"pywats-store-lookup {self.url}")
        self._writer.add_done_callback(self._task_stopped)
        self._reader.add_done_callback(self._task_stopped)
        self._accepting = True

    def _task_stopped(self, _task: asyncio.Task[None]) -> None:
        # Normal at close; anything else (a bug, a cancelled loop) must not leave callers waiting forever.
        self._accepting = False

    async def _create_schema(self, engine: AsyncEngine) -> None:
        # Alembic migrations under the schema lock, instead of 0.1.0's create_all (pywats_events.migrations).
        from . import migrations

        _before, after = await migrations.upgrade(engine)
        self.schema_version = after.version

    async def _schema_engine(self) -> tuple[AsyncEngine, bool]:
        """The open store's engine, or a new one to dispose of after use (``(engine, temporary)``)."""
        if self._engine is not None:
            return self._engine, False
        try:
            return self._make_engine(), True
        except ImportError as exc:
            raise StoreError(f"cannot open {self.url}: its database driver is not installed ({exc})") from exc

    async def schema_state(self) -> SchemaState:
        """Where the database's schema stands against this code (reads ``alembic_version``; changes
        nothing, so it works on a store that is not open and would not open).

        Raises:
            StoreError: the database cannot be reached or read.
        """
        from . import migrations

        engine, temporary = await self._schema_engine()
        try:
            return await migrations.schema_state(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the schema version of {self.url}: {self._reason(exc)}") from None
        finally:
            if temporary:
                await engine.dispose()

    async def migrate_schema(
        self, target: str = "heads", *, down: bool = False
    ) -> tuple[SchemaState, SchemaState]:
        """Upgrade (or with ``down``, downgrade) the schema to the Alembic revision ``target`` under the
        schema lock; ``open`` does ``migrate_schema("heads")`` itself.

        Args:
            target: ``"heads"``, a revision id (``"0001"``), or ``"base"`` (down only: drops all tables).
            down: downgrade instead of upgrade.

        Returns:
            ``(before, after)`` schema states.

        Raises:
            StoreSchemaError: the database records a revision this code does not know, or a table of the
                store's name belongs to another application.
            StoreError: ``target`` names no revision, or the database refused the change (nothing of it
                is kept); the message gives the URL and the reason.
        """
        from alembic.util import CommandError

        from . import migrations

        engine, temporary = await self._schema_engine()
        try:
            if down:
                result = await migrations.downgrade(engine, target)
            else:
                result = await migrations.upgrade(engine, target)
            self.schema_version = result[1].version
            return result
        except CommandError as exc:
            raise StoreError(f"schema migration of {self.url} to {target!r}: {exc}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"schema migration of {self.url} failed: {self._reason(exc)}") from None
        finally:
            if temporary:
                await engine.dispose()

    async def close(self) -> None:
        """Commit everything queued, stop the writer and release connections. Idempotent."""
        if self._engine is None:
            return
        self._closing = True
        self._accepting = False
        self._wake.set()
        self._lookup_wake.set()
        try:
            for task in (self._writer, self._reader):
                if task is not None and not task.done():
                    await task
        finally:
            self._writer = self._reader = None
            # Only if a background task died: nothing will serve these any more.
            err = StoreError(f"store {self.url} closed before the request was served")
            futures: list[asyncio.Future[Any]] = [w.future for w in self._pending]
            futures += [lk.future for lk in self._lookups]
            for fut in futures:
                if not fut.done():
                    fut.set_exception(err)
            self._pending.clear()
            self._lookups.clear()
            for conn in (self._wconn, self._rconn):
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            self._wconn = self._rconn = None
            await self._close_sqlite_writer()
            engine, self._engine = self._engine, None
            await engine.dispose()

    def _require_engine(self) -> AsyncEngine:
        if not self._accepting or self._engine is None:
            if self._engine is not None and not self._closing:
                raise StoreError(f"store {self.url} is broken: its background task has stopped")
            raise StoreError(f"store {self.url} is not open")
        return self._engine

    async def _driver(self, which: str) -> Any:
        """The raw driver connection (aiosqlite / asyncpg) held for the writer or the lookup task."""
        conn: AsyncConnection | None = getattr(self, which)
        if conn is None:
            assert self._engine is not None
            conn = await self._engine.connect()
            setattr(self, which, conn)
        raw = await conn.get_raw_connection()
        return raw.driver_connection

    async def _discard(self, which: str) -> None:
        """Forget a held connection after an error (it may be broken); the next use opens a new one."""
        conn: AsyncConnection | None = getattr(self, which)
        setattr(self, which, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    # -- group commit ----------------------------------------------------------------------------
    def _enqueue(self, kind: int, rows: list[tuple[Any, ...]]) -> asyncio.Future[None]:
        if not self._accepting:
            self._require_engine()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(kind, rows, fut))
        self._wake.set()
        return fut

    async def flush(self) -> None:
        """Wait until every write queued before this call is committed (or has failed).

        Does nothing on a store that is not open.
        """
        if self._engine is None or self._writer is None or self._writer.done():
            return
        if not self._pending and not self._in_flight:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(_MARK, [], fut))
        self._wake.set()
        await fut

    async def _write_loop(self) -> None:
        try:
            while True:
                if not self._pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch: list[_Write] = []
                rows = 0
                limit = self._max_batch_rows
                while self._pending and (not batch or rows + self._pending[0].size <= limit):
                    w = self._pending.popleft()
                    batch.append(w)
                    rows += w.size
                self._in_flight = True
                try:
                    await self._commit(batch)
                except asyncio.CancelledError:
                    self._pending.extendleft(reversed(batch))
                    raise
                finally:
                    self._in_flight = False
        except asyncio.CancelledError:
            err = StoreError(f"store {self.url} writer was cancelled before the write committed")
            for w in self._pending:
                if not w.future.done():
                    w.future.set_exception(err)
            self._pending.clear()
            raise

    async def _commit(self, batch: list[_Write]) -> None:
        try:
            if any(w.size for w in batch):
                try:
                    await self._write_batch(batch)
                except Exception as exc:
                    if self._is_integrity_error(exc):
                        raise
                    # The held connection may have gone stale (server restart): one retry on a new one.
                    await self._write_batch(batch)
        except Exception as exc:
            if len(batch) == 1 or not self._is_integrity_error(exc):
                self._fail(batch, exc)
                return
            # Isolate the write that broke the transaction; the others still commit, in order.
            for w in batch:
                try:
                    if w.size:
                        await self._write_batch([w])
                except Exception as one_exc:
                    self._fail([w], one_exc)
                else:
                    if not w.future.done():
                        w.future.set_result(None)
            return
        for w in batch:
            if not w.future.done():
                w.future.set_result(None)

    def _fail(self, batch: list[_Write], exc: BaseException) -> None:
        # A write isolated on its own and still refused for its data would be refused again: say so, so
        # the bus dead-letters the input instead of having it redelivered forever.
        if len(batch) == 1 and self._is_integrity_error(exc):
            cls: type[StoreError] = StoreRefusedError
            text = f"write to {self.url} refused for its data: {self._reason(exc)}"
        else:
            cls, text = StoreError, f"write to {self.url} failed: {self._reason(exc)}"
        for w in batch:
            if not w.future.done():
                w.future.set_exception(cls(text))

    async def _write_batch(self, batch: list[_Write]) -> None:
        """One transaction: an ``executemany`` per table on the writer's own driver connection, then
        commit. Each await on aiosqlite is a thread hop, so the SQLite path keeps them to one per table
        plus the commit."""
        groups: dict[int, list[tuple[Any, ...]]] = {_IDEM: [], _EVENT: [], _DEAD: []}
        for w in batch:
            if w.rows:
                groups[w.kind].extend(w.rows)
            for kind, rows in w.more:
                groups[kind].extend(rows)
        stamp = self._rows.ts(datetime.now(UTC))
        try:
            if self._is_sqlite:
                statements: list[tuple[str, list[Any]]] = []
                for kind, (sql, order) in self._bulk.items():
                    if groups[kind]:
                        args = {"rows": _json_rows(groups[kind]), "stamp": stamp}
                        statements.append((sql, [args[name] for name in order]))
                # One hop to the writer's thread per transaction: with aiosqlite each of BEGIN, the
                # inserts and COMMIT was a hop, and each hop waits for a busy event loop to come round.
                if self._wthread is None:
                    self._wthread = ThreadPoolExecutor(1, thread_name_prefix="pywats-store-writer")
                await asyncio.get_running_loop().run_in_executor(
                    self._wthread, self._commit_sqlite, statements, groups[_DEAD]
                )
            else:
                drv = await self._driver("_wconn")
                async with drv.transaction():
                    for kind, rows in groups.items():
                        if rows:
                            if kind != _DEAD:
                                rows = [(*r, stamp) for r in rows]
                            await drv.executemany(self._sql[kind], rows)
        except Exception as exc:
            if not self._is_integrity_error(exc):
                if self._is_sqlite:
                    await self._close_sqlite_writer(keep_thread=True)
                else:
                    await self._discard("_wconn")
            raise

    def _connect_sqlite(self) -> sqlite3.Connection:
        """The writer's sqlite3 connection (on the writer's thread): the file and options SQLAlchemy's
        dialect derives from the URL, autocommit mode (transactions are explicit), the store's pragmas."""
        from sqlalchemy.dialects.sqlite import pysqlite

        args, kwargs = pysqlite.dialect().create_connect_args(self._driver_url.set(drivername="sqlite"))
        kwargs.pop("check_same_thread", None)
        kwargs.update(timeout=self._busy_timeout, isolation_level=None)
        connect: Any = sqlite3.connect
        conn: sqlite3.Connection = connect(*args, **kwargs)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            # Futures resolve, and messages settle, only after COMMIT returned. WAL + NORMAL: a power loss
            # may still roll back the last commits (see ``synchronous`` in the class docstring).
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            # Keys touch pages all over the indexes; a larger cache for the one connection that writes
            # keeps them in memory as the tables grow (about 32 MB).
            conn.execute("PRAGMA cache_size=-32768")
        except BaseException:
            conn.close()
            raise
        return conn

    def _commit_sqlite(self, statements: list[tuple[str, list[Any]]], dead: list[tuple[Any, ...]]) -> None:
        """One transaction on the writer's thread: the bulk inserts, the dead letters, COMMIT."""
        conn = self._wsync
        if conn is None:
            conn = self._wsync = self._connect_sqlite()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params)
            if dead:
                conn.executemany(self._sql[_DEAD], dead)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
            raise

    async def _close_sqlite_writer(self, *, keep_thread: bool = False) -> None:
        """Close the writer's sqlite3 connection on its thread (after an error the next write opens a new
        one); at store close also end the thread."""
        pool = self._wthread
        if pool is None:
            return
        conn, self._wsync = self._wsync, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
        if not keep_thread:
            self._wthread = None
            pool.shutdown(wait=False)

    @staticmethod
    def _is_integrity_error(exc: BaseException) -> bool:
        """The data broke the transaction (constraint, bad value), not the connection or the server."""
        import sqlite3

        if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError | UnicodeError):
            return True
        try:
            import asyncpg
        except ImportError:
            return False
        return isinstance(exc, asyncpg.IntegrityConstraintViolationError | asyncpg.DataError)

    # -- idempotency -----------------------------------------------------------------------------
    async def completed_handlers(self, event_ids: Sequence[str]) -> dict[str, set[str]]:
        """For each of ``event_ids`` (any count; queried in chunks of 500) that has records, the set of
        handler names recorded as succeeded. Sees committed records only.

        Concurrent calls are merged into one query on a dedicated connection while a query is running, so
        many small lookups cost about as much as one large one.

        Raises:
            StoreError: the store is not open or the query failed.
        """
        if not event_ids:
            return {}
        if not self._accepting:
            self._require_engine()
        fut: asyncio.Future[dict[str, set[str]]] = asyncio.get_running_loop().create_future()
        self._lookups.append(_Lookup(event_ids, fut))
        self._lookup_wake.set()
        return await fut

    async def _lookup_loop(self) -> None:
        try:
            while True:
                if not self._lookups:
                    if self._closing:
                        return
                    self._lookup_wake.clear()
                    await self._lookup_wake.wait()
                    continue
                batch = list(self._lookups)
                self._lookups.clear()
                wanted = [i if _plain(i) else _safe_text(i) for lk in batch for i in lk.ids]
                try:
                    try:
                        found = await self._lookup(wanted)
                    except Exception:
                        # The held connection may have gone stale (server restart): one retry on a new one.
                        await self._discard("_rconn")
                        found = await self._lookup(wanted)
                except Exception as exc:
                    await self._discard("_rconn")
                    for lk in batch:
                        if not lk.future.done():
                            err = StoreError(f"idempotency lookup in {self.url} failed: {self._reason(exc)}")
                            lk.future.set_exception(err)
                    continue
                for lk in batch:
                    if not lk.future.done():
                        lk.future.set_result(
                            {i: set(found[k]) for i in lk.ids if (k := i if _plain(i) else _safe_text(i)) in found}
                        )
        except asyncio.CancelledError:
            for lk in self._lookups:
                lk.future.cancel()
            raise

    async def _lookup(self, event_ids: list[str]) -> dict[str, set[str]]:
        drv = await self._driver("_rconn")
        out: dict[str, set[str]] = {}
        for chunk in _chunks(event_ids):
            if self._is_sqlite:
                rows = await drv.execute_fetchall(self._lookup_sql.format(",".join("?" * len(chunk))), chunk)
            else:
                rows = await drv.fetch(self._lookup_sql, chunk)
            for event_id, handler in rows:
                out.setdefault(event_id, set()).add(handler)
        return out

    def mark_completed(self, records: Sequence[tuple[str, str]]) -> Awaitable[None]:
        """Queue idempotency records ``(event_id, handler)``; an existing pair is ignored. ``completed_at``
        is the time the batch was written.

        Returns:
            A future resolved when the group-commit transaction holding the records has committed; set
            with ``StoreError`` if it failed.

        Raises:
            StoreError: the store is not open.
        """
        return self._enqueue(_IDEM, _safe_pairs(records))

    def write(
        self,
        *,
        completed: Sequence[tuple[str, str]] = (),
        events: Sequence[Event] = (),
        dead_letters: Sequence[DeadLetterEntry] = (),
    ) -> Awaitable[None]:
        """Queue idempotency records, events and dead-letter entries as one write: they commit in the same
        transaction (all or none), so a record never vouches for an event row that was not written.

        Returns:
            A future resolved when committed; set with ``StoreError`` if the transaction failed.

        Raises:
            StoreError: the store is not open.
        """
        if not self._accepting:
            self._require_engine()
        parts: list[tuple[int, list[tuple[Any, ...]]]] = []
        if events:
            event_row = self._rows.event
            parts.append((_EVENT, [event_row(ev) for ev in events]))
        if dead_letters:
            parts.append((_DEAD, [self._rows.dead_letter(e) for e in dead_letters]))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Write(_IDEM, _safe_pairs(completed), fut, tuple(parts)))
        self._wake.set()
        return fut

    # -- event store -----------------------------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> Awaitable[None]:
        """Queue events for the event store; an id already stored is left as it is. ``stored_at`` is the
        time the batch was written.

        Returns:
            A future resolved when committed; set with ``StoreError`` if the transaction failed.

        Raises:
            StoreError: the store is not open.
        """
        event_row = self._rows.event
        return self._enqueue(_EVENT, [event_row(ev) for ev in events])

    def _event_filter(self, q: EventQuery | None) -> list[sa.ColumnElement[bool]]:
        if q is None:
            return []
        c = _events.c
        where: list[sa.ColumnElement[bool]] = []
        if q.type_pattern and q.type_pattern != "*":
            where.extend(_type_conditions(q.type_pattern, self._is_sqlite))
        if q.category:
            where.append(c.category == q.category)
        if q.min_severity:
            where.append(c.severity >= severity_rank(q.min_severity))
        if q.since is not None:
            where.append(c.timestamp >= q.since)
        if q.until is not None:
            where.append(c.timestamp < q.until)
        if q.source:
            where.append(c.source == q.source)
        if q.acknowledged is True:
            where.append(c.acknowledged_at.is_not(None))
        elif q.acknowledged is False:
            where.append(c.acknowledged_at.is_(None))
        if q.correlation_id is not None:
            where.append(c.correlation_id == _correlation_key(q.correlation_id))
            if len(q.correlation_id) > CORRELATION_ID_CHARS or not _plain(q.correlation_id):
                where.append(c.body["correlation_id"].as_string() == q.correlation_id)
        if q.event_id is not None:
            where.append(c.id == q.event_id)
        cursor = self._cursor_filter(q)
        if cursor is not None:
            where.append(cursor)
        if q.scan_limit is not None:
            edge = self._edge_select(q, cursor).scalar_subquery()
            # Fewer rows than that: no bound (COALESCE keeps the comparison sargable, where OR would not).
            if q.newest_first:
                where.append(c.timestamp >= sa.func.coalesce(edge, sa.literal(_TIME_MIN, _UTCDateTime)))
            else:
                where.append(c.timestamp <= sa.func.coalesce(edge, sa.literal(_TIME_MAX, _UTCDateTime)))
        return where

    @staticmethod
    def _edge_select(q: EventQuery, cursor: sa.ColumnElement[bool] | None) -> sa.Select[Any]:
        # The time of the scan_limit-th row after the cursor: an index-only read of the timestamp index.
        c = _events.c
        return (
            sa.select(c.timestamp)
            .where(*([cursor] if cursor is not None else []))
            .order_by(c.timestamp.desc() if q.newest_first else c.timestamp.asc())
            .offset(max(1, q.scan_limit or 1) - 1)
            .limit(1)
        )

    async def scan_edge(self, query: EventQuery) -> datetime | None:
        """The timestamp where ``query.scan_limit`` ends (see ``Store.scan_edge``), read from the
        timestamp index alone.

        Raises:
            ValueError: ``query.scan_limit`` is not set.
            StoreError: the store is not open or the query failed.
        """
        if query.scan_limit is None:
            raise ValueError("scan_edge needs query.scan_limit")
        rows = await self._read(self._edge_select(query, self._cursor_filter(query)), "event scan edge")
        return rows[0][0] if rows else None

    @staticmethod
    def _cursor_filter(q: EventQuery) -> sa.ColumnElement[bool] | None:
        if q.after is None:
            return None
        # Keyset: written so that both databases use the timestamp index for the range.
        c = _events.c
        ts, eid = q.after
        if q.newest_first:
            return sa.and_(c.timestamp <= ts, sa.or_(c.timestamp < ts, c.id < eid))
        return sa.and_(c.timestamp >= ts, sa.or_(c.timestamp > ts, c.id > eid))

    async def query_events(self, query: EventQuery) -> list[StoredEvent]:
        """Stored events matching ``query``, by timestamp, oldest first (ties by id), or newest first with
        ``query.newest_first``.

        Raises:
            ValueError: ``query.min_severity`` or ``query.type_pattern`` is invalid.
            StoreError: the store is not open or the query failed.
        """
        stmt = (
            sa.select(_events.c.body, _events.c.stored_at, _events.c.acknowledged_at, _events.c.acknowledged_by)
            .where(*self._event_filter(query))
            .order_by(
                *((_events.c.timestamp.desc(), _events.c.id.desc()) if query.newest_first
                  else (_events.c.timestamp, _events.c.id))
            )
            .limit(query.limit)
            .offset(query.offset)
        )
        rows = await self._read(stmt, "event query")
        return [
            StoredEvent(event=_stored_event(r[0]), stored_at=r[1], acknowledged_at=r[2], acknowledged_by=r[3])
            for r in rows
        ]

    async def count_events(self, query: EventQuery | None = None) -> int:
        """How many stored events match ``query`` (limit and offset ignored); all when ``None``.

        Raises:
            ValueError: an invalid severity or pattern in ``query``.
            StoreError: the store is not open or the query failed.
        """
        stmt = sa.select(sa.func.count()).select_from(_events).where(*self._event_filter(query))
        rows = await self._read(stmt, "event count")
        return int(rows[0][0])

    async def acknowledge_events(self, ids: Sequence[str], *, by: str | None = None) -> int:
        """Mark not-yet-acknowledged events with these ids acknowledged now, by ``by``.

        Returns:
            How many events changed (already acknowledged and unknown ids do not count).

        Raises:
            StoreError: the store is not open or the update failed.
        """
        now = datetime.now(UTC)

        async def run(conn: AsyncConnection) -> int:
            n = 0
            for chunk in _chunks(ids):
                stmt = (
                    _events.update()
                    .where(_events.c.id.in_(chunk), _events.c.acknowledged_at.is_(None))
                    .values(acknowledged_at=now, acknowledged_by=by)
                )
                n += (await conn.execute(stmt)).rowcount
            return n

        return await self._write(run, "acknowledge") if ids else 0

    async def purge_events(
        self,
        *,
        older_than_days: float | None = None,
        keep_at_most: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> int:
        """Delete events in ``ids``, events with a timestamp older than ``older_than_days`` days, then the
        oldest beyond ``keep_at_most`` (count); idempotency records completed more than
        ``older_than_days`` days ago go too. One transaction.

        Returns:
            How many events were deleted.

        Raises:
            ValueError: ``keep_at_most`` < 0 or ``older_than_days`` < 0.
            StoreError: the store is not open or the delete failed.
        """
        if keep_at_most is not None and keep_at_most < 0:
            raise ValueError("keep_at_most must be >= 0")
        if older_than_days is not None and older_than_days < 0:
            raise ValueError("older_than_days must be >= 0")

        async def run(conn: AsyncConnection) -> int:
            n = 0
            for chunk in _chunks(ids or ()):
                n += (await conn.execute(_events.delete().where(_events.c.id.in_(chunk)))).rowcount
            if older_than_days is not None:
                cutoff = datetime.now(UTC) - timedelta(days=older_than_days)
                n += (await conn.execute(_events.delete().where(_events.c.timestamp < cutoff))).rowcount
                await conn.execute(_idempotency.delete().where(_idempotency.c.completed_at < cutoff))
            if keep_at_most is not None:
                beyond = (
                    sa.select(_events.c.id)
                    .order_by(_events.c.timestamp.desc(), _events.c.id.desc())
                    .offset(keep_at_most)
                    .limit(None)
                    .scalar_subquery()
                )
                n += (await conn.execute(_events.delete().where(_events.c.id.in_(beyond)))).rowcount
            return n

        return await self._write(run, "purge")

    # -- dead letters ----------------------------------------------------------------------------
    def add_dead_letters(self, entries: Sequence[DeadLetterEntry]) -> Awaitable[None]:
        """Queue dead-letter entries (an entry whose id exists replaces it, as in ``MemoryStore``).

        Returns:
            A future resolved when committed; set with ``StoreError`` if the transaction failed.

        Raises:
            StoreError: the store is not open.
        """
        return self._enqueue(_DEAD, [self._rows.dead_letter(e) for e in entries])

    @staticmethod
    def _dead_filter(handler: str | None, reason: str | None) -> list[sa.ColumnElement[bool]]:
        where: list[sa.ColumnElement[bool]] = []
        if handler is not None:
            where.append(_dead_letters.c.handler == handler)
        if reason is not None:
            where.append(_dead_letters.c.reason == reason)
        return where

    async def list_dead_letters(
        self, *, handler: str | None = None, reason: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[DeadLetterEntry]:
        """Entries by first failure, oldest first (ties by id), optionally for one handler and/or reason.

        Raises:
            StoreError: the store is not open or the query failed.
        """
        stmt = (
            sa.select(_dead_letters)
            .where(*self._dead_filter(handler, reason))
            .order_by(_dead_letters.c.first_failure_at, _dead_letters.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [_dead_entry(r) for r in await self._read(stmt, "dead-letter list")]

    async def count_dead_letters(self, *, handler: str | None = None, reason: str | None = None) -> int:
        """How many entries match.

        Raises:
            StoreError: the store is not open or the query failed.
        """
        stmt = sa.select(sa.func.count()).select_from(_dead_letters).where(*self._dead_filter(handler, reason))
        return int((await self._read(stmt, "dead-letter count"))[0][0])

    async def query_dead_letters(self, query: DeadLetterQuery) -> list[DeadLetterEntry]:
        """Entries matching ``query``, newest first by ``(first_failure_at, id)``: one read along the
        ``first_failure_at`` index, so a deep page (keyset cursor ``query.before``) costs what the first
        costs. The ``event_id`` filter reads the entries' event JSON (no index: one scan of the entries).

        Raises:
            StoreError: the store is not open or the query failed.
        """
        c = _dead_letters.c
        where = self._dead_filter(query.handler, None)
        if query.reasons is not None:
            where.append(c.reason.in_(list(query.reasons)))
        if query.event_id is not None:
            where.append(c.event["id"].as_string() == query.event_id)
        if query.before is not None:
            ts, eid = query.before
            where.append(sa.and_(c.first_failure_at <= ts, sa.or_(c.first_failure_at < ts, c.id < eid)))
        stmt = (
            sa.select(_dead_letters)
            .where(*where)
            .order_by(c.first_failure_at.desc(), c.id.desc())
            .limit(max(1, query.limit))
        )
        return [_dead_entry(r) for r in await self._read(stmt, "dead-letter query")]

    async def _ids_with_prefix(self, table: sa.Table, prefix: str, limit: int) -> list[str]:
        # LIKE is case-insensitive in SQLite: the substr comparison keeps the match exact in every database.
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (
            sa.select(table.c.id)
            .where(table.c.id.like(escaped + "%", escape="\\"), sa.func.substr(table.c.id, 1, len(prefix)) == prefix)
            .order_by(table.c.id)
            .limit(limit)
        )
        return [r[0] for r in await self._read(stmt, "id prefix lookup")]

    async def event_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids of stored events starting with ``prefix`` (case-sensitive), ascending, at most ``limit``.

        Raises:
            StoreError: the store is not open or the query failed.
        """
        return await self._ids_with_prefix(_events, prefix, limit)

    async def dead_letter_ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Ids of dead-letter entries starting with ``prefix`` (case-sensitive), ascending, at most ``limit``.

        Raises:
            StoreError: the store is not open or the query failed.
        """
        return await self._ids_with_prefix(_dead_letters, prefix, limit)

    async def get_dead_letter(self, entry_id: str) -> DeadLetterEntry:
        """One entry by id.

        Raises:
            DeadLetterNotFoundError: there is no entry with that id.
            StoreError: the store is not open or the query failed.
        """
        rows = await self._read(sa.select(_dead_letters).where(_dead_letters.c.id == entry_id), "dead-letter get")
        if not rows:
            raise DeadLetterNotFoundError(f"no dead-letter entry with id {entry_id!r}")
        return _dead_entry(rows[0])

    async def update_dead_letter(self, entry: DeadLetterEntry) -> None:
        """Replace the stored entry with ``entry.id``.

        Raises:
            DeadLetterNotFoundError: it is gone.
            StoreError: the store is not open or the update failed.
        """
        values = _dead_values(entry)

        async def run(conn: AsyncConnection) -> int:
            stmt = _dead_letters.update().where(_dead_letters.c.id == entry.id).values(**values)
            return (await conn.execute(stmt)).rowcount

        if await self._write(run, "dead-letter update") == 0:
            raise DeadLetterNotFoundError(f"no dead-letter entry with id {entry.id!r}")

    async def delete_dead_letters(self, entry_ids: Sequence[str]) -> int:
        """Delete entries by id; returns how many were deleted.

        Raises:
            StoreError: the store is not open or the delete failed.
        """

        async def run(conn: AsyncConnection) -> int:
            n = 0
            for chunk in _chunks(entry_ids):
                n += (await conn.execute(_dead_letters.delete().where(_dead_letters.c.id.in_(chunk)))).rowcount
            return n

        return await self._write(run, "dead-letter delete") if entry_ids else 0

    # -- plumbing --------------------------------------------------------------------------------
    async def _read(self, stmt: sa.Executable, what: str) -> list[Any]:
        engine = self._require_engine()
        await self.flush()
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(stmt)).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} in {self.url} failed: {self._reason(exc)}") from None

    async def _write(self, run: Callable[[AsyncConnection], Awaitable[int]], what: str) -> int:
        engine = self._require_engine()
        await self.flush()
        try:
            async with engine.begin() as conn:
                return int(await run(conn))
        except SQLAlchemyError as exc:
            raise StoreError(f"{what} in {self.url} failed: {self._reason(exc)}") from None

    def __repr__(self) -> str:
        return f"SQLStore({self.url!r})"
