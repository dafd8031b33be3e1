"""SQLStore specifics: URLs, errors, group commit, durability across kill -9, concurrent open."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pywats_events.errors import StoreError
from pywats_events.event import Event
from pywats_events.sql_store import DEFAULT_DB, ENV_VAR, SQLStore, open_store
from pywats_events.store import DeadLetterEntry, EventQuery, MemoryStore
from tests.pg import PostgresUnavailable, fresh_database, require_postgres

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLStore]:
    store = SQLStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# -- URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver", "database", "printable"),
    [
        ("sqlite:///events.db", "sqlite+aiosqlite", "events.db", "sqlite:///events.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite", "/abs/path.db", "sqlite:////abs/path.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite", "x.db", "sqlite:///x.db"),
        ("./x.db", "sqlite+aiosqlite", "x.db", "sqlite:///x.db"),
        ("/tmp/x.db", "sqlite+aiosqlite", "/tmp/x.db", "sqlite:////tmp/x.db"),
        ("postgresql://user@host/db", "postgresql+asyncpg", "db", "postgresql://user@host/db"),
        ("postgres://user@host:5433/db", "postgresql+asyncpg", "db", "postgresql://user@host:5433/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg", "db", "postgresql://u@h/db"),
    ],
)
def test_open_store_translates_urls_and_paths_to_async_drivers(
    given: str, driver: str, database: str, printable: str
) -> None:
    store = open_store(given)
    assert isinstance(store, SQLStore)
    assert store._driver_url.drivername == driver
    assert store._driver_url.database == database
    assert store.url == printable


def test_memory_url_gives_a_memory_store() -> None:
    assert isinstance(open_store("memory://"), MemoryStore)


def test_url_is_printable_without_password() -> None:
    store = open_store("postgresql://alice:s3cr3t-pw@db.example:5432/events")
    assert "s3cr3t-pw" not in store.url and "s3cr3t-pw" not in repr(store)
    assert store.url.startswith("postgresql://alice:")
    assert store._driver_url.password == "s3cr3t-pw"


def test_default_and_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert open_store(None).url == f"sqlite:///{DEFAULT_DB.removeprefix('./')}"
    monkeypatch.setenv(ENV_VAR, "memory://")
    assert isinstance(open_store(None), MemoryStore)
    monkeypatch.setenv(ENV_VAR, "/tmp/from-env.db")
    assert open_store("").url == "sqlite:////tmp/from-env.db"
    assert open_store("other.db").url == "sqlite:///other.db"


@pytest.mark.parametrize("given", ["mysql://u:pw@h/db", "redis://localhost", "ftp://x/y.db"])
def test_unknown_scheme_is_a_store_error_naming_it(given: str) -> None:
    with pytest.raises(StoreError, match=repr(given.split("://")[0])) as info:
        open_store(given)
    assert "pw@" not in str(info.value)


def test_in_memory_sqlite_url_is_refused_with_a_hint() -> None:
    with pytest.raises(StoreError, match="memory://"):
        open_store("sqlite://")


async def test_unopenable_sqlite_file_is_a_store_error_with_the_reason(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "no" / "such" / "dir" / "x.db"))
    with pytest.raises(StoreError, match=r"cannot open database sqlite:///.*x\.db: .*unable to open"):
        await store.open()


async def test_unreachable_postgresql_is_a_store_error_without_password() -> None:
    store = SQLStore("postgresql://bob:hunter2-secret@127.0.0.1:1/nodb", connect_timeout=3)
    with pytest.raises(StoreError) as info:
        await store.open()
    text = str(info.value)
    assert "cannot open database postgresql://bob:***@127.0.0.1:1/nodb" in text
    assert "hunter2-secret" not in text and "hunter2-secret" not in repr(info.value.__cause__)


async def test_missing_postgresql_database_is_a_store_error(pg_url: str) -> None:
    store = open_store(pg_url.rsplit("/", 1)[0] + "/pywats_does_not_exist")
    with pytest.raises(StoreError, match="does not exist"):
        await store.open()


async def test_writes_on_a_store_that_is_not_open_raise(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "x.db"))
    with pytest.raises(StoreError, match="not open"):
        store.mark_completed([("e", "h")])
    await store.open()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        store.append_events([Event(type="a.b")])
    with pytest.raises(StoreError, match="not open"):
        await store.completed_handlers(["e"])


# -- SQLite specifics ------------------------------------------------------------------------------


async def test_sqlite_uses_wal_and_normal_sync(sqlite_store: SQLStore) -> None:
    async with sqlite_store._require_engine().connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30_000


async def test_sqlite_timestamps_are_fixed_width_utc_text(sqlite_store: SQLStore, tmp_path: Path) -> None:
    await sqlite_store.mark_completed([("e", "h")])
    await sqlite_store.close()
    with sqlite3.connect(tmp_path / "s.db") as raw:
        (text,) = raw.execute("SELECT completed_at FROM idempotency").fetchone()
    assert len(text) == 26 and text[10] == " " and "+" not in text


async def test_open_is_idempotent_and_reopen_keeps_data(tmp_path: Path) -> None:
    path = str(tmp_path / "r.db")
    async with open_store(path) as store:
        await store.open()
        await store.mark_completed([("e", "h")])
    async with open_store(f"sqlite:///{path}") as store:
        assert await store.completed_handlers(["e"]) == {"e": {"h"}}


WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pywats_events.sql_store import open_store
    from pywats_events.event import Event

    async def main():
        store = open_store(sys.argv[1])
        await store.open()
        pending = [store.mark_completed([(f"e{i}", "h")]) for i in range(500)]
        last = store.append_events([Event(id="kept", type="test.result")])
        await last
        print("committed", flush=True)
        store.mark_completed([("never-awaited", "h")])  # may or may not make it; not checked
        time.sleep(60)  # block the loop: nothing else commits; the parent kills us

    asyncio.run(main())
    """
)


