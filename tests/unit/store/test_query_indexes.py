"""Revision 0003_query_indexes and the query shapes it serves: upgrading a store from the previous head
(0001) keeps every row and adds the composite indexes; going back restores 0001's indexes with the rows
kept; SQLite's planner reads one category's time range and one handler's dead letters from those indexes
(no sort of the whole table); type patterns give the same events as the in-memory store (exact, case-
sensitive), now that they are shaped for the indexes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event

from pywats_events import migrations
from pywats_events.event import Event, Severity
from pywats_events.sql_store import SQLStore
from pywats_events.store import DeadLetterEntry, EventQuery, MemoryStore, Store
from tests.unit.store import schema_010
from tests.unit.store.test_migrations import T0, engine_for, fill_010, snapshot, url, version_rows  # noqa: F401

#: The core's schema alone: plug-in branches (analytics...) are left out, as without plug-ins.
pytestmark = pytest.mark.usefixtures("core_migrations_only")

NEW = {
    "events": ("ix_events_category_timestamp", ("category", "timestamp", "severity")),
    "dead_letters": ("ix_dead_letters_handler_first_failure", ("handler", "first_failure_at", "id")),
}
OLD = {"events": ("ix_events_category", ("category",)), "dead_letters": ("ix_dead_letters_handler", ("handler",))}


async def indexes(engine: Any) -> dict[str, dict[str, tuple[str, ...]]]:
    async with engine.connect() as conn:
        return await conn.run_sync(  # type: ignore[no-any-return]
            lambda c: {
                t: {ix["name"]: tuple(ix["column_names"]) for ix in sa.inspect(c).get_indexes(t)}
                for t in ("events", "dead_letters")
            }
        )


async def test_upgrade_from_0001_keeps_every_row_and_adds_the_query_indexes(url: str) -> None:  # noqa: F811
    async with engine_for(url) as engine:
        await migrations.upgrade(engine, "0001")
        await fill_010(engine)
        before = await snapshot(engine)
        assert all(OLD[t][0] in ix for t, ix in (await indexes(engine)).items())

        _from, to = await migrations.upgrade(engine)
        assert to.current == ("0003_query_indexes",) and to.up_to_date
        assert await snapshot(engine) == before
        now = await indexes(engine)
        for table, (name, columns) in NEW.items():
            assert now[table][name] == columns
            assert OLD[table][0] not in now[table]  # the prefix index it replaces is gone

        # Back to the previous head: 0001's indexes again, rows untouched.
        await migrations.downgrade(engine, "0001")
        assert await version_rows(engine) == ["0001"]
        assert await snapshot(engine) == before
        back = await indexes(engine)
        for table, (name, columns) in OLD.items():
            assert back[table][name] == columns and NEW[table][0] not in back[table]

    # And the store reads the upgraded rows through the new query shapes.
    store = SQLStore(url)
    await store.open()
    try:
        rows = await store.query_events(EventQuery(type_pattern="cfx.resource.state", newest_first=True))
        assert [r.event.id for r in rows] == [f"ev-{i}" for i in (8, 6, 4, 2, 0)]
        assert len(await store.list_dead_letters(handler="wats")) == 1
    finally:
        await store.close()
    assert schema_010.events.name == "events"


def capture_sql(store: SQLStore) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    engine = store._engine
    assert engine is not None

    @sa_event.listens_for(engine.sync_engine, "before_cursor_execute")
    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    return seen


async def plan(store: SQLStore, statement: str, parameters: Any) -> str:
    engine = store._engine
    assert engine is not None
    async with engine.connect() as conn:
        rows = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)).all()
    return " | ".join(str(r[-1]) for r in rows)


async def test_sqlite_plans_read_the_composite_indexes_without_sorting_the_table(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "plan.db"))
    await store.open()
    try:
        await store.append_events(
            [Event(type=f"{c}.x", source="s", timestamp=T0 + timedelta(seconds=i)) for i in range(200)
             for c in ("test", "asset")]
        )
        await store.add_dead_letters(
            [DeadLetterEntry(id=f"d{i}", reason="failed", handler=f"h{i % 3}", first_failure_at=T0) for i in range(30)]
        )
        await store.flush()
        seen = capture_sql(store)
        await store.query_events(
            EventQuery(type_pattern="test.*", min_severity="warning", since=T0, until=T0 + timedelta(hours=1),
                       newest_first=True, limit=50)
        )
        await store.count_events(EventQuery(type_pattern="test.*", min_severity="warning", since=T0))
        await store.list_dead_letters(handler="h1", limit=10, offset=5)
        listing, count, dead = [await plan(store, s, p) for s, p in seen[-3:]]
    finally:
        await store.close()
    assert "ix_events_category_timestamp" in listing, listing
    assert "ix_events_category_timestamp" in count, count
    assert "ix_dead_letters_handler_first_failure" in dead, dead
    assert "TEMP B-TREE FOR ORDER BY" not in dead, dead


TYPES = ["test.result", "Test.result", "testing.result", "test", "test.result.extra", "asset.fault", "a[1].b", "a%.b"]


@pytest.mark.parametrize(
    "pattern",
    ["test.*", "test.result", "Test.*", "test*", "t?st.*", "*.result", "test.res?lt", "*", "a[1].*", "a%.*", "a_.b"],
)
async def test_type_patterns_select_the_same_events_as_the_memory_store(pattern: str, tmp_path: Path) -> None:
    events = [
        Event(type=t, source="s", timestamp=T0 + timedelta(seconds=i), severity=Severity.WARNING)
        for i, t in enumerate(TYPES)
    ]
    found: list[list[str]] = []
    stores: list[Store] = [MemoryStore(), SQLStore(str(tmp_path / "p.db"))]
    for store in stores:
        await store.open()
        try:
            await store.append_events(events)
            rows = await store.query_events(EventQuery(type_pattern=pattern, min_severity="warning", since=T0))
            found.append([r.event.type for r in rows])
            assert await store.count_events(EventQuery(type_pattern=pattern)) == len(rows)
        finally:
            await store.close()
    assert found[0] == found[1]
