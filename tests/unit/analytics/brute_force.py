"""Brute-force analytics: every figure recomputed from the whole event list at once, written from the
definitions (not from the engine's buckets), to check the incremental engine against."""

from __future__ import annotations

import math
from typing import Any

from pywats_events import Event
from pywats_events.analytics.states import CATEGORIES, epoch_us

_PASS = {"pass", "passed"}


def _nearest_rank(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[max(1, math.ceil(q * len(s))) - 1]


def _in(t: int, since: int | None, until: int) -> bool:
    return (since is None or t >= since) and t < until


def brute_force(events: list[Event], since_us: int | None, until_us: int, now_us: int) -> dict[str, dict[str, Any]]:
    """Figures per asset over ``[since_us, until_us)`` (bounds already bucket-aligned)."""
    unique: dict[str, Event] = {}
    for e in events:
        unique.setdefault(e.id, e)
    evs = sorted(unique.values(), key=lambda e: (epoch_us(e.timestamp), e.id))
    out: dict[str, dict[str, Any]] = {}

    def asset(a: str) -> dict[str, Any]:
        return out.setdefault(a, {"tis": None, "faults": 0, "repairs": [], "units": {}, "cycles": []})

    # time in state: consecutive changes, the last open until min(until, now), clipped to the window
    changes: dict[str, list[tuple[int, str]]] = {}
    for e in evs:
        if e.type == "asset.state_changed":
            changes.setdefault(e.payload.get("asset_id") or e.source, []).append(
                (epoch_us(e.timestamp), e.payload["new_category"])
            )
    for a, ch in changes.items():
        tis = dict.fromkeys(CATEGORIES, 0)
        for i, (t, cat) in enumerate(ch):
            end = ch[i + 1][0] if i + 1 < len(ch) else min(until_us, now_us)
            lo = t if since_us is None else max(t, since_us)
            hi = min(end, until_us)
            if hi > lo:
                tis[cat] += hi - lo
        asset(a)["tis"] = tis
    # faults: paired by id, counted at occurrence
    starts: dict[tuple[str, str], int] = {}
    ends: dict[tuple[str, str], int] = {}
    for e in evs:
        key = (e.source, e.payload["fault_id"]) if e.type.startswith("asset.fault") else None
        if e.type == "asset.fault":
            starts.setdefault(key, epoch_us(e.timestamp))  # type: ignore[arg-type]
        elif e.type == "asset.fault_cleared":
            ends.setdefault(key, epoch_us(e.timestamp))  # type: ignore[arg-type]
    for (a, fid), t in starts.items():
        if _in(t, since_us, until_us):
            rec = asset(a)
            rec["faults"] += 1
            if (a, fid) in ends:
                rec["repairs"].append(ends[(a, fid)] - t)
    # yield: per station and unit, tests in time order
    tests: dict[tuple[str, str], list[bool]] = {}
    first_at: dict[tuple[str, str], int] = {}
    for e in evs:
        if e.type == "test.result":
            k = (e.source, e.payload["unit_id"])
            tests.setdefault(k, []).append(e.payload["result"] in _PASS)
            first_at.setdefault(k, epoch_us(e.timestamp))
    for (a, u), results in tests.items():
        if _in(first_at[(a, u)], since_us, until_us):
            asset(a)["units"][u] = results
    # cycles: start/end by transaction, counted at completion
    ws: dict[tuple[str, str], int] = {}
    we: dict[tuple[str, str], int] = {}
    for e in evs:
        if e.type == "production.work_started":
            ws.setdefault((e.source, e.payload["transaction_id"]), epoch_us(e.timestamp))
        elif e.type == "production.work_completed":
            we.setdefault((e.source, e.payload["transaction_id"]), epoch_us(e.timestamp))
    for (a, tid), t in we.items():
        if (a, tid) in ws and _in(t, since_us, until_us):
            asset(a)["cycles"].append((t - ws[(a, tid)]) / 1e6)

    result: dict[str, dict[str, Any]] = {}
    for a, rec in out.items():
        tis = rec["tis"]
        units = rec["units"]
        r: dict[str, Any] = {}
        if tis is None:
            r.update(time_in_state_s=None, availability=None, utilization=None, error_rate=None)
            prd = None
        else:
            total = sum(tis.values())
            ops = total - tis["NST"]
            up = tis["PRD"] + tis["SBY"] + tis["ENG"]
            r["time_in_state_s"] = {c: tis[c] / 1e6 for c in CATEGORIES}
            r["availability"] = up / ops if ops else None
            r["utilization"] = tis["PRD"] / total if total else None
            r["error_rate"] = tis["USD"] / total if total else None
            prd = tis["PRD"] / 1e6
        r["faults"] = rec["faults"]
        r["mtbf_s"] = prd / rec["faults"] if rec["faults"] and prd is not None else None
        r["mttr_s"] = sum(rec["repairs"]) / 1e6 / len(rec["repairs"]) if rec["repairs"] else None
        r["units_tested"] = len(units)
        r["first_pass_yield"] = sum(v[0] for v in units.values()) / len(units) if units else None
        r["final_yield"] = sum(v[-1] for v in units.values()) / len(units) if units else None
        r["retests"] = sum(len(v) - 1 for v in units.values())
        r["cycle_time_s"] = {"p50": _nearest_rank(rec["cycles"], 0.5), "p95": _nearest_rank(rec["cycles"], 0.95)}
        result[a] = r
    return result


FIELDS = (
    "time_in_state_s",
    "availability",
    "utilization",
    "error_rate",
    "faults",
    "mtbf_s",
    "mttr_s",
    "units_tested",
    "first_pass_yield",
    "final_yield",
    "retests",
    "cycle_time_s",
)


def assert_matches(report: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    """Every asset the brute force has figures for shows the same figures in the engine report."""
    import pytest

    for a, figures in expected.items():
        got = report["assets"].get(a)
        assert got is not None, f"asset {a} missing from the report"
        for f in FIELDS:
            want = figures[f]
            have = got[f]
            if isinstance(want, float):
                assert have == pytest.approx(want, rel=1e-9, abs=1e-9), (a, f, have, want)
            elif isinstance(want, dict):
                assert have is not None, (a, f)
                for k, v in want.items():
                    assert have[k] == (pytest.approx(v, abs=1e-9) if v is not None else None), (a, f, k, have, want)
            else:
                assert have == want, (a, f, have, want)
