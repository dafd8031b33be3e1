"""Revision 0002 (events.correlation_id) on SQLite and real PostgreSQL: upgrading a 0001 store that
holds events fills the new column from each event's stored JSON (long ids cut to the column's 200
characters, events without one left NULL) and indexes it; the store's correlation filter then finds
them; downgrade drops the column and index and keeps every row; a second upgrade fills it again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pywats_events.event import Event
from pywats_events.sql_store import SQLStore
from pywats_events.store import EventQuery
from tests.pg import PostgresUnavailable, fresh_database, require_postgres
from tests.unit.store import schema_010
from tests.unit.store.test_migrations import T0, engine_for, snapshot

#: The core's schema alone: plug-in branches (analytics...) are left out, as without plug-ins.
pytestmark = pytest.mark.usefixtures("core_migrations_only")

LONG = "tx-" + "x" * 300


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind (PostgreSQL: a fresh one, dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "events.db")
        return
    try:
        cm = fresh_database()
        pg = await cm.__aenter__()
    except PostgresUnavailable as exc:
        require_postgres(str(exc))
        return
    try:
        yield pg
    finally:
        await cm.__aexit__(None, None, None)


async def fill_0001(url: str) -> None:
    """A store at revision 0001 with six events: correlation ids tx-A (x2), tx-B, a 303-character one,
    and two without."""
    store = SQLStore(url)
    await store.migrate_schema("0001")
    ids = ["tx-A", "tx-B", "tx-A", LONG, None, None]
    rows = []
    for i, cid in enumerate(ids):
        ev = Event(id=f"ev-{i}", type="unit.completed", source="line-1", timestamp=T0 + timedelta(seconds=i),
                   correlation_id=cid)
        rows.append({"id": ev.id, "type": ev.type, "category": ev.category, "source": ev.source, "severity": 0,
                     "timestamp": ev.timestamp, "body": ev.to_json_dict(), "stored_at": T0})
    async with engine_for(url) as engine, engine.begin() as conn:
        await conn.execute(schema_010.events.insert(), rows)


async def column_values(url: str) -> dict[str, str | None] | None:
    """``id -> correlation_id`` of the events table, or None when the column is not there."""
    async with engine_for(url) as engine, engine.connect() as conn:
        cols = await conn.run_sync(lambda c: {x["name"] for x in sa.inspect(c).get_columns("events")})
        if "correlation_id" not in cols:
            return None
        rows = await conn.execute(sa.text("SELECT id, correlation_id FROM events"))
        return {r[0]: r[1] for r in rows}


async def indexes(url: str) -> set[str]:
    async with engine_for(url) as engine, engine.connect() as conn:
        return await conn.run_sync(lambda c: {ix["name"] for ix in sa.inspect(c).get_indexes("events")})


async def test_upgrade_fills_the_column_from_the_stored_json_and_downgrade_drops_it(url: str) -> None:
    await fill_0001(url)
    async with engine_for(url) as engine:
        before = await snapshot(engine)
    assert await column_values(url) is None

    store = SQLStore(url)
    await store.open()
    try:
        assert store.schema_version == "0003_query_indexes"  # the core head: 0002 and the later revisions
        found = await store.query_events(EventQuery(correlation_id="tx-A", newest_first=True))
        assert [s.event.id for s in found] == ["ev-2", "ev-0"]
        assert [s.event.id for s in await store.query_events(EventQuery(correlation_id=LONG))] == ["ev-3"]
        # A different id with the same first 200 characters is not the long one.
        assert await store.query_events(EventQuery(correlation_id=LONG + "y")) == []
        assert await store.count_events(EventQuery(correlation_id="tx-B")) == 1
    finally:
        await store.close()
    values = await column_values(url)
    assert values == {"ev-0": "tx-A", "ev-1": "tx-B", "ev-2": "tx-A", "ev-3": LONG[:200], "ev-4": None, "ev-5": None}
    assert "ix_events_correlation_id" in await indexes(url)

    _b, after = await store.migrate_schema("0001", down=True)
    assert after.current == ("0001",)
    assert await column_values(url) is None
    assert "ix_events_correlation_id" not in await indexes(url)
    async with engine_for(url) as engine:
        assert await snapshot(engine) == before  # every row as it was

    await store.migrate_schema()
    assert (await column_values(url) or {}).get("ev-1") == "tx-B"


async def test_events_written_after_the_upgrade_carry_their_correlation_id(url: str) -> None:
    store = SQLStore(url)
    await store.open()
    try:
        await store.append_events([Event(type="a.b", source="s", correlation_id="tx-new", id="n1"),
                                   Event(type="a.b", source="s", id="n2")])
        assert [s.event.id for s in await store.query_events(EventQuery(correlation_id="tx-new"))] == ["n1"]
    finally:
        await store.close()
    assert await column_values(url) == {"n1": "tx-new", "n2": None}
