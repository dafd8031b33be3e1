"""Alembic environment of the SQL store's migrations (run by ``pywats_events.migrations``, not imported).

The store hands over its own connection, already inside the transaction that holds the schema lock
(``config.attributes["connection"]``), so every revision and the ``alembic_version`` update commit
together under that lock. SQLite runs in batch mode (``render_as_batch``): it cannot ``ALTER`` most of a
table, so Alembic rebuilds the table (create a copy, move the rows, swap) inside the same transaction.

Run from the ``alembic`` command line (a developer writing a revision, with an ini whose
``script_location`` is ``pywats_events:migrations``), the database comes from ``sqlalchemy.url`` or
``PYWATS_EVENTS_DB`` and ``target_metadata`` is the store's tables, so ``--autogenerate`` compares the
code with that database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection


def _configure(connection: Connection) -> None:
    from pywats_events.sql_store import _metadata

    attributes = context.config.attributes
    context.configure(
        connection=connection,
        # A plug-in whose tables live in a database of its own keeps its version in its own table
        # (``pywats_events.migrations.upgrade(version_table=...)``), so that database may also be the store's.
        target_metadata=_metadata,
        version_table=attributes.get("version_table", "alembic_version"),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _standalone() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from pywats_events.sql_store import _resolve

    url = _resolve(context.config.get_main_option("sqlalchemy.url")).driver_url
    if url is None:
        raise SystemExit("memory:// has no schema to migrate")

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_configure)
        finally:
            await engine.dispose()

    asyncio.run(run())


_connection = context.config.attributes.get("connection")
if _connection is not None:
    _configure(_connection)
else:
    _standalone()
