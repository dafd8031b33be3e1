"""Rebuilding analytics from the event store: the events the ``event-store`` handler kept, replayed in
time order through a fresh ``AnalyticsEngine`` (``pywats-events analytics rebuild`` and ``report``).

Every stored event up to ``until`` is replayed, not only the window's: the state an asset is in when a
window opens comes from its last change before it. Events the engine cannot use (``AnalyticsInputError``)
are skipped and counted, with the first few messages kept for the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..store import EventQuery, Store
from .engine import HANDLED_TYPES, AnalyticsEngine
from .errors import AnalyticsError
from .states import StateChange, state_change_of

__all__ = ["ReplayResult", "replay_store"]

#: Events read per store query (count).
PAGE = 10_000


@dataclass
class ReplayResult:
    """What a replay did: the ``engine``; ``read`` events read, ``applied`` changing a figure, ``rejected``
    not usable (with up to 20 ``errors`` messages); ``changes``: the state changes, for the history table."""

    engine: AnalyticsEngine
    read: int = 0
    applied: int = 0
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)


async def replay_store(
    store: Store,
    *,
    until: datetime | None = None,
    engine_options: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    since: datetime | None = None,
    engine: AnalyticsEngine | None = None,
) -> ReplayResult:
    """Replay the stored events (oldest first, from ``since`` up to ``until``) into a new engine, or into
    ``engine`` (the handler's reload at start).

    Args:
        store: an open store.
        until: last time replayed (exclusive); ``None``: everything.
        engine_options: ``AnalyticsEngine`` keyword arguments (``bucket_s``, ``ideal_cycle_s``...), for a
            new engine.
        progress: called with the count of events read after each page.
        since: first time replayed (inclusive); ``None``: from the oldest stored event.
        engine: apply to this engine instead of a new one (``engine_options`` are then ignored).

    Raises:
        StoreError: the store query failed.
        ValueError: invalid engine options.
    """
    opts = dict(engine_options or {})
    # Events arrive in time order here, so in-memory capacity only bounds the history queries.
    engine = engine if engine is not None else AnalyticsEngine(**opts)
    result = ReplayResult(engine)
    handled = set(HANDLED_TYPES)
    offset = 0
    while True:
        page = await store.query_events(EventQuery(since=since, until=until, limit=PAGE, offset=offset))
        if not page:
            break
        offset += len(page)
        for stored in page:
            ev = stored.event
            result.read += 1
            if ev.type not in handled:
                continue
            try:
                if engine.apply(ev):
                    result.applied += 1
                    if ev.type == "asset.state_changed":
                        result.changes.append(state_change_of(ev))
            except AnalyticsError as exc:
                result.rejected += 1
                if len(result.errors) < 20:
                    result.errors.append(str(exc))
        if progress is not None:
            progress(result.read)
        if len(page) < PAGE:
            break
    return result
