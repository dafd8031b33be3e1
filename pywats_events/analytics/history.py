"""Status history: every state change of a station or module, with its start, end and duration, and the
SEMI E10 time in each category, accumulated per time bucket as the changes arrive.

Per asset the last ``capacity`` changes (default 1,000, as the Biosero module-status document keeps) are
held in memory, sorted by time (then event id), so a late or out-of-order change lands in its place: the
interval it splits is taken out of the time buckets and its two halves put back. Durations are integers
in microseconds, so the sums equal a brute-force computation exactly.

Rules (a brute-force computation must apply the same ones to agree):

- an interval runs from one change to the asset's next change; the last change stays open until the
  report's ``now``; time before an asset's first known change is unknown and counts nowhere;
- a change whose event id is already held is a duplicate and changes nothing;
- a change older than the oldest one still held, once older ones were dropped for capacity, cannot be
  placed: it is refused (``TooLateError``) and counted, and ``pywats-events analytics rebuild`` replays
  the event store to recompute.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .errors import TooLateError
from .states import CATEGORY_INDEX, StateChange, from_epoch_us

__all__ = ["Interval", "StatusHistory", "TooLateError"]


@dataclass(frozen=True, slots=True)
class Interval:
    """One stay in a state.

    Attributes:
        asset: asset id.
        category: SEMI E10 category.
        code: state code (``None`` when absent); name: state name.
        start_us / end_us: microseconds since the epoch; ``end_us`` is ``None`` while the state lasts.
        event_id: id of the event that started it.
    """

    asset: str
    category: str
    code: int | None
    name: str
    start_us: int
    end_us: int | None
    event_id: str

    def duration_s(self, now_us: int | None = None) -> float | None:
        """Seconds in the state; an open interval counts up to ``now_us`` (``None``: unknown)."""
        end = self.end_us if self.end_us is not None else now_us
        return None if end is None else max(0, end - self.start_us) / 1e6

    def to_json_dict(self, now_us: int | None = None) -> dict[str, object]:
        """JSON form: ``asset``, ``state``, ``state_code``, ``category``, ``start``, ``end`` (ISO 8601, ``null``
        while open), ``duration_s``, ``event_id``."""
        return {
            "asset": self.asset,
            "state": self.name,
            "state_code": self.code,
            "category": self.category,
            "start": from_epoch_us(self.start_us).isoformat(),
            "end": from_epoch_us(self.end_us).isoformat() if self.end_us is not None else None,
            "duration_s": self.duration_s(now_us),
            "event_id": self.event_id,
        }


class _Asset:
    __slots__ = ("buckets", "changes", "ids", "truncated")

    def __init__(self) -> None:
        # Sorted by (at_us, event_id): the tuples compare so, as one asset's changes share the asset
        # and never an event id (duplicates are refused first).
        self.changes: list[StateChange] = []
        self.ids: set[str] = set()
        self.truncated = False
        self.buckets: dict[int, list[int]] = {}  # bucket index -> µs per category (CATEGORIES order)


class StatusHistory:
    """State changes per asset and the time in each SEMI E10 category per bucket.

    Args:
        capacity: changes kept in memory per asset (count, >= 2).
        bucket_s: width of a time bucket in whole seconds (>= 1); windows are resolved to it.

    Raises:
        ValueError: ``capacity`` < 2 or ``bucket_s`` < 1.
    """

    def __init__(self, capacity: int = 1000, bucket_s: int = 60) -> None:
        if capacity < 2:
            raise ValueError(f"history capacity must be at least 2 changes, got {capacity}")
        if bucket_s < 1:
            raise ValueError(f"bucket_s must be at least 1 second, got {bucket_s}")
        self.capacity = capacity
        self.bucket_us = bucket_s * 1_000_000
        self.assets: dict[str, _Asset] = {}
        self.too_late = 0
        self.duplicates = 0
        #: Called ``(asset, start_us, end_us, category, +1 | -1)`` for each closed stay added or taken back
        #: (a late change splits one); the engine derives lab step durations from it.
        self.on_interval: Callable[[str, int, int, str, int], None] | None = None

    def add(self, change: StateChange) -> bool:
        """Place one change; returns False for a duplicate (same event id already held).

        Raises:
            TooLateError: the change is older than the oldest one held and older ones were dropped.
        """
        a = self.assets.get(change.asset)
        if a is None:
            a = self.assets[change.asset] = _Asset()
        if change.event_id in a.ids:
            self.duplicates += 1
            return False
        keys = a.changes
        i = len(keys) if not keys or change > keys[-1] else bisect_left(keys, change)
        if i == 0 and a.truncated:
            self.too_late += 1
            raise TooLateError(
                f"state change {change.event_id} of {change.asset!r} at {from_epoch_us(change.at_us).isoformat()} "
                f"is older than the {len(keys)} changes kept in memory; run 'pywats-events analytics rebuild'"
            )
        prev = a.changes[i - 1] if i > 0 else None
        nxt = a.changes[i] if i < len(keys) else None
        cat = CATEGORY_INDEX[change.category]
        notify = self.on_interval
        if prev is not None:
            pcat = CATEGORY_INDEX[prev.category]
            if nxt is not None:
                self._spread(a.buckets, prev.at_us, nxt.at_us, pcat, -1)
                if notify is not None:
                    notify(change.asset, prev.at_us, nxt.at_us, prev.category, -1)
            start, end, w = prev.at_us, change.at_us, self.bucket_us
            b = start // w
            if end <= (b + 1) * w:  # the usual case, inline: a stay within one bucket
                row = a.buckets.get(b)
                if row is None:
                    row = a.buckets[b] = [0, 0, 0, 0, 0, 0]
                row[pcat] += end - start
            else:
                self._spread(a.buckets, start, end, pcat, 1)
            if notify is not None:
                notify(change.asset, prev.at_us, change.at_us, prev.category, 1)
        if nxt is not None:
            self._spread(a.buckets, change.at_us, nxt.at_us, cat, 1)
            if notify is not None:
                notify(change.asset, change.at_us, nxt.at_us, change.category, 1)
        keys.insert(i, change)
        a.ids.add(change.event_id)
        if len(keys) > self.capacity:
            # The dropped change's interval stays in the buckets; only its placement memory goes.
            old = keys.pop(0)
            a.ids.discard(old.event_id)
            a.truncated = True
        return True

    def _spread(self, buckets: dict[int, list[int]], start: int, end: int, cat: int, sign: int) -> None:
        w = self.bucket_us
        b = start // w
        if end <= (b + 1) * w:  # most stays fit one bucket
            row = buckets.get(b)
            if row is None:
                row = buckets[b] = [0, 0, 0, 0, 0, 0]
            row[cat] += sign * (end - start)
            return
        t = start
        while t < end:
            edge = (b + 1) * w
            seg = (edge if edge < end else end) - t
            row = buckets.get(b)
            if row is None:
                row = buckets[b] = [0, 0, 0, 0, 0, 0]
            row[cat] += sign * seg
            t += seg
            b += 1

    # -- queries --------------------------------------------------------------------------------
    def time_in_state_us(self, asset: str, since_us: int | None, until_us: int, now_us: int) -> list[int] | None:
        """Microseconds per category (``CATEGORIES`` order) of ``asset`` in ``[since_us, until_us)``, the
        open last interval counted up to ``min(until_us, now_us)``. Bounds are taken at bucket resolution
        (the caller aligns them). ``None`` when the asset has no state history."""
        a = self.assets.get(asset)
        if a is None or not a.changes:
            return None
        w = self.bucket_us
        lo = None if since_us is None else since_us // w
        hi = until_us // w
        p0 = p1 = p2 = p3 = p4 = p5 = 0
        for b, row in a.buckets.items():
            if (lo is None or b >= lo) and b < hi:
                r0, r1, r2, r3, r4, r5 = row
                p0 += r0
                p1 += r1
                p2 += r2
                p3 += r3
                p4 += r4
                p5 += r5
        out = [p0, p1, p2, p3, p4, p5]
        last = a.changes[-1]
        start = last.at_us if since_us is None or last.at_us > since_us else since_us
        end = min(until_us, now_us)
        if end > start:
            out[CATEGORY_INDEX[last.category]] += end - start
        return out

    def current(self, asset: str) -> StateChange | None:
        """The latest change held for ``asset`` (``None`` when none)."""
        a = self.assets.get(asset)
        return a.changes[-1] if a is not None and a.changes else None

    def intervals(
        self,
        asset: str | None = None,
        *,
        state: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
    ) -> Iterator[Interval]:
        """Intervals held in memory, oldest first per asset, overlapping ``[since_us, until_us)``.

        Args:
            asset: one asset id (``None``: every asset, sorted by id).
            state: a state name or a SEMI E10 category (case-insensitive); ``None``: all.
        """
        want = state.lower() if state else None
        names = [asset] if asset is not None else sorted(self.assets)
        for name in names:
            a = self.assets.get(name)
            if a is None:
                continue
            ch = a.changes
            for i, c in enumerate(ch):
                end = ch[i + 1].at_us if i + 1 < len(ch) else None
                if until_us is not None and c.at_us >= until_us:
                    break
                if since_us is not None and end is not None and end <= since_us:
                    continue
                if want and want not in (c.category.lower(), c.name.lower()):
                    continue
                yield Interval(name, c.category, c.code, c.name, c.at_us, end, c.event_id)
