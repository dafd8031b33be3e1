"""Cycle times from ``production.work_started`` / ``production.work_completed`` pairs (IPC-CFX
``WorkStarted`` / ``WorkCompleted``, paired per station by ``TransactionID``), and the duration estimator.

A cycle is counted in the window holding its completion. Lab modules report no work messages: each of
their Busy stays is a step, counted like a cycle (``step``; recipe ``None``), so the estimator answers for
lab steps too. A completion arriving before its start waits
for it; a second start or completion of the same transaction is a duplicate. The recipe is the start's
``payload.recipe`` (else the completion's).

Estimator (the rule the LARA-style status DB uses for step durations: from history, or nothing):
``estimate(station, recipe, confidence)`` is the empirical quantile at ``confidence`` of the last
``history`` cycle times of that station and recipe (any recipe when ``recipe`` is ``None``), nearest
rank: sort the n samples ascending and take the ``ceil(confidence × n)``-th (1-based; ``confidence`` 1.0
gives the longest seen, as the LARA movement historian does). With no sample it returns ``None``, never a
guess. ``p50`` / ``p95`` in reports use the same rule over the window's samples.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Sequence

from ..event import Event
from .errors import AnalyticsInputError
from .states import EPOCH

__all__ = ["CycleTimes", "quantile"]

_OPEN_KEPT = 100_000
#: IPC-CFX ``WorkResult`` values of a good completion (lower-cased by the adapter); Failed / Aborted are not.
_GOOD = frozenset({"completed", "pass", "passed"})


def quantile(samples: Sequence[float], confidence: float) -> float | None:
    """Nearest-rank empirical quantile (see the module docstring); ``None`` for no samples.

    Args:
        samples: durations (any unit; the result has the same).
        confidence: 0 < confidence <= 1.

    Raises:
        ValueError: ``confidence`` outside (0, 1].
    """
    if not 0 < confidence <= 1:
        raise ValueError(f"confidence must be in (0, 1], got {confidence}")
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(confidence * len(ordered))) - 1]


#: One transaction: (start µs, end µs, recipe), ``None`` until seen; a tuple of atomic values, replaced
#: on update, so the garbage collector stops tracking it.
_Work = tuple["int | None", "int | None", "str | None"]


class CycleTimes:
    """Work pairs per station, cycle-time samples per time bucket, and recent samples for estimates.

    Args:
        bucket_s: bucket width in whole seconds.
        history: samples kept per (station, recipe) for ``estimate`` (count).
    """

    def __init__(self, bucket_s: int = 60, history: int = 1000) -> None:
        self.bucket_us = bucket_s * 1_000_000
        self.history = history
        self.work: OrderedDict[tuple[str, str], _Work] = OrderedDict()
        self.samples: dict[str, dict[int, list[tuple[int, str | None]]]] = {}  # station -> b -> [(µs, recipe)]
        self.recent: dict[tuple[str, str | None], deque[int]] = {}
        self.completions: dict[str, dict[int, tuple[int, int]]] = {}  # station -> b -> (completions, good)
        self.duplicates = 0

    @staticmethod
    def _transaction(event: Event) -> str:
        tid = event.payload.get("transaction_id") or event.correlation_id
        if not tid:
            raise AnalyticsInputError(
                event.id, event.type, "transaction_id", "missing; work start and end are paired by it"
            )
        return str(tid)

    def started(self, event: Event) -> bool:
        """Apply a ``production.work_started``; False for a duplicate.

        Raises:
            AnalyticsInputError: no transaction id, or a start later than the completion already seen.
        """
        f = event.__dict__  # the field values: one hooked attribute lookup (see states.state_parts)
        p = f["payload"]
        tid = p.get("transaction_id") or f["correlation_id"]
        if not tid:
            self._transaction(event)  # raises, naming the field
        key = (f["source"], tid if type(tid) is str else str(tid))
        work = self.work
        w = work.get(key)
        d = f["timestamp"] - EPOCH  # epoch_us, inline on this per-event path
        at = d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds
        recipe = p.get("recipe")
        recipe = (recipe if type(recipe) is str else str(recipe)) if recipe else None
        if w is None:
            work[key] = (at, None, recipe)
            if len(work) > _OPEN_KEPT:
                self._trim()
            return True
        start_us, end_us, old = w
        if start_us is not None:
            self.duplicates += 1
            return False
        assert end_us is not None  # a record holds a start, an end or both
        if end_us < at:
            raise AnalyticsInputError(
                event.id, event.type, "transaction_id", f"work {key[1]!r} at {key[0]!r} started after it completed"
            )
        recipe = recipe or old
        work[key] = (at, end_us, recipe)
        self._done(event.source, at, end_us, recipe)
        return True

    def completed(self, event: Event) -> bool:
        """Apply a ``production.work_completed``; False for a duplicate.

        Raises:
            AnalyticsInputError: no transaction id, or a completion earlier than its start.
        """
        f = event.__dict__  # the field values: one hooked attribute lookup (see states.state_parts)
        p = f["payload"]
        tid = p.get("transaction_id") or f["correlation_id"]
        if not tid:
            self._transaction(event)  # raises, naming the field
        station = f["source"]
        key = (station, tid if type(tid) is str else str(tid))
        work = self.work
        w = work.get(key)
        d = f["timestamp"] - EPOCH  # epoch_us, inline on this per-event path
        at = d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds
        if w is None:
            start_us = recipe = None
        else:
            start_us, end_us, recipe = w
            if end_us is not None:
                self.duplicates += 1
                return False
            if start_us is not None and at < start_us:
                raise AnalyticsInputError(
                    event.id, event.type, "transaction_id", f"work {key[1]!r} at {key[0]!r} completed before it started"
                )
        per = self.completions.get(station)
        if per is None:
            per = self.completions[station] = {}
        b = at // self.bucket_us
        result = p.get("result")
        good = (result if type(result) is str else str(result or "")).lower() in _GOOD
        c, g = per.get(b, (0, 0))
        per[b] = (c + 1, g + good)
        if recipe is None and p.get("recipe"):
            recipe = str(p["recipe"])
        work[key] = (start_us, at, recipe)
        if start_us is not None:
            self._done(station, start_us, at, recipe)
        elif len(work) > _OPEN_KEPT:
            self._trim()
        return True

    def _done(self, station: str, start_us: int, end_us: int, recipe: str | None) -> None:
        d = end_us - start_us
        per = self.samples.get(station)
        if per is None:
            per = self.samples[station] = {}
        b = end_us // self.bucket_us
        rows = per.get(b)
        if rows is None:
            rows = per[b] = []
        rows.append((d, recipe))
        recent = self.recent
        k: tuple[str, str | None] = (station, None)
        q = recent.get(k)
        if q is None:
            q = recent[k] = deque(maxlen=self.history)
        q.append(d)
        if recipe is not None:
            k = (station, recipe)
            q = recent.get(k)
            if q is None:
                q = recent[k] = deque(maxlen=self.history)
            q.append(d)

    def step(self, station: str, start_us: int, end_us: int, sign: int) -> None:
        """Add (``sign`` 1) or take back (-1) one lab step of ``station`` lasting ``start_us..end_us``
        (µs since the epoch), counted like a cycle completed at ``end_us``, recipe ``None``."""
        d = end_us - start_us
        rows = self.samples.setdefault(station, {}).setdefault(end_us // self.bucket_us, [])
        q = self.recent.get((station, None))
        if sign > 0:
            rows.append((d, None))
            if q is None:
                q = self.recent[(station, None)] = deque(maxlen=self.history)
            q.append(d)
        else:
            rows.remove((d, None))
            if q is not None and d in q:
                q.remove(d)

    def _trim(self) -> None:
        while len(self.work) > _OPEN_KEPT:
            self.work.popitem(last=False)

    # -- queries ------------------------------------------------------------------------------
    def window(self, station: str, lo: int | None, hi: int, recipe: str | None = None) -> list[float]:
        """Cycle times in seconds of ``station`` completed in buckets ``lo..hi-1`` (one recipe or all)."""
        out: list[float] = []
        for b, rows in (self.samples.get(station) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                out.extend(d / 1e6 for d, r in rows if recipe is None or r == recipe)
        return out

    def window_by_recipe(self, station: str, lo: int | None, hi: int) -> dict[str | None, list[float]]:
        """Cycle times in seconds of ``station`` completed in buckets ``lo..hi-1``, by recipe (``None``:
        no recipe, and lab steps); one pass over the buckets."""
        out: dict[str | None, list[float]] = {}
        for b, rows in (self.samples.get(station) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                for d, r in rows:
                    ds = out.get(r)
                    if ds is None:
                        ds = out[r] = []
                    ds.append(d / 1e6)
        return out

    def completed_counts(self, station: str, lo: int | None, hi: int) -> tuple[int, int]:
        """(completions, good completions) of ``station`` in buckets ``lo..hi-1``."""
        n = good = 0
        for b, (c, g) in (self.completions.get(station) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                n += c
                good += g
        return n, good

    def recipes(self, station: str) -> list[str]:
        """Recipes with at least one cycle at ``station``, sorted."""
        return sorted({r for (s, r) in self.recent if s == station and r is not None})

    def estimate(self, station: str, recipe: str | None = None, confidence: float = 0.95) -> float | None:
        """Expected cycle time in seconds at ``confidence`` (see the module docstring), ``None`` without
        history.

        Raises:
            ValueError: ``confidence`` outside (0, 1].
        """
        q = self.recent.get((station, recipe))
        est = quantile(list(q) if q else [], confidence)
        return None if est is None else est / 1e6
