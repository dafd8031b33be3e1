"""Alembic revisions of the analytics tables: branch ``analytics`` (entry point ``analytics`` in the group
``pywats_events.migrations``), upgraded with the core's at every store open and by
``HistoryStore.open`` (target ``analytics@head``) when the history lives in a database of its own.

- ``analytics_0001``: baseline, the ``analytics_state_history`` table and its indexes as the analytics
  made them with ``create_all`` before they had a revision; a table already there is adopted with its rows.
"""

#: The branch label of these revisions (``pywats-events db downgrade analytics@base`` removes the tables).
BRANCH = "analytics"
