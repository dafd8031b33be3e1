"""Schema migrations (pywats_events.migrations) on SQLite and real PostgreSQL: a new store gets exactly
0.1.0's schema; a 0.1.0 store (create_all, no alembic_version) with events, dead letters and idempotency
records is upgraded with every row kept; a second upgrade changes nothing; downgrade and re-upgrade;
a database from a newer version or a foreign table is refused; a plug-in branch with a batch-mode
revision; two processes opening one fresh PostgreSQL database at once."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pywats_events import migrations
from pywats_events.errors import StoreSchemaError
from pywats_events.event import Event
from pywats_events.sql_store import SQLStore, _metadata, _resolve
from tests.pg import PostgresUnavailable, fresh_database, require_postgres
from tests.unit.store import schema_010

T0 = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)

#: The newest core revision (0001: the 0.1.0 baseline; 0002: events.correlation_id; 0003: query indexes).
HEAD = "0003_query_indexes"


@pytest.fixture(autouse=True)
def _core_branch_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the core's branch: plug-in branches installed beside it (the analytics'
    ``analytics_0001``...) are left out, as in an installation without plug-ins."""
    core = migrations.version_locations()[0]
    monkeypatch.setattr(migrations, "_locations", lambda: (core,))


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


@contextlib.asynccontextmanager
async def engine_for(url: str) -> AsyncIterator[AsyncEngine]:
    target = _resolve(url)
    assert target.driver_url is not None
    engine = create_async_engine(target.driver_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def fill_010(engine: AsyncEngine) -> None:
    """0.1.0 rows: acknowledged and open events, a handler failure and a raw-input dead letter (bytes,
    no event), idempotency records."""
    ev = Event(type="unit.completed", source="line-1/tester", payload={"serial": "SN123", "ok": True})
    async with engine.begin() as conn:
        await conn.execute(
            schema_010.events.insert(),
            [
                {
                    "id": f"ev-{i}",
                    "type": "unit.completed" if i % 2 else "cfx.resource.state",
                    "category": "production",
                    "source": "line-1/tester",
                    "severity": i % 3,
                    "timestamp": T0 + timedelta(seconds=i),
                    "body": {**ev.to_json_dict(), "id": f"ev-{i}"},
                    "stored_at": T0 + timedelta(seconds=i, milliseconds=5),
                    "acknowledged_at": T0 + timedelta(minutes=1) if i < 3 else None,
                    "acknowledged_by": "operator" if i < 3 else None,
                }
                for i in range(10)
            ],
        )
        await conn.execute(
            schema_010.idempotency.insert(),
            [{"event_id": f"ev-{i}", "handler": h, "completed_at": T0} for i in range(10) for h in ("wats", "mes")],
        )
        common = {"error_message": "boom", "traceback": "Traceback ...", "first_failure_at": T0, "last_failure_at": T0}
        await conn.execute(
            schema_010.dead_letters.insert(),
            [
                {
                    "id": "dl-1",
                    "reason": "retries_exhausted",
                    "handler": "wats",
                    "event": {**ev.to_json_dict(), "id": "ev-1"},
                    "error_type": "TimeoutError",
                    "attempts": 5,
                    "raw_body": None,
                    "origin": "",
                    "transport": "",
                    "headers": {},
                    **common,
                },
                {
                    "id": "dl-2",
                    "reason": "decode_error",
                    "handler": None,
                    "event": None,
                    "error_type": "DecodeError",
                    "attempts": 0,
                    "raw_body": b"\x00\xffnot json",
                    "origin": "cfx.line-1",
                    "transport": "amqp",
                    "headers": {"content-type": "application/json"},
                    **common,
                },
            ],
        )


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the three tables, in key order, as the database returns them."""
    out = {}
    async with engine.connect() as conn:
        for table in (schema_010.events, schema_010.idempotency, schema_010.dead_letters):
            rows = await conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            out[table.name] = [tuple(r) for r in rows]
    return out


async def version_rows(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return [r[0] for r in await conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


async def test_a_new_store_gets_exactly_the_010_schema(url: str, tmp_path: Path) -> None:
    store = SQLStore(url)
    await store.open()
    await store.close()
    assert store.schema_version == HEAD
    async with engine_for(url) as engine:
        async with engine.connect() as conn:
            # The code's tables and the migrated database agree (a table change without a revision fails here).
            diffs = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), _metadata))
        assert await version_rows(engine) == [HEAD]
    # Revision 0001 alone is the 0.1.0 schema (later revisions undone).
    await store.migrate_schema("0001", down=True)
    async with engine_for(url) as engine:
        async with engine.connect() as conn:
            migrated = await conn.run_sync(schema_010.describe)
        assert await version_rows(engine) == ["0001"]
    # The same database made the 0.1.0 way.
    if url.startswith("postgresql"):
        async with fresh_database() as other:
            async with engine_for(other) as engine:
                await schema_010.create_010_store(engine)
                async with engine.connect() as conn:
                    reference = await conn.run_sync(schema_010.describe)
    else:
        async with engine_for(str(tmp_path / "010.db")) as engine:
            await schema_010.create_010_store(engine)
            async with engine.connect() as conn:
                reference = await conn.run_sync(schema_010.describe)
    assert migrated == reference
    assert diffs == []


async def test_a_010_store_upgrades_with_nothing_lost_and_a_second_upgrade_is_a_no_op(url: str) -> None:
    async with engine_for(url) as engine:
        await schema_010.create_010_store(engine)
        await fill_010(engine)
        before = await snapshot(engine)
        state = await migrations.schema_state(engine)
        assert state.current == () and state.unversioned_tables and not state.up_to_date

    store = SQLStore(url)
    await store.open()
    try:
        assert store.schema_version == HEAD
        # Readable through the store as it stands now.
        assert await store.count_events() == 10
        assert (await store.get_dead_letter("dl-2")).raw_body == b"\x00\xffnot json"
        assert (await store.get_dead_letter("dl-1")).event is not None
        assert (await store.completed_handlers(["ev-4"]))["ev-4"] == {"wats", "mes"}
    finally:
        await store.close()

    async with engine_for(url) as engine:
        assert await snapshot(engine) == before
        assert await version_rows(engine) == [HEAD]
        # Second upgrade: nothing to run, nothing changed.
        first, second = await migrations.upgrade(engine)
        assert first == second and first.up_to_date and first.current == (HEAD,)
        assert await snapshot(engine) == before
        assert await version_rows(engine) == [HEAD]


async def test_a_partly_created_010_store_gets_its_missing_tables_and_indexes(url: str) -> None:
    async with engine_for(url) as engine:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: schema_010.events.create(c, checkfirst=False))
            await conn.execute(sa.text("DROP INDEX ix_events_type"))
        store = SQLStore(url)
        await store.open()
        await store.close()
        async with engine.connect() as conn:
            described = await conn.run_sync(schema_010.describe)
        assert ("ix_events_type", ("type",), False) in described["events"]["indexes"]  # type: ignore[index]
        assert described["dead_letters"]["indexes"]  # type: ignore[index]


async def test_downgrade_to_base_drops_the_tables_and_upgrade_brings_them_back(url: str) -> None:
    store = SQLStore(url)
    await store.open()
    await store.append_events([Event(type="a.b", source="s")])
    await store.close()
    before, after = await store.migrate_schema("base", down=True)
    assert before.current == (HEAD,) and after.current == ()
    async with engine_for(url) as engine:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert names <= {"alembic_version"}
    before, after = await store.migrate_schema()
    assert before.current == () and after.current == (HEAD,)
    await store.open()
    try:
        assert await store.count_events() == 0
    finally:
        await store.close()


async def test_a_store_migrated_by_a_newer_version_is_refused_with_its_revision(url: str) -> None:
    store = SQLStore(url)
    await store.open()
    await store.close()
    async with engine_for(url) as engine, engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(StoreSchemaError, match=r"revision 0099, which this pywats-events does not know"):
        await store.open()
    state = await store.schema_state()
    assert state.unknown == ("0099",) and not state.up_to_date


async def test_a_foreign_table_of_the_stores_name_is_refused_not_adopted(url: str) -> None:
    async with engine_for(url) as engine, engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)"))
    with pytest.raises(StoreSchemaError, match=r"table 'events' exists but lacks the pywats-events columns"):
        await SQLStore(url).open()
    async with engine_for(url) as engine:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
    assert "alembic_version" not in names and "dead_letters" not in names  # the failed upgrade left nothing


PLUGIN_REVISIONS = {
    "p001_items.py": """
        import sqlalchemy as sa
        from alembic import op

        revision = "p001"
        down_revision = None
        branch_labels = ("plugtest",)
        depends_on = "0001"

        def upgrade():
            op.create_table("plug_items", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), nullable=True), sa.Column("old", sa.Text))

        def downgrade():
            op.drop_table("plug_items")
    """,
    "p002_drop_old.py": """
        import sqlalchemy as sa
        from alembic import op

        revision = "p002"
        down_revision = "p001"
        branch_labels = None
        depends_on = None

        def upgrade():
            # SQLite cannot drop a column or change NOT NULL in place: batch mode rebuilds the table.
            with op.batch_alter_table("plug_items") as batch:
                batch.drop_column("old")
                batch.alter_column("name", existing_type=sa.String(50), nullable=False)

        def downgrade():
            with op.batch_alter_table("plug_items") as batch:
                batch.alter_column("name", existing_type=sa.String(50), nullable=True)
                batch.add_column(sa.Column("old", sa.Text))
    """,
}


async def test_a_plugin_branch_migrates_beside_the_core_in_batch_mode(url: str, tmp_path: Path) -> None:
    plug = tmp_path / "plug_versions"
    plug.mkdir()
    for name, text in PLUGIN_REVISIONS.items():
        (plug / name).write_text(textwrap.dedent(text))
    script = migrations.script_directory((*migrations.version_locations(), str(plug)))
    async with engine_for(url) as engine:
        _before, after = await migrations.upgrade(engine, "plugtest@p001", script=script)
        assert after.current == ("p001",)  # depends_on pulled the core's 0001 in first
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO plug_items (id, name, old) VALUES (1, 'kept', 'x')"))
        _before, after = await migrations.upgrade(engine, script=script)
        # Alembic records the newest of each chain; 0001 is applied as p001's dependency, and the core's
        # later revisions (after 0001, which p001 depends on) are recorded beside p002.
        assert after.current == (HEAD, "p002") and after.up_to_date and after.heads == (HEAD, "p002")
        async with engine.connect() as conn:
            cols = await conn.run_sync(lambda c: {x["name"]: x for x in sa.inspect(c).get_columns("plug_items")})
            rows = (await conn.execute(sa.text("SELECT id, name FROM plug_items"))).all()
        assert set(cols) == {"id", "name"} and cols["name"]["nullable"] is False
        assert [tuple(r) for r in rows] == [(1, "kept")]
        # The plug-in branch goes back alone; the core's tables stay.
        _before, after = await migrations.downgrade(engine, "plugtest@base", script=script)
        assert after.current == (HEAD,)
    # Without the plug-in installed its revision is unknown, and the store says which.
    async with engine_for(url) as engine:
        await migrations.upgrade(engine, script=script)
    with pytest.raises(StoreSchemaError, match=r"p002.*plug-in"):
        await SQLStore(url).open()


OPENER = """
import asyncio, sys, time
from pathlib import Path
from pywats_events import migrations
from pywats_events.sql_store import SQLStore

_core = migrations.version_locations()[0]
migrations._locations = lambda: (_core,)  # the core's branch only, as the other tests here

async def main():
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.005)
    store = SQLStore(sys.argv[1])
    await store.open()
    await store.append_events([])
    print(store.schema_version)
    await store.close()

asyncio.run(main())
"""


@pytest.mark.slow
async def test_two_processes_opening_a_fresh_store_at_once_both_succeed(url: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", OPENER, url, str(go), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    await asyncio.sleep(2.0)  # let the interpreters import everything and wait on the same file
    go.touch()
    results = [await asyncio.wait_for(p.communicate(), 120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.decode().strip() == HEAD
    async with engine_for(url) as engine:
        assert await version_rows(engine) == [HEAD]
