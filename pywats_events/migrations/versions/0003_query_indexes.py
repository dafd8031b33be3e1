"""Query indexes: the reads users run on a large store stay one short index range.

Revision ID: 0003_query_indexes
Revises: 0001

- ``ix_events_category_timestamp`` (category, timestamp, severity) replaces ``ix_events_category``
  (its prefix, so nothing that used it gets slower). ``events list --type test.* --since ... --min-severity
  warning`` and the console's newest-first page read one category's time range in timestamp order, and
  the count the CLI prints above the page is answered from the index alone (severity is in it). The store
  adds ``category = 'test'`` to a type pattern whose first segment is literal (``test.*``), so the index
  applies to patterns, not only to exact categories.
- ``ix_dead_letters_handler_first_failure`` (handler, first_failure_at, id) replaces
  ``ix_dead_letters_handler``: ``dlq list --handler wats`` pages in the listing's own order without sorting
  every entry of that handler first.

Measured with ``bench/store_query.py`` on 1M events and 50k dead letters (SQLite): see README.md.

Both are plain ``CREATE INDEX`` / ``DROP INDEX`` (transactional on SQLite and PostgreSQL); the rows are not
touched. On a large PostgreSQL store the index build holds a write lock on the table for its duration
(seconds per million rows).
"""

from __future__ import annotations

from alembic import op

revision = "0003_query_indexes"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the two composite indexes, then drop the single-column ones they make redundant."""
    op.create_index("ix_events_category_timestamp", "events", ["category", "timestamp", "severity"])
    op.drop_index("ix_events_category", table_name="events")
    op.create_index("ix_dead_letters_handler_first_failure", "dead_letters", ["handler", "first_failure_at", "id"])
    op.drop_index("ix_dead_letters_handler", table_name="dead_letters")


def downgrade() -> None:
    """Back to 0001's indexes."""
    op.create_index("ix_dead_letters_handler", "dead_letters", ["handler"])
    op.drop_index("ix_dead_letters_handler_first_failure", table_name="dead_letters")
    op.create_index("ix_events_category", "events", ["category"])
    op.drop_index("ix_events_category_timestamp", table_name="events")
