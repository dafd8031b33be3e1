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
    # observe = true             # see "How events reach the engine"
    # reload_days = 1.0          # state reloaded from the event store at start
    # stop_timeout_s = 30.0      # how long stop waits for the last history write

How events reach the engine. By default (``observe = true``) the handler is a bus observer
(``EventBus.add_observer``): each accepted message's events are appended to an in-memory inbox on the
bus's hot path (no second delivery: no idempotency record, retry, breaker or settlement wait for
analytics), and a background task applies the inbox in batches about every ``apply_interval_s``; every
read of ``engine`` (report, routes, gauges, console) applies what is waiting first, so figures are never
stale. The inbox is bounded (``max_backlog`` events): above it the observer applies the inbox at once on
the hot path, so nothing is dropped and memory stays bounded. Analytics never delays an acknowledgement
in this mode; what a crash takes from memory comes back from the event store at the next start
(``reload_days``) or with ``pywats-events analytics rebuild``. With ``observe = false`` the handler is
an ordinary subscriber of the analytics event types (one delivery per event, the message settles only
after analytics has applied it).

An event whose payload lacks what a figure needs (``AnalyticsInputError``) or a state change too old to
place (``TooLateError``) is dead-lettered for this handler with the reason, in both modes: as an
unrecoverable delivery failure when subscribed, and written by the handler itself (reason ``failed``,
one attempt, counted in ``pywats_dead_letters_total``) when observing. Replaying such an entry delivers
it to this handler by name (its subscription to ``REPLAY_TYPE`` exists for that). Nothing is silently
dropped, and a failing engine never stops the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from ..dead_letter import entry_for_failure
from ..event import Event
from ..handlers import BaseHandler
from ..store import DeadLetterEntry, DeadLetterReason, Store
from .engine import HANDLED_TYPES, AnalyticsEngine
from .errors import AnalyticsError
from .states import StateChange
from .store import HistoryStore
from .window import DEFAULT_SHIFT_STARTS

if TYPE_CHECKING:
    from ..bus import EventBus

__all__ = ["REPLAY_TYPE", "AnalyticsHandler"]

