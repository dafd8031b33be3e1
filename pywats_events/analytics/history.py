"""Status history: every state change of a station or module, with its start, end and duration, and the
SEMI E10 time in each category, accumulated per time bucket as the changes arrive.

Per asset the last ``capacity`` changes (default 1,000, as the Biosero module-status document keeps) are
held in memory, sorted by time (then event id), so a late or out-of-order change lands in its place: the
interval it splits is taken out of the time buckets and its two halves put back. Durations are integers
in microseconds, so the sums equal a brute-force computation exactly.

Rules (a brute-force computation must apply the same ones to agree):

- an interval runs from one change to the asset's next change; the last change stays open until the
  report's ``now``; time before an asset's first known change is unknown and counts nowhere;
- a change whose event id and time are already held is a duplicate and changes nothing (a redelivery);
- a change older than the oldest one still held, once older ones were dropped for capacity, cannot be
  placed: it is refused (``TooLateError``) and counted, and ``pywats-events analytics rebuild`` replays
  the event store to recompute.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat

from .errors import TooLateError
from .states import CATEGORIES, CATEGORY_INDEX, StateChange, from_epoch_us

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


#: A change as the history holds it: (at_us, event_id, category index, code, name). A plain tuple of
#: atomic values, so the cyclic garbage collector stops tracking it (a ``StateChange``, a tuple subclass,
#: stays tracked and is walked by every full collection); sorted by (at_us, event_id).
_Held = tuple[int, str, int, "int | None", str]


class _Asset:
    __slots__ = ("changes", "last_bucket", "minutes", "truncated")

    def __init__(self) -> None:
        # One asset's changes never share (at_us, event_id) (duplicates are refused first), so the
        # tuples order by those two.
        self.changes: list[_Held] = []
        self.truncated = False
        # Per category (CATEGORIES order): bucket index -> µs. Dicts of ints only: untracked by the
        # garbage collector, summed in C.
        self.minutes: tuple[dict[int, int], ...] = ({}, {}, {}, {}, {}, {})
        #: The latest bucket holding time (a report whose window reaches past it sums whole dicts).
        self.last_bucket = -1


def _spread(d: dict[int, int], start: int, end: int, w: int, sign: int) -> None:
    """Add ``sign`` × the part of ``[start, end)`` in each ``w``-µs bucket to ``d`` (bucket -> µs)."""
    b = start // w
    t = start
    while t < end:
        edge = (b + 1) * w
        seg = (edge if edge < end else end) - t
        d[b] = d.get(b, 0) + sign * seg
        t += seg
        b += 1


def _spread_new(d: dict[int, int], start: int, end: int, w: int, last_bucket: int) -> int:
    """``_spread`` with sign +1 for a stay later than every stay already held (the in-order case), across
    at least one bucket edge: only its first bucket can hold time already, so the whole buckets after it
    are set in one C-level update instead of a Python loop per bucket (a stay of hours covers hundreds
    of minute buckets). Returns the new latest bucket of the asset (``last_bucket`` or later)."""
    b = start // w
    last = (end - 1) // w  # the bucket holding the stay's last microsecond
    d[b] = d.get(b, 0) + (b + 1) * w - start
    if last > b + 1:
        d.update(dict.fromkeys(range(b + 1, last), w))
    d[last] = end - last * w  # last > b: the stay crosses an edge
    return last if last > last_bucket else last_bucket


class StatusHistory:
    """State changes per asset and the time in each SEMI E10 category per bucket.

    One level of buckets only: each in-order change writes one bucket (or, for a stay across buckets,
    the whole buckets after its first in one C-level update), and a report sums a window's buckets in C
    (``sum`` over ``map(dict.get, range)``, or the whole dict when the window holds all of it).

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
        """Place one change; returns False for a duplicate (same event id and time already held).

        Raises:
            TooLateError: the change is older than the oldest one held and older ones were dropped.
        """
        return self.place(
            change.asset, change.at_us, change.event_id, CATEGORY_INDEX[change.category], change.code, change.name
        )

    def place(self, asset: str, at_us: int, event_id: str, cat: int, code: int | None, name: str) -> bool:
        """``add`` without building a ``StateChange`` (the engine's path): ``cat`` is the category's index in
        ``CATEGORIES``. Returns False for a duplicate.

        Raises:
            TooLateError: as for ``add``.
        """
        a = self.assets.get(asset)
        if a is None:
            a = self.assets[asset] = _Asset()
        keys = a.changes
        if keys:
            prev = keys[-1]
            if at_us > prev[0] or (at_us == prev[0] and event_id > prev[1]):
                # In order (the usual case), so no duplicate of a held change (all are earlier): close the
                # last stay, inline for a stay within one bucket.
                start, w, pcat = prev[0], self.bucket_us, prev[2]
                b = start // w
                if at_us <= (b + 1) * w:
                    d = a.minutes[pcat]
                    d[b] = d.get(b, 0) + at_us - start
                    if b > a.last_bucket:
                        a.last_bucket = b
                else:
                    a.last_bucket = _spread_new(a.minutes[pcat], start, at_us, w, a.last_bucket)
                keys.append((at_us, event_id, cat, code, name))
                if self.on_interval is not None:
                    self.on_interval(asset, start, at_us, CATEGORIES[pcat], 1)
            elif not self._insert(asset, a, (at_us, event_id, cat, code, name)):
                return False
        else:
            keys.append((at_us, event_id, cat, code, name))
        if len(keys) > self.capacity:
            # The dropped change's interval stays in the buckets; only its placement memory goes.
            del keys[0]
            a.truncated = True
        return True

    def _insert(self, asset: str, a: _Asset, rec: _Held) -> bool:
        # A late, out-of-order or repeated change: a duplicate (same time and event id held) is counted,
        # else it splits the stay it falls into (or opens the history). (at_us, event_id) sorts before
        # every held tuple starting with it, so bisect finds a held duplicate at i.
        keys = a.changes
        at_us, event_id = rec[0], rec[1]
        i = bisect_left(keys, (at_us, event_id))
        if i < len(keys) and keys[i][0] == at_us and keys[i][1] == event_id:
            self.duplicates += 1
            return False
        if i == 0 and a.truncated:
            self.too_late += 1
            raise TooLateError(
                f"state change {rec[1]} of {asset!r} at {from_epoch_us(at_us).isoformat()} "
                f"is older than the {len(keys)} changes kept in memory; run 'pywats-events analytics rebuild'"
            )
        notify = self.on_interval
        nxt = keys[i]  # exists: an in-order change takes the fast path
        if i > 0:
            prev = keys[i - 1]
            self._stay(a, prev[0], nxt[0], prev[2], -1)
            self._stay(a, prev[0], at_us, prev[2], 1)
            if notify is not None:
                notify(asset, prev[0], nxt[0], CATEGORIES[prev[2]], -1)
                notify(asset, prev[0], at_us, CATEGORIES[prev[2]], 1)
        self._stay(a, at_us, nxt[0], rec[2], 1)
        if notify is not None:
            notify(asset, at_us, nxt[0], CATEGORIES[rec[2]], 1)
        keys.insert(i, rec)
        return True

    def _stay(self, a: _Asset, start: int, end: int, cat: int, sign: int) -> None:
        w = self.bucket_us
        _spread(a.minutes[cat], start, end, w, sign)
        if end > start and (end - 1) // w > a.last_bucket:
            a.last_bucket = (end - 1) // w

    # -- queries --------------------------------------------------------------------------------
    def _sum(self, a: _Asset, cat: int, lo: int | None, hi: int) -> int:
        """µs of category ``cat`` in buckets ``lo..hi-1``: the whole dict when the window holds every
        bucket, else the window's buckets looked up in C (or the dict's items filtered, when it has
        fewer entries than the window has buckets)."""
        d = a.minutes[cat]
        if not d:
            return 0
        if hi > a.last_bucket and (lo is None or lo <= min(d)):
            return sum(d.values())
        lo = min(d) if lo is None else lo
        if hi - lo <= len(d):
            return sum(map(d.get, range(lo, hi), repeat(0)))
        return sum(v for b, v in d.items() if lo <= b < hi)

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
        out = [self._sum(a, c, lo, hi) for c in range(6)]
        last = a.changes[-1]
        start = last[0] if since_us is None or last[0] > since_us else since_us
        end = min(until_us, now_us)
        if end > start:
            out[last[2]] += end - start
        return out

    def current(self, asset: str) -> StateChange | None:
        """The latest change held for ``asset`` (``None`` when none)."""
        a = self.assets.get(asset)
        if a is None or not a.changes:
            return None
        at_us, event_id, cat, code, name = a.changes[-1]
        return StateChange(asset, at_us, event_id, CATEGORIES[cat], code, name)

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
            for i, (at_us, event_id, cat, code, state_name) in enumerate(ch):
                end = ch[i + 1][0] if i + 1 < len(ch) else None
                if until_us is not None and at_us >= until_us:
                    break
                if since_us is not None and end is not None and end <= since_us:
                    continue
                category = CATEGORIES[cat]
                if want and want not in (category.lower(), state_name.lower()):
                    continue
                yield Interval(name, category, code, state_name, at_us, end, event_id)