async def test_committed_writes_survive_kill_9(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, path, stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.strip() == b"committed"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    async with open_store(path) as store:
        # FIFO: the resolved future implies the 500 records queued before it are committed too
        got = await store.completed_handlers([f"e{i}" for i in range(500)])
        assert len(got) == 500
        assert [s.event.id for s in await store.query_events(EventQuery())] == ["kept"]


# -- group commit ----------------------------------------------------------------------------------


async def test_close_commits_writes_nobody_awaited(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    store = open_store(path)
    await store.open()
    futures = [store.mark_completed([(f"e{i}", "h")]) for i in range(1000)]
    await store.close()
    assert all(f.done() and f.exception() is None for f in futures)  # type: ignore[attr-defined]
    async with open_store(path) as again:
        assert len(await again.completed_handlers([f"e{i}" for i in range(1000)])) == 1000


async def test_flush_waits_for_everything_queued_before_it(sqlite_store: SQLStore) -> None:
    futures = [sqlite_store.append_events([Event(type="a.b")]) for _ in range(300)]
    await sqlite_store.flush()
    assert all(f.done() for f in futures)  # type: ignore[attr-defined]
    await sqlite_store.flush()  # nothing queued: returns at once


async def test_concurrent_writes_share_transactions(sqlite_store: SQLStore) -> None:
    batches: list[int] = []
    original = sqlite_store._write_batch

    async def counting(batch: list) -> None:  # type: ignore[type-arg]
        batches.append(len(batch))
        await original(batch)

    sqlite_store._write_batch = counting  # type: ignore[method-assign]
    await asyncio.gather(*(sqlite_store.mark_completed([(f"e{i}", "h")]) for i in range(2000)))
    assert sum(batches) == 2000 and len(batches) < 100


def bad_entry() -> DeadLetterEntry:
    entry = DeadLetterEntry(id="bad", reason="failed")
    entry.reason = None  # type: ignore[assignment]  # violates NOT NULL
    return entry


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_failing_write_fails_only_its_own_future(backend: str, tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = str(tmp_path / "f.db")
        else:
            try:
                url = await stack.enter_async_context(fresh_database())
            except PostgresUnavailable as exc:
                require_postgres(str(exc))
        store = await stack.enter_async_context(open_store(url))
        good1 = store.mark_completed([("e1", "h")])
        bad = store.add_dead_letters([bad_entry()])
        good2 = store.append_events([Event(id="ev", type="a.b")])
        results = await asyncio.gather(good1, bad, good2, return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], StoreError) and "write to" in str(results[1])
        assert await store.completed_handlers(["e1"]) == {"e1": {"h"}}
        assert await store.count_events() == 1
        assert await store.count_dead_letters() == 0
        # the writer carries on after the failure
        await store.mark_completed([("e2", "h")])
        assert await store.completed_handlers(["e2"]) == {"e2": {"h"}}


# -- PostgreSQL specifics --------------------------------------------------------------------------

OPENER = textwrap.dedent(
    """
    import asyncio, sys
    from pywats_events.sql_store import open_store

    async def main():
        async with open_store(sys.argv[1]) as store:
            await store.mark_completed([(sys.argv[2], "h")])
        print("ok", flush=True)

    asyncio.run(main())
    """
)


async def test_three_processes_open_the_same_new_postgresql_database(pg_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            OPENER,
            pg_url,
            f"p{i}",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for i in range(3)
    ]
    outs = await asyncio.gather(*(asyncio.wait_for(p.communicate(), 120) for p in procs))
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    async with open_store(pg_url) as store:
        assert set(await store.completed_handlers(["p0", "p1", "p2"])) == {"p0", "p1", "p2"}


async def test_three_engines_open_the_same_new_postgresql_database_at_once(pg_url: str) -> None:
    stores = [open_store(pg_url) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await asyncio.gather(*(s.mark_completed([(f"x{i}", "h")]) for i, s in enumerate(stores)))
        assert len(await stores[0].completed_handlers(["x0", "x1", "x2"])) == 3
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_postgresql_times_come_back_aware_utc(pg_url: str) -> None:
    from datetime import timedelta, timezone

    local = timezone(timedelta(hours=-5))
    async with open_store(pg_url) as store:
        await store.append_events([Event(id="t", type="a.b", timestamp=Event(type="a.b").timestamp.astimezone(local))])
        (stored,) = await store.query_events(EventQuery())
        assert stored.event.timestamp.utcoffset() == timedelta(0)
        assert stored.stored_at.utcoffset() == timedelta(0)


async def test_concurrent_lookups_are_answered_by_few_queries(sqlite_store: SQLStore) -> None:
    await sqlite_store.mark_completed([(f"e{i}", "h") for i in range(300)])
    queries: list[int] = []
    original = sqlite_store._lookup

    async def counting(ids: list[str]) -> dict[str, set[str]]:
        queries.append(len(ids))
        return await original(ids)

    sqlite_store._lookup = counting  # type: ignore[method-assign]
    answers = await asyncio.gather(*(sqlite_store.completed_handlers([f"e{i}"]) for i in range(300)))
    assert answers == [{f"e{i}": {"h"}} for i in range(300)]
    assert sum(queries) == 300 and len(queries) < 10


async def test_payload_values_json_cannot_hold_are_stored_as_text(sqlite_store: SQLStore) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque-value"

    await sqlite_store.append_events([Event(id="o", type="a.b", payload={"x": Opaque()})])
    (stored,) = await sqlite_store.query_events(EventQuery())
    assert stored.event.payload == {"x": "opaque-value"}


async def test_a_dead_writer_task_makes_writes_fail_instead_of_hang(sqlite_store: SQLStore) -> None:
    assert sqlite_store._writer is not None
    sqlite_store._writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sqlite_store._writer
    with pytest.raises(StoreError, match="broken"):
        sqlite_store.mark_completed([("e", "h")])


async def test_writer_and_lookup_recover_after_postgresql_drops_their_connections(pg_url: str) -> None:
    import asyncpg

    async with open_store(pg_url) as store:
        await store.mark_completed([("before", "h")])
        assert await store.completed_handlers(["before"]) == {"before": {"h"}}
        dbname = pg_url.rsplit("/", 1)[1]
        admin = await asyncpg.connect(pg_url.replace("postgresql://", "postgres://"))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                dbname,
            )
        finally:
            await admin.close()
        assert killed >= 2
        await store.mark_completed([("after", "h")])  # both retry once on a new connection
        assert await store.completed_handlers(["before", "after"]) == {"before": {"h"}, "after": {"h"}}


SQLITE_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pywats_events.sql_store import open_store

    async def main():
        async with open_store(sys.argv[1]) as store:
            for i in range(40):
                await asyncio.gather(*(store.mark_completed([(f"{sys.argv[2]}-{i}-{j}", "h")]) for j in range(50)))
                await store.purge_events(keep_at_most=10)  # an administrative write in between
        print("ok", flush=True)

    asyncio.run(main())
    """
)


async def test_two_processes_write_the_same_sqlite_file_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    async with open_store(path):
        pass  # create the tables first, so the test is about concurrent writes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", SQLITE_WRITER, path, name, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for name in ("a", "b")
    ]
    outs = await asyncio.gather(*(asyncio.wait_for(p.communicate(), 120) for p in procs))
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err.decode()
        assert out.strip() == b"ok"
    async with open_store(path) as store:
        wanted = [f"{n}-{i}-{j}" for n in "ab" for i in range(40) for j in range(50)]
        assert len(await store.completed_handlers(wanted)) == 4000


async def test_sqlite_writer_connection_uses_wal_normal_sync_and_its_own_thread(sqlite_store: SQLStore) -> None:
    await sqlite_store.mark_completed([("e1", "h")])
    conn = sqlite_store._wsync
    assert conn is not None and sqlite_store._wthread is not None
    pool = sqlite_store._wthread
    pragmas = await asyncio.get_running_loop().run_in_executor(
        pool, lambda: [conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("journal_mode", "synchronous")]
    )
    assert pragmas == ["wal", 1]  # NORMAL
    await sqlite_store.close()
    assert sqlite_store._wsync is None and sqlite_store._wthread is None


async def test_sqlite_writer_reopens_its_connection_after_it_broke(sqlite_store: SQLStore) -> None:
    await sqlite_store.mark_completed([("e1", "h")])
    broken = sqlite_store._wsync
    assert broken is not None
    await asyncio.get_running_loop().run_in_executor(sqlite_store._wthread, broken.close)
    # The next transaction fails on the closed connection, is retried once on a new one, and commits.
    await sqlite_store.mark_completed([("e2", "h")])
    assert sqlite_store._wsync is not None and sqlite_store._wsync is not broken
    assert await sqlite_store.completed_handlers(["e1", "e2"]) == {"e1": {"h"}, "e2": {"h"}}


async def test_sqlite_synchronous_full_is_applied_to_the_writer_and_other_values_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="synchronous"):
        SQLStore(str(tmp_path / "x.db"), synchronous="OFF")
    store = SQLStore(str(tmp_path / "full.db"), synchronous="full")
    await store.open()
    try:
        await store.mark_completed([("e1", "h")])
        conn = store._wsync
        assert conn is not None
        level = await asyncio.get_running_loop().run_in_executor(
            store._wthread, lambda: conn.execute("PRAGMA synchronous").fetchone()[0]
        )
        assert level == 2  # FULL
    finally:
        await store.close()
