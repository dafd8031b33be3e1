"""Baseline: the schema of pywats-events 0.1.0 (events, idempotency, dead_letters and their indexes).

Revision ID: 0001
Revises: (none)

The tables are written out here as they were in 0.1.0, not imported from ``sql_store``: a migration is
a fixed step, and the store's table definitions move on with later revisions.

A store made by 0.1.0 already has these tables (``create_all``) but no ``alembic_version``: upgrading it
runs this revision, which finds each table present, checks that it has the 0.1.0 columns, adds any
missing index and leaves the rows alone; Alembic then records 0001. A table that exists with other
columns is someone else's table, and the upgrade stops with an error naming it instead of adopting it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from pywats_events.errors import StoreSchemaError

revision = "0001"
down_revision = None
branch_labels = ("pywats_events",)
depends_on = None

_TS = sa.DateTime(timezone=True)  # sql_store._UTCDateTime's storage type (DATETIME / timestamptz)


def _tables() -> list[tuple[str, list[sa.Column[Any]], dict[str, Any], list[tuple[str, str]]]]:
    """The 0.1.0 tables: ``(name, columns, table options, indexes)``, the indexes ``(name, column)`` as
    0.1.0's ``index=True`` named them. New column objects on each call (a column belongs to one table)."""
    events: list[sa.Column[Any]] = [
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("type", sa.String(200), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("severity", sa.SmallInteger, nullable=False),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("stored_at", _TS, nullable=False),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
    ]
    idempotency: list[sa.Column[Any]] = [
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("handler", sa.String(200), primary_key=True),
        sa.Column("completed_at", _TS, nullable=False),
    ]
    dead_letters: list[sa.Column[Any]] = [
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("reason", sa.String(50), nullable=False),
        sa.Column("handler", sa.String(200), nullable=True),
        sa.Column("event", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error_type", sa.Text, nullable=False),
        sa.Column("error_message", sa.Text, nullable=False),
        sa.Column("traceback", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_failure_at", _TS, nullable=False),
        sa.Column("last_failure_at", _TS, nullable=False),
        sa.Column("raw_body", sa.LargeBinary, nullable=True),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("transport", sa.Text, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
    ]
    return [
        (
            "events",
            events,
            {},
            [("ix_events_type", "type"), ("ix_events_category", "category"), ("ix_events_timestamp", "timestamp")],
        ),
        # The primary key is the table (SQLite WITHOUT ROWID), as in 0.1.0.
        ("idempotency", idempotency, {"sqlite_with_rowid": False}, [("ix_idempotency_completed_at", "completed_at")]),
        (
            "dead_letters",
            dead_letters,
            {},
            [
                ("ix_dead_letters_reason", "reason"),
                ("ix_dead_letters_handler", "handler"),
                ("ix_dead_letters_first_failure_at", "first_failure_at"),
            ],
        ),
    ]


def upgrade() -> None:
    """Create the 0.1.0 tables and indexes, or adopt them where 0.1.0's ``create_all`` made them.

    Raises:
        StoreSchemaError: a table of that name exists without the 0.1.0 columns (not a pywats-events table).
    """
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, columns, options, indexes in _tables():
        present: set[str] = set()
        if name in existing:
            have = {c["name"] for c in inspector.get_columns(name)}
            missing = [c.name for c in columns if c.name not in have]
            if missing:
                raise StoreSchemaError(
                    f"table {name!r} exists but lacks the pywats-events columns {missing}: this database "
                    "holds another application's table of that name; use a separate database for the store"
                )
            present = {ix["name"] for ix in inspector.get_indexes(name) if ix["name"]}
        else:
            op.create_table(name, *columns, **options)
        for index, column in indexes:
            if index not in present:
                op.create_index(index, name, [column])


def downgrade() -> None:
    """Drop the tables and everything in them (back to an empty database)."""
    for name, _columns, _options, indexes in reversed(_tables()):
        for index, _column in indexes:
            op.drop_index(index, table_name=name)
        op.drop_table(name)
