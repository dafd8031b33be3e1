"""The store's tables exactly as pywats-events 0.1.0 defined them, and 0.1.0's way of making them
(``create_all``, no ``alembic_version``): the starting point of the migration tests. Frozen here so that
later changes to ``sql_store`` cannot change what "a 0.1.0 store" means."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine


class UTCDateTime(sa.TypeDecorator[datetime]):
    """0.1.0's timestamp type: naive UTC text on SQLite, timestamptz on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value


metadata = sa.MetaData()

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False, index=True),
    sa.Column("category", sa.String(200), nullable=False, index=True),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("severity", sa.SmallInteger, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False, index=True),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("stored_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("handler", sa.String(200), primary_key=True),
    sa.Column("completed_at", UTCDateTime, nullable=False, index=True),
    sqlite_with_rowid=False,
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("reason", sa.String(50), nullable=False, index=True),
    sa.Column("handler", sa.String(200), nullable=True, index=True),
    sa.Column("event", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("error_type", sa.Text, nullable=False),
    sa.Column("error_message", sa.Text, nullable=False),
    sa.Column("traceback", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_failure_at", UTCDateTime, nullable=False, index=True),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
    sa.Column("raw_body", sa.LargeBinary, nullable=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("transport", sa.Text, nullable=False),
    sa.Column("headers", sa.JSON, nullable=False),
)


async def create_010_store(engine: AsyncEngine) -> None:
    """Make the tables as 0.1.0's ``SQLStore.open`` did: ``create_all``, no version recorded."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def describe(conn: sa.Connection) -> dict[str, object]:
    """Everything about the store tables a migration could get wrong: per table the columns (name, type as
    the database reports it, nullable, default), primary key, indexes, and on SQLite the CREATE text
    (which holds WITHOUT ROWID)."""
    inspector = sa.inspect(conn)
    out: dict[str, object] = {}
    for name in ("events", "idempotency", "dead_letters"):
        cols = [(c["name"], str(c["type"]), c["nullable"], c.get("default")) for c in inspector.get_columns(name)]
        pk = inspector.get_pk_constraint(name)
        indexes = sorted(
            (ix["name"], tuple(ix["column_names"]), bool(ix["unique"])) for ix in inspector.get_indexes(name)
        )
        entry: dict[str, object] = {"columns": cols, "pk": (pk["name"], pk["constrained_columns"]), "indexes": indexes}
        if conn.dialect.name == "sqlite":
            entry["sql"] = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).scalar_one()
        out[name] = entry
    return out
