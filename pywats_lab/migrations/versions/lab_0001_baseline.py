"""Lab status DB baseline: the tables of pywats-events 0.1.0's ``pywats_lab.status_db`` (``create_all``).

Revision ID: lab_0001
Revises: (none; branch ``pywats_lab``)

The tables are written out here as they were, not imported from ``status_db``: a migration is a fixed step.
A status DB made before migrations already has them but no version: this revision finds each table present,
checks that it has the columns, adds any missing index and leaves the rows alone. A ``lab_*`` table with
other columns is someone else's, and the upgrade stops naming it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

from pywats_events.errors import StoreSchemaError

revision = "lab_0001"
down_revision = None
branch_labels = ("pywats_lab",)
depends_on = None


def _metadata() -> MetaData:
    """The 0.1.0 lab tables, indexes and constraints (new objects on each call)."""
    md = MetaData()
    Table(
        "lab_processes",
        md,
        Column("uuid", String(36), primary_key=True),
        Column("name", String(500), nullable=False),
        Column("src", Text, nullable=False, default=""),
        Column("created", Float, nullable=False),
    )
    Table(
        "lab_experiments",
        md,
        Column("uuid", String(36), primary_key=True),
        Column("process_uuid", String(36), ForeignKey("lab_processes.uuid"), nullable=False, index=True),
        Column("created", Float, nullable=False),
    )
    Table("lab_devices", md, Column("name", String(200), primary_key=True), Column("positions", Integer, nullable=True))
    Table(
        "lab_positions",
        md,
        Column("device", String(200), ForeignKey("lab_devices.name"), primary_key=True),
        Column("slot", Integer, primary_key=True),
    )
    containers = Table(
        "lab_containers",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("barcode", String(200), nullable=False),
        Column("name", String(500), nullable=False),
        Column("device", String(200), nullable=False),
        Column("pos", Integer, nullable=False),
        Column("start_device", String(200), nullable=False),
        Column("start_pos", Integer, nullable=False),
        Column("lidded", Boolean, nullable=False),
        Column("filled", Boolean, nullable=False),
        Column("removed", Boolean, nullable=False),
    )
    live = containers.c.removed.is_(False)
    Index("ux_lab_containers_barcode", containers.c.barcode, unique=True, sqlite_where=live, postgresql_where=live)
    Index(
        "ux_lab_containers_position",
        containers.c.device,
        containers.c.pos,
        unique=True,
        sqlite_where=live,
        postgresql_where=live,
    )
    steps = Table(
        "lab_steps",
        md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("uuid", String(64), nullable=False, unique=True),
        Column("kind", String(8), nullable=False),
        Column("name", String(500), nullable=False),
        Column("device", String(200), nullable=False),
        Column("fct", String(200), nullable=True),
        Column("params", String(32), nullable=False),
        Column("data", Text, nullable=False),
        Column("start", Float, nullable=False),
        Column("finish", Float, nullable=True),
        Column("duration", Float, nullable=True),
        Column("status", String(100), nullable=False),
        Column("container_id", Integer, ForeignKey("lab_containers.id"), nullable=True),
        Column("experiment_uuid", String(36), ForeignKey("lab_experiments.uuid"), nullable=True),
        Column("origin_device", String(200), nullable=True),
        Column("origin_pos", Integer, nullable=True),
        Column("target_device", String(200), nullable=True),
        Column("target_pos", Integer, nullable=True),
    )
    c = steps.c
    Index("ix_lab_steps_protocol", c.kind, c.fct, c.device, c.params, c.id, c.duration)
    Index("ix_lab_steps_general", c.kind, c.fct, c.device, c.id, c.duration)
    Index("ix_lab_steps_fct", c.kind, c.fct, c.id, c.duration)
    Index("ix_lab_steps_move", c.kind, c.origin_device, c.target_device, c.id, c.duration)
    Index("ix_lab_steps_device", c.device, c.duration)
    Index("ix_lab_steps_container", c.container_id, c.start)
    Index("ix_lab_steps_experiment", c.experiment_uuid, c.start)
    Table(
        "lab_orders",
        md,
        Column("order_id", String(200), primary_key=True),
        Column("seq", Integer, nullable=False),
        Column("capabilities", Text, nullable=False),
        Column("state", String(16), nullable=False),
        Column("module", String(200), nullable=True),
        Column("seen_running", Boolean, nullable=False, default=False),
    )
    return md


def upgrade() -> None:
    """Create the lab tables and indexes, or adopt them where ``create_all`` made them (rows kept).

    Raises:
        StoreSchemaError: a ``lab_*`` table exists without these columns (not a pywats-lab table).
    """
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    for table in _metadata().sorted_tables:  # referenced tables first
        if table.name not in existing:
            table.create(bind)  # with its indexes, unique and foreign keys, as create_all wrote them
            continue
        have = {col["name"] for col in inspector.get_columns(table.name)}
        missing = [col.name for col in table.columns if col.name not in have]
        if missing:
            raise StoreSchemaError(
                f"status DB table {table.name!r} exists but lacks the pywats-lab columns {missing}: this "
                "database holds another application's table of that name; use a separate database for the lab"
            )
        present = {ix["name"] for ix in inspector.get_indexes(table.name) if ix["name"]}
        for index in table.indexes:
            if index.name not in present:
                index.create(bind)


def downgrade() -> None:
    """Drop the lab tables and everything in them."""
    bind = op.get_bind()
    for table in reversed(_metadata().sorted_tables):
        table.drop(bind, checkfirst=True)
