"""``AnalyticsEngine``: every line and lab figure, kept up to date event by event, and the report.

The engine is synchronous and in memory; the ``AnalyticsHandler`` feeds it from the bus, the CLI feeds
it from the event store (``rebuild``). It reads:

- ``asset.state_changed`` -> status history and SEMI E10 time in state (``history``, ``states``);
- ``asset.fault`` / ``asset.fault_cleared`` -> faults, MTBF, MTTR, Pareto (``reliability``);
- ``test.result`` -> first-pass and final yield, retests, failing tests (``first_pass_yield``);
- ``production.work_started`` / ``production.work_completed`` -> cycle times, OEE output
  (``cycle_time``, ``oee``); for lab modules (``asset_kind: lab_module``) each Busy stay is a step and
  its duration a cycle time.

Nothing is computed by rescanning events: each event updates counters of its time bucket, and a report
sums the buckets of its window (see ``window``). Figures that cannot be computed are ``None`` (JSON
``null``), never 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..event import Event, EventType
from .cycle_time import CycleTimes, quantile
from .first_pass_yield import YieldBook, YieldFigures
from .history import StatusHistory
from .oee import oee
from .reliability import FaultBook
from .states import CATEGORIES, CATEGORY_INDEX, StateChange, state_parts
from .window import Window

__all__ = ["HANDLED_TYPES", "AnalyticsEngine"]

#: Event types the engine reads.
HANDLED_TYPES: tuple[str, ...] = (
    EventType.ASSET_STATE_CHANGED,
    EventType.ASSET_FAULT,
    EventType.ASSET_FAULT_CLEARED,
    EventType.TEST_RESULT,
    EventType.PRODUCTION_WORK_STARTED,
    EventType.PRODUCTION_WORK_COMPLETED,
)

_PRD, _SBY, _ENG, _SDT, _USD, _NST = range(6)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


class AnalyticsEngine:
    """All analytics state of one bus (see the module docstring).

    Args:
        history_size: state changes kept in memory per asset (count; default 1,000).
        bucket_s: bucket width in whole seconds (default 60): the finest window resolution.
        ideal_cycle_s: ideal cycle time per station, seconds, for OEE (``{"SMT.Oven.SN1": 42.0}``).
        cycle_history: cycle times kept per (station, recipe) for the estimator (count).

    Raises:
        ValueError: a bad ``history_size``, ``bucket_s`` or ideal cycle time.
    """

    def __init__(
        self,
        *,
        history_size: int = 1000,
        bucket_s: int = 60,
        ideal_cycle_s: Mapping[str, float] | None = None,
        cycle_history: int = 1000,
    ) -> None:
        for station, v in (ideal_cycle_s or {}).items():
            if not v > 0:
                raise ValueError(f"ideal_cycle_s[{station!r}] must be positive seconds, got {v!r}")
        self.bucket_s = bucket_s
        self.history = StatusHistory(history_size, bucket_s)
        self.faults = FaultBook(bucket_s)
        self.yields = YieldBook(bucket_s)
        self.cycles = CycleTimes(bucket_s, cycle_history)
        self.ideal_cycle_s: dict[str, float] = dict(ideal_cycle_s or {})
        self.kinds: dict[str, str] = {}
        self.events = 0
        #: Called with each new state change placed in the history (the handler queues it for the table).
        self.on_change: Callable[[StateChange], None] | None = None
        # Set when the first lab module shows up: line stations pay no call per stay for it.
        self.history.on_interval = None
        self._dispatch = {
            EventType.ASSET_STATE_CHANGED.value: self._state,
            EventType.ASSET_FAULT.value: self.faults.occurred,
            EventType.ASSET_FAULT_CLEARED.value: self.faults.cleared,
            EventType.TEST_RESULT.value: self.yields.add,
            EventType.PRODUCTION_WORK_STARTED.value: self.cycles.started,
            EventType.PRODUCTION_WORK_COMPLETED.value: self.cycles.completed,
        }

    def apply(self, event: Event) -> bool:
        """Apply one event; returns False for a duplicate or a type the engine does not read.

        Raises:
            AnalyticsInputError: the payload lacks what the figure needs (the message names the field).
            TooLateError: a state change older than the in-memory history can place.
        """
        fn = self._dispatch.get(event.type)
        if fn is None:
            return False
        applied = fn(event)
        self.events += applied
        return applied

    def apply_batch(self, events: Iterable[Event], refused: Callable[[Event, Exception], None]) -> int:
        """Apply events in order in one loop (the handler's inbox: no call layer per event); an event the
        engine refuses, for any error (``AnalyticsInputError``, ``TooLateError``, a bug), is passed to
        ``refused(event, error)`` and the batch goes on. Event types the engine does not read cost one
        dict lookup. Returns how many events changed something."""
        get = self._dispatch.get
        applied = 0
        for ev in events:
            fn = get(ev.type)
            if fn is not None:
                try:
                    applied += fn(ev)
                except Exception as exc:
                    refused(ev, exc)
        self.events += applied
        return applied

    def apply_all(self, events: Iterable[Event]) -> int:
        """Apply events in order; returns how many changed something. Errors propagate as for ``apply``."""
        return sum(self.apply(e) for e in events)

    def _state(self, event: Event) -> bool:
        asset, at_us, event_id, cat, code, name = state_parts(event)
        kind = event.payload.get("asset_kind")
        if kind:
            self.kinds[asset] = kind = str(kind)
            if kind == "lab_module" and self.history.on_interval is None:
                self.history.on_interval = self._stay
        if not self.history.place(asset, at_us, event_id, cat, code, name):
            return False
        if self.on_change is not None:
            self.on_change(StateChange(asset, at_us, event_id, CATEGORIES[cat], code, name))
        return True

    def _stay(self, asset: str, start_us: int, end_us: int, category: str, sign: int) -> None:
        # A lab module's Busy stay is one step (the LARA status DB's process step): its duration feeds
        # the module's cycle times and estimator; a late update splitting the stay replaces it by two.
        if category == "PRD" and self.kinds.get(asset) == "lab_module":
            self.cycles.step(asset, start_us, end_us, sign)

    # -- report -----------------------------------------------------------------------------------
    def asset_ids(self) -> list[str]:
        """Every asset with any figure, sorted."""
        ids = set(self.history.assets) | set(self.faults.buckets) | self.yields.stations()
        ids |= set(self.cycles.samples) | set(self.cycles.completions)
        return sorted(ids)

    def asset_report(self, asset: str, w: Window, _raw: list[Any] | None = None) -> dict[str, Any]:
        """The figures of one asset over window ``w`` (keys as in ``report``'s ``assets`` values)."""
        tis = self.history.time_in_state_us(asset, w.since_us, w.until_us, w.now_us)
        n_faults, repairs, repair_us, codes = self.faults.window(asset, w.lo, w.hi)
        fy = self.yields.figures((asset, "station", ""), w.lo, w.hi)
        by_recipe = self.cycles.window_by_recipe(asset, w.lo, w.hi)
        samples = [d for ds in by_recipe.values() for d in ds]
        completions, good = self.cycles.completed_counts(asset, w.lo, w.hi)
        if _raw is not None:  # the line's sums reuse these instead of scanning the buckets again
            _raw.append((tis, n_faults, repairs, repair_us, codes, fy, samples))
        out: dict[str, Any] = {"kind": self.kinds.get(asset, "station")}
        current = self.history.current(asset)
        out["state"] = current.name if current else None
        out["category"] = current.category if current else None
        out.update(_time_figures(tis))
        out.update(_fault_figures(tis, n_faults, repairs, repair_us, codes))
        out.update(_yield_figures(fy))
        out["yield_by"] = {
            dim: {
                v: _yield_figures(self.yields.figures((asset, dim, v), w.lo, w.hi))
                for v in self.yields.groups(asset, dim)
            }
            for dim in ("recipe", "part", "test")
        }
        out["failing"] = [{"kind": k, "name": n, "failures": c} for k, n, c in self.yields.failing(asset, w.lo, w.hi)]
        out["cycles"] = len(samples)
        out["cycle_time_s"] = _percentiles(samples)
        out["cycle_time_by_recipe"] = {
            r: {"cycles": len(ds), **_percentiles(ds)}
            for r, ds in sorted((r, ds) for r, ds in by_recipe.items() if r is not None)
        }
        out["estimated_cycle_s_p95"] = self.cycles.estimate(asset, None, 0.95)
        ideal = self.ideal_cycle_s.get(asset)
        if ideal is not None and tis is not None:
            quality = fy.first_pass_yield if fy.units else (good / completions if completions else None)
            out["oee"] = oee(
                (sum(tis) - tis[_NST]) / 1e6, (tis[_PRD] + tis[_SBY] + tis[_ENG]) / 1e6, ideal, completions, quality
            )
        else:
            out["oee"] = None
        return out

    def report(self, w: Window, assets: Iterable[str] | None = None) -> dict[str, Any]:
        """The report over ``w``: ``{"window": {...}, "bucket_s", "assets": {asset: figures}, "line":
        figures summed over the assets, "events", "late_refused", "duplicates"}``.

        Per asset: ``time_in_state_s`` (E10 category -> seconds, ``None`` without state history),
        ``total_time_s``, ``operations_time_s``, ``uptime_s``, ``downtime_s``, ``availability``,
        ``utilization``, ``operational_utilization``, ``error_rate`` (0..1), ``faults``, ``repairs``,
        ``mtbf_s``, ``mttr_s``, ``top_faults``, ``units_tested``, ``first_pass_yield``, ``final_yield``,
        ``retests``, ``yield_by``, ``failing``, ``cycles``, ``cycle_time_s`` (``p50``, ``p95``),
        ``cycle_time_by_recipe``, ``estimated_cycle_s_p95``, ``oee``. Definitions: see ``states``,
        ``reliability``, ``first_pass_yield``, ``cycle_time``, ``oee``.
        """
        ids = sorted(assets) if assets is not None else self.asset_ids()
        raw: list[Any] = []
        per = {a: self.asset_report(a, w, raw) for a in ids}
        return {
            "window": w.to_json_dict(),
            "bucket_s": self.bucket_s,
            "assets": per,
            "line": _line(raw),
            "events": self.events,
            "late_refused": self.history.too_late,
            "duplicates": self.history.duplicates
            + self.faults.duplicates
            + self.yields.duplicates
            + self.cycles.duplicates,
        }


def _line(raw: list[Any]) -> dict[str, Any]:
    """Line figures from the per-asset sums: times, faults, repairs, yield counts and cycles added up."""
    tis: list[int] | None = None
    n_faults = repairs = repair_us = 0
    codes: dict[str, list[int]] = {}
    fy = YieldFigures()
    samples: list[float] = []
    for t, f, r, d, c, g, s in raw:
        if t is not None:
            tis = [x + y for x, y in zip(tis, t, strict=True)] if tis is not None else t
        n_faults, repairs, repair_us = n_faults + f, repairs + r, repair_us + d
        for code, (n, dd) in c.items():
            row = codes.setdefault(code, [0, 0])
            row[0] += n
            row[1] += dd
        fy.units += g.units
        fy.first_pass += g.first_pass
        fy.final_pass += g.final_pass
        fy.retests += g.retests
        samples.extend(s)
    out: dict[str, Any] = {"assets": len(raw)}
    out.update(_time_figures(tis))
    out.update(_fault_figures(tis, n_faults, repairs, repair_us, codes))
    out.update(_yield_figures(fy))
    out["cycles"] = len(samples)
    out["cycle_time_s"] = _percentiles(samples)
    return out


def _time_figures(tis: list[int] | None) -> dict[str, Any]:
    if tis is None:
        none: dict[str, Any] = dict.fromkeys(
            (
                "time_in_state_s",
                "total_time_s",
                "operations_time_s",
                "uptime_s",
                "downtime_s",
                "availability",
                "utilization",
                "operational_utilization",
                "error_rate",
            )
        )
        return none
    total = sum(tis)
    ops = total - tis[_NST]
    up = tis[_PRD] + tis[_SBY] + tis[_ENG]
    return {
        "time_in_state_s": {c: tis[CATEGORY_INDEX[c]] / 1e6 for c in CATEGORIES},
        "total_time_s": total / 1e6,
        "operations_time_s": ops / 1e6,
        "uptime_s": up / 1e6,
        "downtime_s": (tis[_SDT] + tis[_USD]) / 1e6,
        # SEMI E10 operational availability: equipment uptime over operations time.
        "availability": _ratio(up, ops),
        # SEMI E10 total utilization (the Biosero "busy share"): productive time over total time.
        "utilization": _ratio(tis[_PRD], total),
        # SEMI E10 operational utilization: productive time over operations time.
        "operational_utilization": _ratio(tis[_PRD], ops),
        # Share of time in unscheduled downtime (lab modules: Error), over total time.
        "error_rate": _ratio(tis[_USD], total),
    }


def _fault_figures(
    tis: list[int] | None, n: int, repairs: int, repair_us: int, codes: dict[str, list[int]]
) -> dict[str, Any]:
    top = sorted(codes.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
    return {
        "faults": n,
        "repairs": repairs,
        # SEMI E10 MTBFp: productive time per failure; no failure or no state history: not computable.
        "mtbf_s": tis[_PRD] / 1e6 / n if n and tis is not None else None,
        "mttr_s": repair_us / 1e6 / repairs if repairs else None,
        "top_faults": [{"code": c, "count": v[0], "downtime_s": v[1] / 1e6} for c, v in top[:10]],
    }


def _yield_figures(f: YieldFigures) -> dict[str, Any]:
    return {
        "units_tested": f.units,
        "first_pass_yield": f.first_pass_yield,
        "final_yield": f.final_yield,
        "retests": f.retests,
    }


def _percentiles(samples: list[float]) -> dict[str, float | None]:
    return {"p50": quantile(samples, 0.5), "p95": quantile(samples, 0.95)}
