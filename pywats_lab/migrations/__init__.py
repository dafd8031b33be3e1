"""Schema migrations of the lab status DB (Alembic, on ``pywats_events.migrations``): branch ``pywats_lab``.

The status DB is a database of its own (``[lab] db``, ``PYWATS_LAB_DB``), not the event store's, so its
branch is not an entry point of ``pywats_events.migrations`` (that would create the lab tables in every
event store and record their revision there). ``upgrade`` applies this package's revisions to the status
DB's engine, recording them in the table ``VERSION_TABLE`` (not ``alembic_version``): the status DB may
be a separate database or the event store's own, and neither side sees the other's revisions as unknown.
The status DB runs it at open, under the same schema lock as the store (PostgreSQL advisory lock, SQLite
``BEGIN IMMEDIATE``); a second run is a no-op.

Revision ``lab_0001`` reproduces the tables as 0.1.0's ``create_all`` made them and adopts a status DB that
already has them, rows kept.
"""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from pywats_events import migrations
from pywats_events.migrations import SchemaState

__all__ = ["BRANCH", "VERSION_TABLE", "downgrade", "schema_state", "script_directory", "upgrade"]

#: The branch label of the lab's revisions.
BRANCH = "pywats_lab"
#: Where the status DB records its revisions.
VERSION_TABLE = "pywats_lab_alembic_version"
#: A table 0.1.0's ``create_all`` made: present without a version means "adopt" (``unversioned_tables``).
MARKER_TABLE = "lab_processes"

_VERSIONS = str(Path(__file__).resolve().parent / "versions")


def script_directory() -> ScriptDirectory:
    """The lab's revisions (this package's ``versions/`` only)."""
    return migrations.script_directory((_VERSIONS,))


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where the status DB behind ``engine`` stands (changes nothing)."""
    return await migrations.schema_state(
        engine, script_directory(), version_table=VERSION_TABLE, marker_table=MARKER_TABLE
    )


async def upgrade(engine: AsyncEngine, target: str = "heads") -> tuple[SchemaState, SchemaState]:
    """Bring the status DB to ``target`` (default the newest revision); ``(before, after)`` states.

    Raises:
        pywats_events.errors.StoreSchemaError: the DB records a lab revision this code does not know (a
            newer pywats-events wrote it), or a ``lab_*`` table exists with other columns.
        sqlalchemy.exc.SQLAlchemyError: the database refused a step (nothing of the upgrade is kept).
    """
    return await migrations.upgrade(
        engine, target, script_directory(), version_table=VERSION_TABLE, marker_table=MARKER_TABLE
    )


async def downgrade(engine: AsyncEngine, target: str) -> tuple[SchemaState, SchemaState]:
    """Take the status DB back to ``target`` (``"base"`` drops the lab tables and their rows)."""
    return await migrations.downgrade(
        engine, target, script_directory(), version_table=VERSION_TABLE, marker_table=MARKER_TABLE
    )
