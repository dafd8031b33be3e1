"""``AnalyticsHandler``: the bus handler (kind ``analytics``) that feeds an ``AnalyticsEngine`` and writes
the status history behind to its table.

Configuration::

    [[handlers]]
    kind = "analytics"
    history_size = 1000          # state changes kept in memory per asset
    bucket_s = 60                # window resolution, seconds
    retention_days = 90          # stored status history kept this long
    ideal_cycle_s = { "SMT.Oven.SN1" = 42.0 }   # OEE for these stations
    # db = "postgresql://..."    # history table location; default the bus's store (none for memory://)

An event whose payload lacks what a figure needs (``AnalyticsInputError``) or a state change too old to
place (``TooLateError``) fails its delivery as unrecoverable: the bus dead-letters it with the reason, so
nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from ..event import Event
from ..handlers import BaseHandler
from ..store import Store
from .engine import HANDLED_TYPES, AnalyticsEngine
from .states import StateChange
from .store import HistoryStore
from .window import DEFAULT_SHIFT_STARTS

__all__ = ["AnalyticsHandler"]

log = logging.getLogger(__name__)

#: State changes waiting for the history table before the oldest are given up (count); the event store
#: still has them for a rebuild.
_PENDING_MAX = 100_000


class AnalyticsHandler(BaseHandler):
    """Handler keeping line and lab analytics (see the module docstring).

    Args:
        history_size: state changes kept in memory per asset (count, >= 2; default 1,000).
        bucket_s: window resolution in whole seconds (>= 1).
        ideal_cycle_s: ideal cycle time per station in seconds, for OEE.
        cycle_history: cycle times kept per (station, recipe) for the duration estimator (count).
        db: store URL of the history table (default: the bus's store when it is SQL; none otherwise).
        persist: False keeps the history in memory only.
        retention_days: stored history this much older than the newest stored change (or than now, if
            earlier) is purged, hourly (days, > 0; see ``purge_history``).
        flush_interval_s: seconds between history writes.
        shift_starts: shift start hours (UTC) for ``window=shift``.
        max_gauge_assets: Prometheus gauges are exported for at most this many assets (count).

    Raises:
        ValueError: an invalid option (the message names it).
    """

    name = "analytics"
    event_types: ClassVar[Sequence[str]] = HANDLED_TYPES

    def __init__(
        self,
        *,
        history_size: int = 1000,
        bucket_s: int = 60,
        ideal_cycle_s: Mapping[str, float] | None = None,
        cycle_history: int = 1000,
        db: str | None = None,
        persist: bool = True,
        retention_days: float = 90.0,
        flush_interval_s: float = 1.0,
        shift_starts: Sequence[int] = DEFAULT_SHIFT_STARTS,
        max_gauge_assets: int = 200,
    ) -> None:
        super().__init__()
        if retention_days <= 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive seconds, got {flush_interval_s}")
        self.engine = AnalyticsEngine(
            history_size=history_size, bucket_s=bucket_s, ideal_cycle_s=ideal_cycle_s, cycle_history=cycle_history
        )
        self.shift_starts = tuple(shift_starts)
        self.max_gauge_assets = max_gauge_assets
        self.retention = timedelta(days=retention_days)
        self.flush_interval_s = flush_interval_s
        self.persist = persist
        self.history_store: HistoryStore | None = HistoryStore(db) if persist and db else None
        self._pending: list[StateChange] = []
        self.history_dropped = 0
        self._flusher: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._last_purge: datetime | None = None

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> AnalyticsHandler:
        """Build from a ``[[handlers]]`` table's options (the keyword arguments above).

        Raises:
            TypeError: an unknown option.
            ValueError: an invalid value.
        """
        handler = cls(**options)
        handler.name = name
        return handler

    def attach(self, store: Store) -> None:
        """Use the bus's store database for the history table unless ``db`` was given."""
        if self.history_store is None and self.persist:
            driver_url = getattr(store, "_driver_url", None)  # SQLStore's resolved URL, password included
            if driver_url is not None:
                self.history_store = HistoryStore(driver_url=driver_url)

    async def handle(self, event: Event) -> None:
        """Apply one event to the engine.

        Raises:
            AnalyticsInputError: the payload lacks what the figure needs.
            TooLateError: a state change older than the in-memory history can place.
        """
        self.engine.apply(event)

    async def on_start(self) -> None:
        """Open the history table and start writing behind."""
        if self.history_store is not None:
            await self.history_store.open()
            self.engine.on_change = self._pending.append
            self._flusher = asyncio.create_task(self._flush_loop(), name="pywats-analytics-history")

    async def on_stop(self) -> None:
        """Write what is pending and close the history table."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self.history_store is not None:
            await self.flush()
            await self.history_store.close()

    async def flush(self) -> int:
        """Write pending state changes to the history table now; returns rows written by this call.

        When it returns, every change applied before the call is in the table (or kept pending after a
        failed write): flushes are serialized, so a flush that finds the pending list already taken by
        the write-behind loop waits for that write to commit instead of returning at once. A failed
        write is logged and kept for the next try (up to ``_PENDING_MAX`` changes, then the oldest are
        dropped and counted in ``history_dropped``; a rebuild restores them).
        """
        if self.history_store is None:
            return 0
        async with self._flush_lock:
            if not self._pending:
                return 0
            # In place: the engine's on_change holds this list's append.
            batch = self._pending[:]
            self._pending.clear()
            try:
                return await self.history_store.write(batch)
            except asyncio.CancelledError:
                # Stopping mid-write (on_stop cancels the loop): keep the batch for the final flush; a
                # write that did commit is harmless to repeat (rows already present are kept as they are).
                self._pending[:0] = batch
                raise
            except Exception as exc:
                log.error("analytics: writing %d state changes failed, will retry: %s", len(batch), exc)
                self._pending[:0] = batch
                excess = len(self._pending) - _PENDING_MAX
                if excess > 0:
                    del self._pending[:excess]
                    self.history_dropped += excess
                    log.error("analytics: dropped %d history rows; run 'pywats-events analytics rebuild'", excess)
                return 0

    async def purge_history(self, now: datetime | None = None) -> int:
        """Retention: delete stored history older than ``retention_days`` before the newest stored state
        change, or before ``now`` (default the wall clock) if that is earlier; returns rows deleted.

        Counting back from the data's own clock, not only the wall clock, keeps a history that is itself
        old (a rebuild or replay of last year's events, a line stopped for months, a simulation) from
        being deleted as soon as it is written; a future-dated event cannot purge more than the wall
        clock allows.

        Raises:
            StoreError: the query or delete failed.
        """
        if self.history_store is None:
            return 0
        now = now or datetime.now(UTC)
        newest = await self.history_store.newest()
        if newest is None:
            return 0
        cutoff = min(now, newest) - self.retention
        n = await self.history_store.purge(cutoff)
        if n:
            log.info("analytics: purged %d history rows that started before %s", n, cutoff.isoformat())
        return n

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()
            now = datetime.now(UTC)
            if self._last_purge is None or now - self._last_purge > timedelta(hours=1):
                self._last_purge = now
                try:
                    await self.purge_history(now)
                except Exception as exc:
                    log.error("analytics: history retention purge failed: %s", exc)
