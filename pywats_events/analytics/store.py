"""Persistence of the status history in its own table, ``analytics_state_history``, in the project's
store database (SQLite or PostgreSQL, the URL ``--db`` / ``PYWATS_EVENTS_DB`` names).

One row per state change: ``asset``, ``event_id`` (primary key together), ``start`` (the change's time),
``category`` (SEMI E10), ``state_code``, ``state`` (name). An interval's end is the asset's next change,
computed in the query (``LEAD`` over the asset's rows), so a late change inserted in its place fixes its
neighbour's end without rewriting it. Rows are written behind the bus (batched, about once a second);
what a crash loses there the event store still has, and ``pywats-events analytics rebuild`` restores it.
Retention: ``purge(older_than)`` deletes rows older than a time; ``newest()`` gives the newest row's
start, the clock the handler's retention counts back from.

The engine is made like ``pywats_events.sql_store`` makes its own (same URL rules, aiosqlite / asyncpg,
WAL for SQLite), on a separate pool so history writes never wait behind the bus's group commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .. import migrations
from ..errors import StoreError, StoreSchemaError
from ..sql_store import UTCDateTime, driver_url_of
from .history import Interval
from .migrations import BRANCH
from .states import StateChange, epoch_us, from_epoch_us

__all__ = ["HistoryStore"]

_metadata = sa.MetaData()

state_history = sa.Table(
    "analytics_state_history",
    _metadata,
    sa.Column("asset", sa.String(500), primary_key=True),
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("start", UTCDateTime(), nullable=False),
    sa.Column("category", sa.String(3), nullable=False),
    sa.Column("state_code", sa.Integer, nullable=True),
    sa.Column("state", sa.String(200), nullable=False),
    sa.Index("ix_analytics_state_history_asset_start", "asset", "start"),
    sa.Index("ix_analytics_state_history_start", "start"),
)


class HistoryStore:
    """The ``analytics_state_history`` table (see the module docstring).

    Args:
        url_or_path: a store URL as ``pywats_events.sql_store.open_store`` takes it (not ``memory://``).
        driver_url: an already-resolved SQLAlchemy URL (used instead of ``url_or_path``).

    Raises:
        StoreError: the URL is ``memory://``, malformed or of an unknown scheme; from ``open`` when the
            database cannot be reached or the table created; from writes and queries when they fail.
    """

    def __init__(self, url_or_path: str | None = None, *, driver_url: URL | None = None) -> None:
        if driver_url is None:
            driver_url = driver_url_of(url_or_path)
            if driver_url is None:
                raise StoreError("the analytics history needs a SQLite or PostgreSQL store, not memory://")
        self._url = driver_url
        self._sqlite = driver_url.get_backend_name() == "sqlite"
        self._engine: AsyncEngine | None = None
        self.url = driver_url.render_as_string(hide_password=True)

    async def open(self) -> None:
        """Connect and bring the table to its newest revision (Alembic branch ``analytics``: created in a
        new database, adopted with its rows where an earlier version made it).

        Raises:
            StoreError: the database cannot be reached or the table created.
            StoreSchemaError: the database records a revision this code does not know, or a foreign
                table has the table's name.
        """
        if self._engine is not None:
            return
        engine = create_async_engine(self._url, pool_size=2)
        if self._sqlite:

            @sa_event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_connection: Any, _record: Any) -> None:
                cur = dbapi_connection.cursor()
                cur.execute("PRAGMA busy_timeout=30000")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.close()

        try:
            # The table is on the migrations mechanism (branch "analytics"); in the bus's own database the
            # store's open has usually upgraded it already, and this is a read of alembic_version.
            await migrations.upgrade(engine, f"{BRANCH}@head")
        except StoreSchemaError:
            await engine.dispose()
            raise
        except Exception as exc:
            await engine.dispose()
            raise StoreError(f"cannot create the analytics history table in {self.url}: {exc}") from None
        self._engine = engine

    async def close(self) -> None:
        """Release the connections. Idempotent."""
        if self._engine is not None:
            engine, self._engine = self._engine, None
            await engine.dispose()

    def _require(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreError(f"the analytics history store {self.url} is not open")
        return self._engine

    async def write(self, changes: Sequence[StateChange]) -> int:
        """Insert state changes; rows already present (same asset and event id) are kept as they are.

        Returns:
            Rows inserted (count).

        Raises:
            StoreError: the transaction failed (nothing of the batch is written).
        """
        if not changes:
            return 0
        engine = self._require()
        rows = [
            {
                "asset": c.asset,
                "event_id": c.event_id,
                "start": from_epoch_us(c.at_us),
                "category": c.category,
                "state_code": c.code,
                "state": c.name,
            }
            for c in changes
        ]
        if self._sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt: Any = sqlite_insert(state_history).on_conflict_do_nothing()
        else:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(state_history).on_conflict_do_nothing()
        # RETURNING counts the rows really inserted on both backends (asyncpg reports no executemany rowcount).
        stmt = stmt.returning(state_history.c.event_id)
        try:
            async with engine.begin() as conn:
                result = await conn.execute(stmt, rows)
                return len(result.all())
        except Exception as exc:
            raise StoreError(f"analytics history write to {self.url} failed: {exc}") from None

    async def replace(self, changes: Sequence[StateChange], since: datetime | None, until: datetime | None) -> int:
        """Delete the rows in ``[since, until)`` and write ``changes`` (a rebuild). Returns rows written.

        Raises:
            StoreError: the transaction failed.
        """
        engine = self._require()
        c = state_history.c
        where = [c.start >= since] if since else []
        where += [c.start < until] if until else []
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.delete(state_history).where(*where))
        except Exception as exc:
            raise StoreError(f"analytics history rebuild in {self.url} failed: {exc}") from None
        return await self.write(changes)

    async def purge(self, older_than: datetime) -> int:
        """Retention: delete rows that started before ``older_than``; returns how many.

        Raises:
            StoreError: the delete failed.
        """
        engine = self._require()
        try:
            async with engine.begin() as conn:
                result = await conn.execute(sa.delete(state_history).where(state_history.c.start < older_than))
        except Exception as exc:
            raise StoreError(f"analytics history purge in {self.url} failed: {exc}") from None
        return max(0, result.rowcount or 0)

    async def newest(self) -> datetime | None:
        """The start of the newest stored state change (aware UTC), ``None`` for an empty table.

        Raises:
            StoreError: the query failed.
        """
        engine = self._require()
        try:
            async with engine.connect() as conn:
                value = (await conn.execute(sa.select(sa.func.max(state_history.c.start)))).scalar()
        except Exception as exc:
            raise StoreError(f"analytics history query on {self.url} failed: {exc}") from None
        return value  # type: ignore[no-any-return]  # max() keeps the column's type: aware UTC or None

    async def last_before(self, before: datetime) -> list[StateChange]:
        """Per asset, its last stored state change that started before ``before`` (the state it was in
        then), as ``StateChange`` rows; several when an asset has two changes at that same instant.

        Raises:
            StoreError: the query failed.
        """
        engine = self._require()
        c = state_history.c
        latest = (
            sa.select(c.asset, sa.func.max(c.start).label("start")).where(c.start < before).group_by(c.asset).subquery()
        )
        q = sa.select(c.asset, c.event_id, c.start, c.category, c.state_code, c.state).join(
            latest, sa.and_(c.asset == latest.c.asset, c.start == latest.c.start)
        )
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(q)).all()
        except Exception as exc:
            raise StoreError(f"analytics history query on {self.url} failed: {exc}") from None
        return [StateChange(r.asset, epoch_us(r.start), r.event_id, r.category, r.state_code, r.state) for r in rows]

    async def intervals(
        self,
        asset: str | None = None,
        *,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[Interval]:
        """Stored intervals overlapping ``[since, until)``, by asset then start; ``end`` is the next change.

        Args:
            asset: one asset (``None``: all); state: a state name or E10 category (case-insensitive).
            limit: at most this many (count).

        Raises:
            StoreError: the query failed.
        """
        engine = self._require()
        c = state_history.c
        nxt = (
            sa.func.lead(c.start, type_=UTCDateTime())
            .over(partition_by=c.asset, order_by=(c.start, c.event_id))
            .label("end")
        )
        inner = sa.select(c.asset, c.event_id, c.start, c.category, c.state_code, c.state, nxt)
        if asset is not None:
            inner = inner.where(c.asset == asset)
        sub = inner.subquery()
        q = sa.select(sub).order_by(sub.c.asset, sub.c.start, sub.c.event_id).limit(limit)
        if until is not None:
            q = q.where(sub.c.start < until)
        if since is not None:
            q = q.where(sa.or_(sub.c.end.is_(None), sub.c.end > since))
        if state:
            want = state.lower()
            q = q.where(sa.or_(sa.func.lower(sub.c.category) == want, sa.func.lower(sub.c.state) == want))
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(q)).all()
        except Exception as exc:
            raise StoreError(f"analytics history query on {self.url} failed: {exc}") from None
        return [
            Interval(
                r.asset,
                r.category,
                r.state_code,
                r.state,
                epoch_us(r.start),
                epoch_us(r.end) if r.end is not None else None,
                r.event_id,
            )
            for r in rows
        ]
