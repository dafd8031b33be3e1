"""The report as a terminal table or CSV (the JSON form is ``AnalyticsEngine.report`` itself).

CSV: one row per asset (and a last row ``line``), columns ``asset``, ``time_<CAT>_s`` for the six SEMI
E10 categories, then the figures of ``COLUMNS``; an uncomputable figure is an empty cell, never 0.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.table import Table

from .states import CATEGORIES

__all__ = ["COLUMNS", "report_csv", "report_table"]

COLUMNS: tuple[str, ...] = (
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
    "cycles",
    "cycle_p50_s",
    "cycle_p95_s",
    "oee",
)


def _value(figures: dict[str, Any], column: str) -> Any:
    if column == "cycle_p50_s":
        return figures["cycle_time_s"]["p50"]
    if column == "cycle_p95_s":
        return figures["cycle_time_s"]["p95"]
    if column == "oee":
        o = figures.get("oee")
        return o["oee"] if o else None
    return figures.get(column)


def _rows(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [*report["assets"].items(), ("line", report["line"])]


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV text (see the module docstring)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["asset", *(f"time_{c}_s" for c in CATEGORIES), *COLUMNS])
    for asset, f in _rows(report):
        tis = f.get("time_in_state_s")
        times = [tis[c] if tis else "" for c in CATEGORIES]
        w.writerow([asset, *times, *("" if (v := _value(f, c)) is None else v for c in COLUMNS)])
    return buf.getvalue()


def _fmt(column: str, v: Any) -> str:
    if v is None:
        return "-"
    if column in ("availability", "utilization", "error_rate", "first_pass_yield", "final_yield", "oee"):
        return f"{v:.1%}"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return str(v)


def report_table(report: dict[str, Any]) -> Table:
    """A rich table: one row per asset and the line; percentages for shares, ``-`` when not computable."""
    win = report["window"]
    t = Table(title=f"analytics {win['since'] or 'start'} .. {win['until']}")
    shown = ("PRD", "SBY", "USD", "NST")
    t.add_column("asset", overflow="fold")
    for c in shown:
        t.add_column(f"{c} h", justify="right")
    heads = ("avail", "util", "err", "faults", "MTBF s", "MTTR s", "units", "FPY", "cycle p50", "p95", "OEE")
    cols = (
        "availability",
        "utilization",
        "error_rate",
        "faults",
        "mtbf_s",
        "mttr_s",
        "units_tested",
        "first_pass_yield",
        "cycle_p50_s",
        "cycle_p95_s",
        "oee",
    )
    for h in heads:
        t.add_column(h, justify="right")
    for asset, f in _rows(report):
        tis = f.get("time_in_state_s")
        hours = [f"{tis[c] / 3600:.2f}" if tis else "-" for c in shown]
        t.add_row(asset, *hours, *(_fmt(c, _value(f, c)) for c in cols))
    return t
