"""First-pass yield, final yield and retests from ``test.result`` events (IPC-CFX ``UnitsTested``, one
event per tested unit).

Definitions (the usual manufacturing ones, as in WATS yield reports):

- first-pass yield (FPY) = units whose *first* test at a station passed / units tested at that station;
- final yield = units whose *last* test there passed / units tested there;
- retests = tests of a unit beyond its first, at that station.

"First" and "last" are by event time, so a late or redelivered earlier test takes its place. A unit is
counted in the window holding its first test. Yields are kept per station and, within a station, per
recipe (``payload.recipe``), per part (``payload.part_number``) and per test step (``payload.tests[*]``:
a unit's first run of a step); failing test steps and measurements are counted in the window of the
event that reports them. A result is a pass when ``payload.result`` is ``pass`` (``passed``
accepted); anything else (``fail``, ``error``, ``aborted``) is not.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from ..event import Event
from .errors import AnalyticsInputError
from .states import EPOCH

__all__ = ["YieldBook", "YieldFigures"]

_PASS = frozenset({"pass", "passed"})
#: Event ids remembered to recognize duplicate deliveries (count).
_SEEN_KEPT = 200_000

#: A yield group: (station, dimension, value); dimension is ``station``, ``recipe``, ``part`` or ``test``.
GroupKey = tuple[str, str, str]


#: A unit of a group: (first test (µs, event id), first passed, last test, last passed, tests).
_Unit = tuple[tuple[int, str], bool, tuple[int, str], bool, int]
_ZERO = (0, 0, 0, 0)


@dataclass(slots=True)
class YieldFigures:
    """Counts of one group over a window: ``units`` tested, ``first_pass`` and ``final_pass`` units,
    ``retests``."""

    units: int = 0
    first_pass: int = 0
    final_pass: int = 0
    retests: int = 0

    @property
    def first_pass_yield(self) -> float | None:
        """FPY in 0..1, ``None`` with no unit tested."""
        return self.first_pass / self.units if self.units else None

    @property
    def final_yield(self) -> float | None:
        """Final yield in 0..1, ``None`` with no unit tested."""
        return self.final_pass / self.units if self.units else None


class YieldBook:
    """Units per yield group with their first and last test, and counts per time bucket.

    Args:
        bucket_s: bucket width in whole seconds.
    """

    def __init__(self, bucket_s: int = 60) -> None:
        self.bucket_us = bucket_s * 1_000_000
        self.units: dict[GroupKey, dict[str, _Unit]] = {}
        #: group -> bucket -> (units, first_pass, final_pass, retests)
        self.buckets: dict[GroupKey, dict[int, tuple[int, int, int, int]]] = {}
        self.failures: dict[str, dict[int, dict[tuple[str, str], int]]] = {}  # station -> b -> (kind, name)
        #: group -> (its ``units`` dict, its ``buckets`` dict): one lookup per group on the hot path.
        self._groups: dict[GroupKey, tuple[dict[str, _Unit], dict[int, tuple[int, int, int, int]]]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def add(self, event: Event) -> bool:
        """Apply one ``test.result``; False for a duplicate (an event id already applied).

        Raises:
            AnalyticsInputError: no ``unit_id`` or no ``result`` in the payload.
        """
        f = event.__dict__  # the field values: one hooked attribute lookup (see states.state_parts)
        event_id = f["id"]
        if event_id in self._seen:
            self.duplicates += 1
            return False
        p = f["payload"]
        unit = p.get("unit_id")
        if not unit:
            raise AnalyticsInputError(event_id, event.type, "unit_id", "missing; a tested unit needs an id")
        result = p.get("result")
        if not isinstance(result, str):
            raise AnalyticsInputError(event_id, event.type, "result", f"expected a test result, got {result!r}")
        seen = self._seen
        seen[event_id] = None
        if len(seen) > _SEEN_KEPT:
            seen.popitem(last=False)
        station = f["source"]
        d = f["timestamp"] - EPOCH  # epoch_us, inline on this per-event path
        at = d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds
        key = (at, event_id)
        passed = result.lower() in _PASS
        unit = unit if type(unit) is str else str(unit)
        self._apply((station, "station", ""), unit, key, passed)
        recipe, part = p.get("recipe"), p.get("part_number")
        if recipe:
            self._apply((station, "recipe", str(recipe)), unit, key, passed)
        if part:
            self._apply((station, "part", str(part)), unit, key, passed)
        tests = p.get("tests")
        if isinstance(tests, list):
            b = at // self.bucket_us
            fails: dict[tuple[str, str], int] | None = None
            for t in tests:
                if not isinstance(t, dict) or not t.get("name"):
                    continue
                name = str(t["name"])
                ok = str(t.get("result") or "").lower() in _PASS
                self._apply((station, "test", name), unit, key, ok)
                if not ok:
                    if fails is None:
                        fails = self.failures.setdefault(station, {}).setdefault(b, {})
                    fails[("test", name)] = fails.get(("test", name), 0) + 1
                for m in t.get("measurements") or ():
                    if isinstance(m, dict) and m.get("name") and str(m.get("result") or "").lower() == "fail":
                        if fails is None:
                            fails = self.failures.setdefault(station, {}).setdefault(b, {})
                        mk = ("measurement", f"{name}/{m['name']}")
                        fails[mk] = fails.get(mk, 0) + 1
        return True

    def _apply(self, group: GroupKey, unit: str, key: tuple[int, str], passed: bool) -> None:
        # Units and bucket rows are tuples of atomic values, replaced on update: the garbage collector
        # stops tracking them (a mutable record per unit would be walked by every full collection).
        pair = self._groups.get(group)
        if pair is None:
            pair = self._groups[group] = (self.units.setdefault(group, {}), self.buckets.setdefault(group, {}))
        units, per = pair
        w = self.bucket_us
        u = units.get(unit)
        if u is None:
            units[unit] = (key, passed, key, passed, 1)
            b = key[0] // w
            row = per.get(b)
            per[b] = (1, +passed, +passed, 0) if row is None else (row[0] + 1, row[1] + passed, row[2] + passed, row[3])
            return
        # Take the unit's contribution out of the bucket of its first test, update, put it back.
        first, first_pass, last, last_pass, tests = u
        b0 = first[0] // w
        r0, r1, r2, r3 = per[b0]
        r0, r1, r2, r3 = r0 - 1, r1 - first_pass, r2 - last_pass, r3 - tests + 1
        if key < first:
            first, first_pass = key, passed
        if key > last:
            last, last_pass = key, passed
        tests += 1
        units[unit] = (first, first_pass, last, last_pass, tests)
        b = first[0] // w
        if b != b0:
            per[b0] = (r0, r1, r2, r3)
            r0, r1, r2, r3 = per.get(b, _ZERO)
        per[b] = (r0 + 1, r1 + first_pass, r2 + last_pass, r3 + tests - 1)

    # -- queries ------------------------------------------------------------------------------
    def figures(self, group: GroupKey, lo: int | None, hi: int) -> YieldFigures:
        """Counts of ``group`` over buckets ``lo..hi-1`` (``lo`` ``None``: from the start)."""
        f = YieldFigures()
        for b, row in (self.buckets.get(group) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                f.units += row[0]
                f.first_pass += row[1]
                f.final_pass += row[2]
                f.retests += row[3]
        return f

    def groups(self, station: str, dimension: str) -> list[str]:
        """Values of ``dimension`` (``recipe``, ``part``, ``test``) seen at ``station``, sorted."""
        return sorted(v for (s, d, v) in self.buckets if s == station and d == dimension)

    def stations(self) -> set[str]:
        """Stations with at least one tested unit."""
        return {s for (s, d, _) in self.buckets if d == "station"}

    def failing(self, station: str, lo: int | None, hi: int) -> list[tuple[str, str, int]]:
        """(kind, name, failures) ranked by failures then name; kind ``test`` or ``measurement``."""
        acc: dict[tuple[str, str], int] = {}
        for b, counts in (self.failures.get(station) or {}).items():
            if (lo is None or b >= lo) and b < hi:
                for k, n in counts.items():
                    acc[k] = acc.get(k, 0) + n
        return sorted(((k, nm, n) for (k, nm), n in acc.items()), key=lambda r: (-r[2], r[0], r[1]))
