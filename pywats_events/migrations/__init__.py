"""Schema migrations of the SQL store (Alembic): the store's tables carry a version and move forward.

``SQLStore.open`` calls ``upgrade``: it reads the revision recorded in ``alembic_version``; when that is
already the newest this code knows it does nothing more; otherwise it takes the schema lock, reads it
again (another process may have just upgraded) and runs the missing revisions in that one transaction.
The lock is PostgreSQL's transaction advisory lock ``SCHEMA_LOCK_KEY`` (the key 0.1.0 took around
``create_all``, so a 0.1.0 process and this one never create tables at the same time) and SQLite's write
lock (``BEGIN IMMEDIATE``; other processes wait up to the store's ``busy_timeout``). DDL is
transactional on both, so a failed upgrade leaves the schema as it was.

Revisions live in ``versions/`` beside this file (branch label ``pywats_events``). A store made by
0.1.0 has the tables but no ``alembic_version``: revision 0001 adopts them (see its docstring).

Plug-ins with tables bring their own branch: a package of revision files named by an entry point in the
group ``pywats_events.migrations`` (the entry's name is the plug-in's branch label)::

    [project.entry-points."pywats_events.migrations"]
    my_plugin = "my_plugin.migrations"     # a package whose .py files are Alembic revisions

Its first revision has ``down_revision = None`` and ``branch_labels = ("my_plugin",)``; ``upgrade``
targets ``heads``, so every branch installed is brought up to date.

A plug-in whose tables live in a database of its own (the lab status DB, ``pywats_lab.migrations``) is not
an entry point here: it calls ``upgrade(engine, script=script_directory((its_dir,)), version_table=...,
marker_table=...)`` on its own engine, with its own version table, so its database may be a separate one
or the store's own without either side seeing the other's revisions as unknown.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.metadata as md
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import PluginError, StoreSchemaError

__all__ = [
    "MIGRATIONS_GROUP",
    "SCHEMA_LOCK_KEY",
    "SchemaState",
    "downgrade",
    "schema_state",
    "script_directory",
    "upgrade",
    "version_locations",
]

#: Entry-point group naming plug-ins' revision packages.
MIGRATIONS_GROUP = "pywats_events.migrations"
#: PostgreSQL advisory lock key held while the schema changes (unchanged since 0.1.0).
SCHEMA_LOCK_KEY = zlib.crc32(b"pywats_events.schema")

_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this code.

    Attributes:
        current: revisions recorded in ``alembic_version`` (one per branch; empty: none recorded).
        heads: the newest revisions this code (with its installed plug-ins) knows.
        unknown: recorded revisions this code does not know: written by a newer pywats-events or by a
            plug-in not installed here.
        unversioned_tables: the database has store tables but no ``alembic_version`` (made by 0.1.0).
        up_to_date: every head is applied (recorded, or an ancestor or dependency of a recorded revision:
            Alembic records only the newest of a chain) and nothing unknown is recorded.
    """

    current: tuple[str, ...]
    heads: tuple[str, ...]
    unknown: tuple[str, ...] = ()
    unversioned_tables: bool = False
    up_to_date: bool = False

    @property
    def version(self) -> str | None:
        """The recorded revisions as one string (``"0001"``; branches joined by ``", "``), ``None`` if none."""
        return ", ".join(self.current) or None

    def describe(self) -> str:
        """One line for people: ``"0001 (up to date)"``, ``"none (needs upgrade to 0001)"``, ..."""
        heads = ", ".join(self.heads)
        if self.unknown:
            return f"{self.version} (unknown here: {', '.join(self.unknown)}; this code knows up to {heads})"
        if self.up_to_date:
            return f"{self.version} (up to date)"
        what = "0.1.0 tables, no version" if self.unversioned_tables else (self.version or "none")
        return f"{what} (needs upgrade to {heads})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists of revision ids, booleans)."""
        return {
            "current": list(self.current),
            "heads": list(self.heads),
            "unknown": list(self.unknown),
            "unversioned_tables": self.unversioned_tables,
            "up_to_date": self.up_to_date,
        }


def version_locations() -> list[str]:
    """Directories holding revisions: this package's ``versions/``, then each plug-in's (entry points in
    ``MIGRATIONS_GROUP``, sorted by name). Read once per process: scanning the installed distributions'
    metadata costs more than the rest of an open, and plug-ins are installed between runs.

    Raises:
        PluginError: an entry point names a module that cannot be imported or is not a package.
    """
    return list(_locations())


@functools.cache
def _locations() -> tuple[str, ...]:
    locations = [str(_HERE / "versions")]
    for ep in sorted(md.entry_points(group=MIGRATIONS_GROUP), key=lambda e: e.name):
        where = f"entry point {ep.name!r} in group {MIGRATIONS_GROUP!r} ({ep.value!r})"
        try:
            module = importlib.import_module(ep.value)
        except ImportError as exc:
            raise PluginError(f"{where}: cannot import it: {exc}") from exc
        paths = list(getattr(module, "__path__", ()))
        if not paths:
            raise PluginError(f"{where}: not a package (a directory of revision files)")
        locations.append(str(Path(paths[0]).resolve()))
    return tuple(locations)


def script_directory(locations: tuple[str, ...] | None = None) -> ScriptDirectory:
    """The Alembic script directory over ``locations`` (default ``version_locations()``).

    Raises:
        PluginError: see ``version_locations``.
    """
    return _script(tuple(locations) if locations is not None else _locations())


