"""The lab status DB on the migrations mechanism (issue 18.1): branch ``pywats_lab``, revision ``lab_0001``
reproducing the tables ``create_all`` made; a fresh DB, a DB made before migrations with data (upgraded,
nothing lost), a second upgrade that changes nothing, the status DB sharing the event store's database,
a downgrade, and a newer revision refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pywats_events.sql_store import open_store
from pywats_lab import migrations, structures
from pywats_lab.errors import StatusDBError
from pywats_lab.status_db import StatusDBImplementation, metadata
from tests.pg import fresh_database, pg_available, require_postgres

LAB_TABLES = {t.name for t in metadata.sorted_tables}


def _async(url: str) -> str:
    return url.replace("sqlite:///", "sqlite+aiosqlite:///").replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A status DB URL: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pywats-lab.db'}"
        return
    reason = await pg_available()
    if reason is not None:
        require_postgres(reason)
    async with fresh_database() as url:
        yield url


async def _engine(url: str) -> AsyncEngine:
    return create_async_engine(_async(url))


async def _schema(url: str) -> dict[str, Any]:
    """Tables with their columns (name, type, nullable), indexes (name, columns, unique) and foreign keys."""

    def read(conn: sa.Connection) -> dict[str, Any]:
        insp = sa.inspect(conn)
        out: dict[str, Any] = {}
        for name in sorted(set(insp.get_table_names()) & LAB_TABLES):
            out[name] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(name)],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(name)
                ),
                "fks": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"]) for f in insp.get_foreign_keys(name)
                ),
                "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(name)),
            }
        return out

    engine = await _engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def _versions(url: str, table: str = migrations.VERSION_TABLE) -> list[str]:
    engine = await _engine(url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda c: sa.inspect(c).has_table(table)):
                return []
            return [r[0] for r in await conn.execute(sa.text(f"SELECT version_num FROM {table}"))]
    finally:
        await engine.dispose()


async def _create_all_like_010(url: str) -> None:
    """The tables as the status DB made them before migrations (``metadata.create_all``), no version."""
    engine = await _engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


def _open(url: str) -> StatusDBImplementation:
    """A status DB on ``url``, opened (the tables are brought up to date on first use)."""
    db = StatusDBImplementation(url)
    try:
        db.get_cont_info_by_barcode("none")
    except Exception:
        db.close()
        raise
    return db


def _fill(db: StatusDBImplementation) -> dict[str, Any]:
    """Processes, an experiment, containers, a finished move and process step, orders: the DB's data."""
    process = db.add_process_to_db(name="Assay", src="step 1")
    experiment = db.create_experiment(process)
    db.add_container(structures.ContainerInfo(name="P1", current_device="Storage", current_pos=0, barcode="B1"))
    db.moved_container("Storage", 0, "Reader", 1, "B1")
    start = datetime(2024, 5, 1, 8, 0)
    step = structures.ProcessStep(
        name="read", main_device=structures.DeviceInfo(name="Reader"), data={"fct": "absorbance", "wl": 450},
        start=start, finish=start + timedelta(seconds=42), status="finished",
    )  # fmt: skip
    db.safe_step_to_db(step, db.get_cont_info_by_barcode("B1"), experiment)
    return {"process": process, "experiment": experiment}


def _check(db: StatusDBImplementation, ids: dict[str, Any]) -> None:
    cont = db.get_cont_info_by_barcode("B1")
    assert cont is not None and (cont.current_device, cont.current_pos) == ("Reader", 1)
    assert db.get_container_at_position("Reader", 1) is not None
    reader = structures.DeviceInfo(name="Reader")
    step = structures.ProcessStep(name="read", main_device=reader, data={"fct": "absorbance", "wl": 450})
    assert db.get_estimated_duration(step) == pytest.approx(42.0)  # the recorded step is found again


async def test_fresh_status_db_gets_the_baseline_and_the_create_all_schema(db_url: str, tmp_path: Path) -> None:
    db = await asyncio.to_thread(_open, db_url)
    try:
        ids = await asyncio.to_thread(_fill, db)
        await asyncio.to_thread(_check, db, ids)
    finally:
        await db.aclose()
    assert await _versions(db_url) == ["lab_0001"]
    assert await _versions(db_url, "alembic_version") == [], "the event store's version table is not touched"
    migrated = await _schema(db_url)
    # The same schema create_all makes (what the status DB made before migrations), table for table.
    if db_url.startswith("sqlite"):
        reference = f"sqlite:///{tmp_path / 'reference.db'}"
        await _create_all_like_010(reference)
        assert migrated == await _schema(reference)
    else:
        async with fresh_database() as reference:
            await _create_all_like_010(reference)
            assert migrated == await _schema(reference)
    assert set(migrated) == LAB_TABLES


