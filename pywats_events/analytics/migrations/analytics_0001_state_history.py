"""Baseline of the analytics branch: the status-history table ``analytics_state_history``.

Revision ID: analytics_0001
Revises: (none; an independent branch: the table references none of the core's)

Written out here as the analytics created it with ``create_all`` before this revision existed, not
imported from ``pywats_events.analytics.store`` (a migration is a fixed step). A database that already
has the table (made that way) gets it adopted: its columns are checked, any missing index is added and
the rows stay; a table of that name with other columns is another application's and the upgrade stops
naming it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from pywats_events.errors import StoreSchemaError

revision = "analytics_0001"
down_revision = None
branch_labels = ("analytics",)
depends_on = None

_TABLE = "analytics_state_history"
#: (index name, columns), as ``sa.Index`` in the table definition named them.
_INDEXES = (
    ("ix_analytics_state_history_asset_start", ["asset", "start"]),
    ("ix_analytics_state_history_start", ["start"]),
)


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("asset", sa.String(500), primary_key=True),
        sa.Column("event_id", sa.String(200), primary_key=True),
        # sql_store.UTCDateTime's storage type (DATETIME text on SQLite, timestamptz on PostgreSQL).
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("category", sa.String(3), nullable=False),
        sa.Column("state_code", sa.Integer, nullable=True),
        sa.Column("state", sa.String(200), nullable=False),
    ]


def upgrade() -> None:
    """Create the table and its indexes, or adopt a table made before this revision.

    Raises:
        StoreSchemaError: a table of that name lacks the analytics columns.
    """
    inspector = sa.inspect(op.get_bind())
    present: set[str] = set()
    if inspector.has_table(_TABLE):
        have = {c["name"] for c in inspector.get_columns(_TABLE)}
        missing = [c.name for c in _columns() if c.name not in have]
        if missing:
            raise StoreSchemaError(
                f"table {_TABLE!r} exists but lacks the analytics columns {missing}: this database holds "
                "another application's table of that name; give the analytics handler its own db"
            )
        present = {ix["name"] for ix in inspector.get_indexes(_TABLE) if ix["name"]}
    else:
        op.create_table(_TABLE, *_columns())
    for name, columns in _INDEXES:
        if name not in present:
            op.create_index(name, _TABLE, columns)


def downgrade() -> None:
    """Drop the table and its rows."""
    for name, _cols in _INDEXES:
        op.drop_index(name, table_name=_TABLE)
    op.drop_table(_TABLE)