@functools.cache
def _script(locations: tuple[str, ...]) -> ScriptDirectory:
    # Cached: the revision files are parsed once per process, not at every store open.
    return ScriptDirectory(str(_HERE), version_locations=list(locations))


def _state(
    conn: Connection, script: ScriptDirectory, version_table: str = "alembic_version", marker_table: str = "events"
) -> SchemaState:
    ctx = MigrationContext.configure(conn, opts={"version_table": version_table})
    current = tuple(sorted(ctx.get_current_heads()))
    unknown = []
    for rev in current:
        try:
            script.get_revision(rev)
        except CommandError:
            unknown.append(rev)
    unversioned = not current and sa.inspect(conn).has_table(marker_table)
    heads = tuple(sorted(script.get_heads()))
    applied = set() if unknown else {r.revision for r in script.iterate_revisions(current, "base") if r}
    return SchemaState(current, heads, tuple(unknown), unversioned, bool(current) and applied >= set(heads))


@contextlib.asynccontextmanager
async def _locked(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the schema lock (see the module docstring); commits on exit."""
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite opens no transaction for DDL by itself; this one also takes the file's write lock.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        yield conn


def _run(
    conn: Connection, script: ScriptDirectory, target: str, *, up: bool, version_table: str = "alembic_version"
) -> None:
    cfg = Config()  # no ini file: everything comes from here
    cfg.attributes["connection"] = conn
    cfg.attributes["version_table"] = version_table

    def steps(rev: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, rev) if up else script._downgrade_revs(target, rev)

    with EnvironmentContext(cfg, script, fn=steps, destination_rev=target):
        script.run_env()


def _refuse_unknown(state: SchemaState) -> None:
    if state.unknown:
        raise StoreSchemaError(
            f"the database's schema is at revision {', '.join(state.unknown)}, which this pywats-events does "
            f"not know (it knows up to {', '.join(state.heads)}): it was upgraded by a newer pywats-events or "
            f"by a plug-in with tables ({MIGRATIONS_GROUP!r} entry point) not installed here; install that "
            "version, or run its `pywats-events db downgrade` first"
        )


async def schema_state(
    engine: AsyncEngine,
    script: ScriptDirectory | None = None,
    *,
    version_table: str = "alembic_version",
    marker_table: str = "events",
) -> SchemaState:
    """Read where ``engine``'s database stands (changes nothing; no lock). ``version_table``: where the
    revisions are recorded; ``marker_table``: a table whose presence without a version means "made before
    migrations" (``unversioned_tables``).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database cannot be read.
        PluginError: a plug-in's revision package cannot be found.
    """
    script = script or script_directory()
    async with engine.connect() as conn:
        return await conn.run_sync(_state, script, version_table, marker_table)


async def upgrade(
    engine: AsyncEngine,
    target: str = "heads",
    script: ScriptDirectory | None = None,
    *,
    version_table: str = "alembic_version",
    marker_table: str = "events",
) -> tuple[SchemaState, SchemaState]:
    """Bring the database to ``target`` (default every head) under the schema lock; a no-op (no lock
    taken) when it is there already.

    Args:
        engine: the store's async engine (aiosqlite or asyncpg).
        target: an Alembic revision spec: ``"heads"``, ``"0002"``, ``"pywats_events@head"``.
        script: the revisions to use (default: this package's and the installed plug-ins').
        version_table / marker_table: see ``schema_state`` (a plug-in with a database of its own).

    Returns:
        ``(before, after)``: the state read under the lock before upgrading, and after.

    Raises:
        StoreSchemaError: the database records a revision this code does not know, or a store table's name
            is taken by another application's table.
        sqlalchemy.exc.SQLAlchemyError: the database refused a step (nothing of the upgrade is kept).
        alembic.util.CommandError: ``target`` names no revision.
    """
    script = script or script_directory()
    tables = (version_table, marker_table)
    before = await schema_state(engine, script, version_table=version_table, marker_table=marker_table)
    _refuse_unknown(before)
    if target == "heads" and before.up_to_date:
        return before, before
    async with _locked(engine) as conn:
        before = await conn.run_sync(_state, script, *tables)
        _refuse_unknown(before)
        if not (target == "heads" and before.up_to_date):
            await conn.run_sync(functools.partial(_run, up=True, version_table=version_table), script, target)
        after = await conn.run_sync(_state, script, *tables)
    return before, after


async def downgrade(
    engine: AsyncEngine,
    target: str,
    script: ScriptDirectory | None = None,
    *,
    version_table: str = "alembic_version",
    marker_table: str = "events",
) -> tuple[SchemaState, SchemaState]:
    """Take the database back to ``target`` under the schema lock (``"base"`` drops every table and its
    rows; ``"0001"`` keeps the 0.1.0 schema).

    Returns:
        ``(before, after)`` as for ``upgrade``.

    Raises:
        StoreSchemaError: the database records a revision this code does not know (it cannot run that
            revision's downgrade: use the version that wrote it).
        sqlalchemy.exc.SQLAlchemyError: the database refused a step (nothing of it is kept).
        alembic.util.CommandError: ``target`` names no revision.
    """
    script = script or script_directory()
    tables = (version_table, marker_table)
    async with _locked(engine) as conn:
        before = await conn.run_sync(_state, script, *tables)
        _refuse_unknown(before)
        await conn.run_sync(functools.partial(_run, up=False, version_table=version_table), script, target)
        after = await conn.run_sync(_state, script, *tables)
    return before, after