#: The one event type an observing handler subscribes to: no source emits it, the subscription exists
#: so that dead-letter replay (which goes to a handler by name) reaches the handler.
REPLAY_TYPE = "analytics.replay"

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
        observe: take events as a bus observer (default) instead of one delivery per event (see the
            module docstring).
        apply_interval_s: seconds between background applications of the observed inbox (> 0).
        max_backlog: observed events waiting before the observer applies them at once (count, >= 1).
        reload_days: at start, stored events of this many days before the newest stored analytics event
            are read from the event store into the engine, and each asset's state at that time from the
            history table, so a restart does not start from empty (days, >= 0; 0: off).
        stop_timeout_s: seconds the bus's stop waits for ``on_stop`` (apply the inbox, write dead letters
            and every pending history row) before abandoning it (> 0; the bus's default, 2 s, can cut a
            large write-behind backlog short: a database that was down leaves up to 100,000 rows).

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
        observe: bool = True,
        apply_interval_s: float = 0.1,
        max_backlog: int = 100_000,
        reload_days: float = 1.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        super().__init__()
        if stop_timeout_s <= 0:
            raise ValueError(f"stop_timeout_s must be positive seconds, got {stop_timeout_s}")
        self.stop_timeout_s = stop_timeout_s
        self.stop_timeout = stop_timeout_s
        if apply_interval_s <= 0:
            raise ValueError(f"apply_interval_s must be positive seconds, got {apply_interval_s}")
        if max_backlog < 1:
            raise ValueError(f"max_backlog must be at least 1 event, got {max_backlog}")
        if reload_days < 0:
            raise ValueError(f"reload_days must be >= 0, got {reload_days}")
        if retention_days <= 0:
            raise ValueError(f"retention_days must be positive, got {retention_days}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive seconds, got {flush_interval_s}")
        self._engine = AnalyticsEngine(
            history_size=history_size, bucket_s=bucket_s, ideal_cycle_s=ideal_cycle_s, cycle_history=cycle_history
        )
        self.observe = observe
        if observe:
            self.event_types = (REPLAY_TYPE,)  # type: ignore[misc]
        self.apply_interval_s = apply_interval_s
        self.max_backlog = max_backlog
        self.reload = timedelta(days=reload_days)
        self.reloaded = 0
        #: Observed events not applied yet (swapped for a new list when applied).
        self._inbox: list[Event] = []
        self._loop_thread: int | None = None  # the bus loop's thread, set at start
        #: Dead letters of observed events the engine refused, waiting to be written to the store.
        self._dead: list[DeadLetterEntry] = []
        self.dead_lettered = 0
        #: Events the engine refused, in both modes (late changes included; see the gauges).
        self.refused = 0
        self._store: Store | None = None
        self._bus: EventBus | None = None
        self._applier: asyncio.Task[None] | None = None
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
        #: Set when ``on_stop`` begins: the background tasks finish their step and end.
        self._closing = asyncio.Event()
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

    @property
    def engine(self) -> AnalyticsEngine:
        """The engine, with every observed event applied first (so a report is never behind the bus)."""
        if self._inbox:
            self.catch_up()
        return self._engine

    def attach(self, store: Store) -> None:
        """Keep the bus's store (dead letters, reload) and use its database for the history table unless
        ``db`` was given."""
        self._store = store
        if self.history_store is None and self.persist:
            driver_url = getattr(store, "driver_url", None)  # SQLStore's resolved URL; None for memory
            if driver_url is not None:
                self.history_store = HistoryStore(driver_url=driver_url)

    def attach_bus(self, bus: EventBus) -> None:
        """Observe ``bus`` (``EventBus.add_observer``) when ``observe`` is on."""
        self._bus = bus
        if self.observe:
            bus.add_observer(self._observed)

    def _observed(self, events: Sequence[Event]) -> None:
        # The hot path: one list extend per message; the work happens in catch_up.
        inbox = self._inbox
        inbox.extend(events)
        if len(inbox) > self.max_backlog:
            self.catch_up()

    def catch_up(self) -> int:
        """Apply every observed event waiting in the inbox now; returns how many were applied (0 when
        called from a thread other than the bus loop's, which leaves the inbox to the loop).

        An event the engine refuses (``AnalyticsInputError``, ``TooLateError``, or any error from a bug)
        becomes a dead letter of this handler, written to the store by the background task (or at stop);
        nothing raised here reaches the bus.
        """
        if not self._inbox:
            return 0
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            # Another thread (a registry scraped by prometheus-client's own server): the inbox belongs
            # to the bus's loop, so figures are as of its last application (at most apply_interval_s).
            return 0
        batch = self._inbox
        self._inbox = []
        self._engine.apply_batch(batch, self._refused)
        return len(batch)

    def _refused(self, event: Event, exc: Exception) -> None:
        entry = entry_for_failure(event, self.name, DeadLetterReason.FAILED, exc, 1)
        self._dead.append(entry)
        self.dead_lettered += 1
        self.refused += 1
        if self._bus is not None:
            self._bus.metrics.count_dead_letter(self.name, entry.reason)
        log.warning(
            "dead-lettered event %s for handler %s: %s: %s", event.id, self.name, entry.error_type, entry.error_message
        )

    async def write_dead_letters(self) -> int:
        """Write the dead letters of refused observed events to the store; returns how many. A failed
        write is logged and kept for the next try (the background task retries it)."""
        if not self._dead or self._store is None:
            return 0
        batch, self._dead = self._dead, []
        try:
            await self._store.add_dead_letters(batch)
        except asyncio.CancelledError:
            self._dead[:0] = batch  # kept for the write at stop (repeating a committed write is harmless)
            raise
        except Exception as exc:
            log.error("analytics: writing %d dead letters failed, will retry: %s", len(batch), exc)
            self._dead[:0] = batch
            return 0
        return len(batch)

    async def handle(self, event: Event) -> None:
        """Apply one event to the engine (subscribed mode, and dead-letter replay in both modes).

        Raises:
            AnalyticsInputError: the payload lacks what the figure needs.
            TooLateError: a state change older than the in-memory history can place.
        """
        if self._inbox:
            self.catch_up()
        try:
            self._engine.apply(event)
        except AnalyticsError:
            self.refused += 1  # unrecoverable: one attempt, then the bus dead-letters it
            raise

    async def on_start(self) -> None:
        """Reload recent state from the event store, open the history table and start the background
        tasks (applying observed events, writing the history behind).

        Raises:
            StoreError: the history table cannot be opened or the event store read.
        """
        self._loop_thread = threading.get_ident()
        self._closing.clear()  # a handler stopped and started again
        if self.history_store is not None:
            await self.history_store.open()
            # Reloaded changes are queued for the table too: the last second before a crash may not have
            # been written (rows already there are kept as they are).
            self._engine.on_change = self._pending.append
        await self._reload()
        if self.history_store is not None:
            self._flusher = asyncio.create_task(self._flush_loop(), name="pywats-analytics-history")
        if self.observe:
            self._applier = asyncio.create_task(self._apply_loop(), name="pywats-analytics-apply")

    async def _reload(self) -> None:
        store = self._store
        if store is None or not self.reload:
            return
        from ..store import EventQuery
        from .replay import replay_store

        # The newest event the engine reads (system events stored beside them carry the wall clock).
        newest = [
            page[0].event.timestamp
            for t in HANDLED_TYPES
            if (page := await store.query_events(EventQuery(type_pattern=str(t), limit=1, newest_first=True)))
        ]
        if not newest:
            return
        since = max(newest) - self.reload
        seeded = await self._seed_states(since)
        result = await replay_store(store, since=since, engine=self._engine)
        self.reloaded = result.applied
        log.info(
            "analytics: reloaded %d events since %s from the event store (%d asset states from the history "
            "table, %d events refused)",
            result.applied,
            since.isoformat(),
            seeded,
            result.rejected,
        )

    async def _seed_states(self, since: datetime) -> int:
        # The state each asset was in when the reload window opens is its last stored change before it
        # (from the history table); without it the first stay of each asset would count nowhere.
        if self.history_store is None:
            return 0
        last = await self.history_store.last_before(since)
        for change in last:
            self._engine.history.add(change)
        return len(last)

    async def on_stop(self) -> None:
        """Apply what was observed, write dead letters and pending history, close the history table."""
        if self._bus is not None and self.observe:
            with contextlib.suppress(ValueError):
                self._bus.remove_observer(self._observed)
            self._bus = None
        # The background tasks end after the step they are in: cancelling one inside a database write
        # would leave that transaction open, holding SQLite's write lock, so the final flush below (and
        # the bus store's own writer) would wait on it for the whole busy timeout. Only a task still
        # running after half the stop timeout (a database that does not answer) is cancelled.
        self._closing.set()
        tasks = [t for t in (self._applier, self._flusher) if t is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.stop_timeout_s / 2)
            for task in late:
                log.warning("analytics: background task %s did not end at stop; cancelled", task.get_name())
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._applier = self._flusher = None
        self.catch_up()
        await self.write_dead_letters()
        if self.history_store is not None:
            await self.flush()
            await self.history_store.close()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` or until ``on_stop`` begins; True when stopping."""
        if not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)
        return self._closing.is_set()

    async def _apply_loop(self) -> None:
        while not await self._pause(self.apply_interval_s):
            self.catch_up()
            if self._dead:
                await self.write_dead_letters()

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
        while not await self._pause(self.flush_interval_s):
            await self.flush()
            now = datetime.now(UTC)
            if self._last_purge is None or now - self._last_purge > timedelta(hours=1):
                self._last_purge = now
                try:
                    await self.purge_history(now)
                except Exception as exc:
                    log.error("analytics: history retention purge failed: %s", exc)
