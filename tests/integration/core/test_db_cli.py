"""``pywats-events db current / upgrade / downgrade`` as a user runs them (real subprocesses), on a store
made by 0.1.0, on PostgreSQL, and on stores it must refuse; and the schema version in ``/readyz``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from pywats_events import EventBus
from pywats_events.http import HTTPSettings, Server
from pywats_events.sql_store import SQLStore
from tests.pg import PostgresUnavailable, fresh_database, require_postgres
from tests.unit.store import schema_010
from tests.unit.store.test_migrations import HEAD, engine_for, fill_010, snapshot, version_rows

CLI = Path(sys.executable).parent / "pywats-events"


def db(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``pywats-events db ARGS`` in ``cwd`` without PYWATS_EVENTS_* from the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    return subprocess.run(
        [str(CLI), "db", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def db_json(*args: str, cwd: Path) -> Any:
    proc = db(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout)


async def make_010_store(url: str) -> dict[str, list[tuple[object, ...]]]:
    async with engine_for(url) as engine:
        await schema_010.create_010_store(engine)
        await fill_010(engine)
        return await snapshot(engine)


async def test_current_then_upgrade_a_010_store_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    rows = await make_010_store(str(path))

    current = db_json("current", "--db", str(path), cwd=tmp_path)
    assert current["current"] == [] and current["unversioned_tables"] is True and current["up_to_date"] is False
    assert current["heads"] == [HEAD]
    text = db("current", "--db", str(path), cwd=tmp_path)
    assert f"0.1.0 tables, no version (needs upgrade to {HEAD})" in text.stdout
    async with engine_for(str(path)) as engine, engine.connect() as conn:  # `current` wrote nothing
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))

    up = db_json("upgrade", "--db", str(path), cwd=tmp_path)
    assert up["before"]["current"] == [] and up["after"]["current"] == [HEAD] and up["after"]["up_to_date"]
    again = db("upgrade", "--db", str(path), cwd=tmp_path)
    assert again.returncode == 0 and f"{HEAD} (up to date); nothing to do" in again.stdout
    async with engine_for(str(path)) as engine:
        assert await snapshot(engine) == rows
        assert await version_rows(engine) == [HEAD]
    assert db_json("current", "--db", str(path), cwd=tmp_path)["up_to_date"] is True


async def test_upgrade_and_current_on_postgresql() -> None:
    try:
        cm = fresh_database()
        url = await cm.__aenter__()
    except PostgresUnavailable as exc:
        require_postgres(str(exc))
        return
    try:
        rows = await make_010_store(url)
        here = Path.cwd()
        assert db_json("upgrade", "--db", url, cwd=here)["after"]["current"] == [HEAD]
        assert db_json("current", "--db", url, cwd=here)["version"] == HEAD
        async with engine_for(url) as engine:
            assert await snapshot(engine) == rows
    finally:
        await cm.__aexit__(None, None, None)


async def test_current_of_a_missing_store_fails_without_creating_it(tmp_path: Path) -> None:
    proc = db("current", "--db", str(tmp_path / "typo.db"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "no store at sqlite:///" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "typo.db").exists()
    memory = db("current", "--db", "memory://", cwd=tmp_path)
    assert memory.returncode == 2 and "has no schema to migrate" in memory.stderr


async def test_downgrade_to_base_needs_yes_and_then_drops_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    await make_010_store(str(path))
    assert db("upgrade", "--db", str(path), cwd=tmp_path).returncode == 0
    refused = db("downgrade", "base", "--db", str(path), cwd=tmp_path)
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert db_json("current", "--db", str(path), cwd=tmp_path)["current"] == [HEAD]
    down = db_json("downgrade", "base", "--yes", "--db", str(path), cwd=tmp_path)
    assert down["before"]["current"] == [HEAD] and down["after"]["current"] == []
    async with engine_for(str(path)) as engine, engine.connect() as conn:
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("events"))


async def test_a_store_from_a_newer_version_is_reported_and_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "line.db"
    store = SQLStore(str(path))
    await store.open()
    await store.close()
    async with engine_for(str(path)) as engine, engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    current = db_json("current", "--db", str(path), cwd=tmp_path)
    assert current["unknown"] == ["0099"] and current["up_to_date"] is False
    up = db("upgrade", "--db", str(path), cwd=tmp_path)
    assert up.returncode == 2 and "revision 0099, which this pywats-events does not know" in up.stderr
    async with engine_for(str(path)) as engine:
        assert await version_rows(engine) == ["0099"]


async def test_readyz_reports_the_schema_version(tmp_path: Path) -> None:
    bus = EventBus(SQLStore(str(tmp_path / "svc.db")))
    server = Server(bus, HTTPSettings(port=0))
    await bus.start()
    try:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                body = (await client.get("/readyz")).json()
        finally:
            await server.stop()
    finally:
        await bus.stop()
    assert body["schema_version"] == HEAD


async def test_readyz_of_a_memory_store_has_no_schema_version() -> None:
    bus = EventBus()
    server = Server(bus, HTTPSettings(port=0))
    await bus.start()
    try:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                body = (await client.get("/readyz")).json()
        finally:
            await server.stop()
    finally:
        await bus.stop()
    assert body["schema_version"] is None
