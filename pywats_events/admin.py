"""Operator actions on a bus: dead letters, stored events, circuit breakers.

One implementation underneath the command line (``pywats-events dlq ...``, ``events ...``) and the HTTP
admin API, so both behave the same. Every method returns plain JSON-ready data.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .bus import EventBus
from .event import severity_rank
from .pattern import validate_type_pattern
from .store import EventQuery

__all__ = ["Admin"]

#: Largest age accepted by ``purge_events``, in days (100 years; larger values overflow date arithmetic).
MAX_AGE_DAYS = 36_500


class Admin:
    """Operator actions on ``bus`` (and its store).

    Args:
        bus: the bus; it need not be running for store-only actions (listing, purging, acknowledging);
            replay calls the handlers registered on it.
    """

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    # -- dead letters ------------------------------------------------------------------------
    async def list_dead_letters(
        self, handler: str | None = None, reason: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Dead-letter entries oldest first (without bodies and tracebacks)."""
        entries = await self.bus.dead_letters.list(handler=handler, reason=reason, limit=limit, offset=offset)
        return [e.to_json_dict() for e in entries]

    async def count_dead_letters(self, handler: str | None = None, reason: str | None = None) -> int:
        """How many entries match."""
        return await self.bus.dead_letters.count(handler=handler, reason=reason)

    async def show_dead_letter(self, entry_id: str) -> dict[str, Any]:
        """One entry with traceback, headers and raw body. Raises ``DeadLetterNotFoundError``."""
        entry = await self.bus.dead_letters.get(entry_id)
        return entry.to_json_dict(include_body=True)

    async def replay_dead_letters(
        self, ids: Sequence[str] | None = None, handler: str | None = None, reason: str | None = None
    ) -> dict[str, Any]:
        """Replay entries by id, or all matching the filters. Returns ``replayed``, ``succeeded``,
        ``failed`` counts and ``failed_ids``.

        Raises:
            DeadLetterNotFoundError: an id does not exist. BusError: an entry's handler is not registered.
        """
        if ids:
            ok = [await self.bus.dead_letters.replay(i) for i in ids]
            failed = [i for i, good in zip(ids, ok, strict=True) if not good]
            return {"replayed": len(ok), "succeeded": sum(ok), "failed": len(failed), "failed_ids": failed}
        report = await self.bus.dead_letters.replay_all(handler=handler, reason=reason)
        return {
            "replayed": report.replayed,
            "succeeded": report.succeeded,
            "failed": report.failed,
            "failed_ids": report.failed_ids,
        }

    async def purge_dead_letters(
        self,
        ids: Sequence[str] | None = None,
        handler: str | None = None,
        reason: str | None = None,
        everything: bool = False,
    ) -> int:
        """Delete entries by id, by filter, or all (``everything=True``); returns how many.

        Raises:
            ValueError: nothing selected and ``everything`` is False.
        """
        return await self.bus.dead_letters.purge(ids, handler=handler, reason=reason, everything=everything)

    # -- stored events -----------------------------------------------------------------------
    async def query_events(
        self,
        type_pattern: str | None = None,
        category: str | None = None,
        min_severity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        source: str | None = None,
        acknowledged: bool | None = None,
        limit: int = 100,
        offset: int = 0,
        correlation_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored events matching the filters (``correlation_id``: exact, indexed), oldest first, in JSON
        form plus acknowledgement fields.

        Raises:
            ValueError: an invalid pattern or severity, a limit outside 1..100000, a negative offset.
        """
        if type_pattern is not None:
            validate_type_pattern(type_pattern)
        if min_severity is not None:
            severity_rank(min_severity)
        if not 1 <= limit <= 100_000 or offset < 0:
            raise ValueError("limit must be 1..100000 and offset >= 0")
        q = EventQuery(
            type_pattern=type_pattern,
            category=category,
            min_severity=min_severity,
            since=since,
            until=until,
            source=source,
            acknowledged=acknowledged,
            limit=limit,
            offset=offset,
            correlation_id=correlation_id,
        )
        return [s.to_json_dict() for s in await self.bus.store.query_events(q)]

    async def acknowledge_events(self, ids: Sequence[str], by: str | None = None) -> int:
        """Acknowledge stored events; returns how many changed (already acknowledged ones do not)."""
        return await self.bus.store.acknowledge_events(list(ids), by=by)

    async def purge_events(self, older_than_days: float | None = None, keep_at_most: int | None = None) -> int:
        """Delete stored events older than N days and/or beyond the newest N; returns how many.

        Raises:
            ValueError: neither limit given, or a negative one.
        """
        if older_than_days is None and keep_at_most is None:
            raise ValueError("give older_than_days and/or keep_at_most")
        if older_than_days is not None and not 0 <= older_than_days <= MAX_AGE_DAYS:
            raise ValueError(f"older_than_days must be between 0 and {MAX_AGE_DAYS}")
        if keep_at_most is not None and keep_at_most < 0:
            raise ValueError("keep_at_most must be >= 0")
        return await self.bus.store.purge_events(older_than_days=older_than_days, keep_at_most=keep_at_most)

    # -- breakers ----------------------------------------------------------------------------
    async def breakers(self) -> list[dict[str, Any]]:
        """State of every handler's circuit breaker."""
        return [b.describe() for b in self.bus.breakers.values()]

    async def force_breaker(self, handler: str, state: str) -> dict[str, Any]:
        """Force a breaker ``open`` (until closed again) or ``closed`` (replays parked deliveries).

        Raises:
            KeyError: unknown handler. ValueError: another state.
        """
        return dict(self.bus.force_breaker(handler, state))
