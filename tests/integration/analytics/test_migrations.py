"""The analytics table on the migrations mechanism (branch ``analytics``, entry point in the group
``pywats_events.migrations``), on real SQLite and PostgreSQL: a fresh store gets exactly the table the
code queries, a store whose table the analytics made before the revision existed (with rows) is adopted
with nothing lost, a history database of its own gets only the analytics branch, and the branch goes back
alone."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pywats_events import migrations
from pywats_events.analytics.states import StateChange, epoch_us
from pywats_events.analytics.store import HistoryStore, _metadata
from pywats_events.sql_store import SQLStore, driver_url_of
from tests.pg import fresh_database

#: The core branch's newest revision (0001 baseline, 0002 correlation id, 0003 query indexes).
CORE_HEAD = "0003_query_indexes"

T0 = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/events.db"
    else:
        request.getfixturevalue("postgres")
        async with fresh_database() as pg:
            yield pg


@contextlib.asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    driver = driver_url_of(url)
    assert driver is not None
    engine = create_async_engine(driver)
    try:
        yield engine
    finally:
        await engine.dispose()


async def versions(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return sorted(r[0] for r in await conn.execute(sa.text("SELECT version_num FROM alembic_version")))


async def tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))


def test_the_branch_is_installed_by_entry_point() -> None:
    heads = migrations.script_directory().get_heads()
    assert "analytics_0001" in heads and CORE_HEAD in heads


async def test_a_fresh_store_gets_exactly_the_table_the_code_queries(url: str) -> None:
    store = SQLStore(url)
    await store.open()
    await store.close()
    async with engine_for(url) as engine:
        assert await versions(engine) == [CORE_HEAD, "analytics_0001"]
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c, opts={"include_name": _ours}), _metadata)
            )
    assert diff == []


def _ours(name: str | None, type_: str, _parent: object) -> bool:
    # Compare the analytics table only (the core's tables are not in the analytics metadata).
    return type_ != "table" or name == "analytics_state_history"


async def test_a_table_made_before_the_revision_is_adopted_with_its_rows(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The previous version: the core's branch only, and the analytics table from create_all, with rows.
    core = migrations.version_locations()[0]
    with monkeypatch.context() as m:
        m.setattr(migrations, "_locations", lambda: (core,))
        store = SQLStore(url)
        await store.open()
        await store.close()
    async with engine_for(url) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)
        assert await versions(engine) == [CORE_HEAD]
    rows = [
        StateChange("oven", epoch_us(T0 + timedelta(minutes=i)), f"e{i}", cat, None, cat)
        for i, cat in enumerate(["SBY", "PRD", "USD"])
    ]
    history = HistoryStore(url)
    with monkeypatch.context() as m:
        m.setattr(migrations, "_locations", lambda: (core,))
        # Open without the revision (as before it existed): the table is there, so write straight to it.
        async with engine_for(url) as engine, engine.begin() as conn:
            await conn.execute(
                sa.insert(_metadata.tables["analytics_state_history"]),
                [
                    {
                        "asset": c.asset,
                        "event_id": c.event_id,
                        "start": T0 + timedelta(minutes=i),
                        "category": c.category,
                        "state_code": None,
                        "state": c.name,
                    }
                    for i, c in enumerate(rows)
                ],
            )
    # This version: the store's open adopts the table (branch analytics), the rows stay.
    store = SQLStore(url)
    await store.open()
    await store.close()
    async with engine_for(url) as engine:
        assert await versions(engine) == [CORE_HEAD, "analytics_0001"]
    await history.open()
    try:
        got = await history.intervals("oven")
    finally:
        await history.close()
    assert [(i.category, i.start_us, i.event_id) for i in got] == [(c.category, c.at_us, c.event_id) for c in rows]
    # A second open changes nothing.
    store = SQLStore(url)
    await store.open()
    await store.close()
    async with engine_for(url) as engine:
        assert await versions(engine) == [CORE_HEAD, "analytics_0001"]


async def test_a_history_database_of_its_own_gets_only_the_analytics_branch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/history.db"
    history = HistoryStore(url)
    await history.open()
    await history.close()
    async with engine_for(url) as engine:
        assert await versions(engine) == ["analytics_0001"]
        assert await tables(engine) == {"alembic_version", "analytics_state_history"}


async def test_the_branch_goes_back_alone(url: str) -> None:
    store = SQLStore(url)
    await store.open()
    await store.close()
    async with engine_for(url) as engine:
        _before, after = await migrations.downgrade(engine, "analytics@base")
        assert after.current == (CORE_HEAD,)
        names = await tables(engine)
        assert "analytics_state_history" not in names and {"events", "dead_letters"} <= names