async def test_a_status_db_made_before_migrations_upgrades_with_nothing_lost(db_url: str) -> None:
    await _create_all_like_010(db_url)
    # Fill it the old way: the tables exist, no version table (the code of before would not have made one).
    engine = await _engine(db_url)
    try:
        async with engine.begin() as conn:
            insert = "INSERT INTO lab_processes (uuid, name, src, created) VALUES ('p-1', 'Old', 's', 1.0)"
            await conn.execute(sa.text(insert))
            insert = "INSERT INTO lab_experiments (uuid, process_uuid, created) VALUES ('e-1', 'p-1', 2.0)"
            await conn.execute(sa.text(insert))
            await conn.execute(sa.text("INSERT INTO lab_devices (name, positions) VALUES ('Storage', NULL)"))
            await conn.execute(
                sa.text(
                    "INSERT INTO lab_containers (barcode, name, device, pos, start_device, start_pos, lidded, filled,"
                    " removed) VALUES ('OLD-1', 'Plate', 'Storage', 3, 'Storage', 3, :f, :f, :f)"
                ),
                {"f": False},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO lab_orders (order_id, seq, capabilities, state, module, seen_running)"
                    " VALUES ('o-1', 7, '[\"read\"]', 'queued', NULL, :f)"
                ),
                {"f": False},
            )
        state = await migrations.schema_state(engine)
        assert state.unversioned_tables and not state.current
    finally:
        await engine.dispose()
    before = await _schema(db_url)

    db = await asyncio.to_thread(_open, db_url)
    try:
        cont = await asyncio.to_thread(db.get_cont_info_by_barcode, "OLD-1")
        assert cont is not None and (cont.current_device, cont.current_pos) == ("Storage", 3)
        ids = await asyncio.to_thread(_fill, db)  # and it keeps working
        await asyncio.to_thread(_check, db, ids)
    finally:
        await db.aclose()
    assert await _versions(db_url) == ["lab_0001"]
    assert await _schema(db_url) == before, "adopting changes no table"
    engine = await _engine(db_url)
    try:
        async with engine.connect() as conn:
            for query, value in (
                ("SELECT name FROM lab_processes WHERE uuid = 'p-1'", "Old"),
                ("SELECT process_uuid FROM lab_experiments WHERE uuid = 'e-1'", "p-1"),
                ("SELECT seq FROM lab_orders WHERE order_id = 'o-1'", 7),
                ("SELECT pos FROM lab_containers WHERE barcode = 'OLD-1'", 3),
            ):
                assert (await conn.execute(sa.text(query))).scalar() == value, query
        # A second upgrade is a no-op: same state, no new version row, no lock taken.
        first, second = await migrations.upgrade(engine)
        assert first == second and first.up_to_date and first.current == ("lab_0001",)
    finally:
        await engine.dispose()
    assert await _versions(db_url) == ["lab_0001"]


async def test_the_status_db_may_share_the_event_stores_database(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    store = open_store(str(path))
    async with store:
        # the event store's heads: the core's and any installed plug-in's (analytics), never the lab's
        EVENT_STORE_VERSION = store.schema_version
        assert "lab_" not in EVENT_STORE_VERSION and EVENT_STORE_VERSION.split(", ")[0] == "0003_query_indexes"
    db = await asyncio.to_thread(_open, f"sqlite:///{path}")
    try:
        await asyncio.to_thread(_fill, db)
    finally:
        await db.aclose()
    store = open_store(str(path))
    async with store:  # the event store does not see the lab's revision as unknown
        assert store.schema_version == EVENT_STORE_VERSION
    assert await _versions(f"sqlite:///{path}") == ["lab_0001"]
    assert sorted(await _versions(f"sqlite:///{path}", "alembic_version")) == sorted(EVENT_STORE_VERSION.split(", "))


async def test_downgrade_to_base_and_a_newer_revision_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    db = await asyncio.to_thread(_open, url)
    await db.aclose()
    engine = await _engine(url)
    try:
        before, after = await migrations.downgrade(engine, "base")
        assert before.current == ("lab_0001",) and after.current == ()
        assert not (set(await _schema(url)) & LAB_TABLES)
        await migrations.upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = 'lab_0099'"))
    finally:
        await engine.dispose()
    with pytest.raises(StatusDBError, match=r"lab_0099.*does not know"):
        await asyncio.to_thread(_open, url)
