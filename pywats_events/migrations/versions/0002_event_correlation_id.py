"""Stored events get an indexed ``correlation_id`` column (the console's and ``events list``'s filter).

Revision ID: 0002
Revises: 0001

Upgrade adds the nullable column ``events.correlation_id`` (``VARCHAR(200)``: the first 200 characters
of the event's ``correlation_id``, as ``sql_store.CORRELATION_ID_CHARS`` says), fills it for the events
already stored from their JSON body (one ``UPDATE``; on SQLite ``json_extract``, on PostgreSQL ``->>``),
then creates the index ``ix_events_correlation_id``. Downgrade drops the index and the column (in place;
SQLite before 3.35: Alembic's batch mode rebuilds the table); the rows and their JSON bodies stay as they are.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: As ``sql_store.CORRELATION_ID_CHARS`` was when this revision was written (a revision is a fixed step).
_CHARS = 200


def upgrade() -> None:
    """Add, fill and index ``events.correlation_id``."""
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("correlation_id", sa.String(_CHARS), nullable=True))
    events = sa.table("events", sa.column("body", sa.JSON), sa.column("correlation_id", sa.String(_CHARS)))
    value = events.c.body["correlation_id"].as_string()
    op.execute(
        events.update()
        .where(value.is_not(None))
        .values(correlation_id=sa.func.substr(value, 1, _CHARS))
    )
    op.create_index("ix_events_correlation_id", "events", ["correlation_id"])


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_events_correlation_id", table_name="events")
    import sqlite3

    if op.get_bind().dialect.name != "sqlite" or sqlite3.sqlite_version_info >= (3, 35):
        # SQLite 3.35+ drops a column in place, leaving the table as 0001 made it (no rebuild).
        op.drop_column("events", "correlation_id")
    else:
        with op.batch_alter_table("events") as batch:
            batch.drop_column("correlation_id")
