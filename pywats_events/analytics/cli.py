"""``pywats-events analytics``: ``report`` and ``rebuild`` from the event store.

Both replay the events the ``event-store`` handler kept (``replay``) with the options of the
configuration's ``[[handlers]] kind = "analytics"`` table (``bucket_s``, ``ideal_cycle_s``...), so a
report from the command line shows the figures the running service computes. ``rebuild`` also rewrites
the status-history table (``analytics_state_history``) for the window. Errors print one line on stderr
and exit with status 2, like the other commands.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .. import jsonsafe
from ..config import Settings, load_settings
from ..errors import PyWatsEventsError
from ..sql_store import open_store
from .replay import replay_store
from .report import report_csv, report_table
from .store import HistoryStore
from .window import DEFAULT_SHIFT_STARTS, parse_time, resolve_window

__all__ = ["analytics_app"]

analytics_app = typer.Typer(help="Line and lab analytics: report, rebuild.", no_args_is_help=True)

_out = Console()
_err = Console(stderr=True)

_ENGINE_KEYS = ("history_size", "bucket_s", "ideal_cycle_s", "cycle_history")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Configuration file (TOML or YAML).")]
DbOpt = Annotated[
    str | None, typer.Option("--db", help="Store: file path or URL. Env: PYWATS_EVENTS_DB.", show_default=False)
]
SinceOpt = Annotated[str | None, typer.Option(help="Window start: ISO 8601 or -8h / -1d.")]
UntilOpt = Annotated[str | None, typer.Option(help="Window end (default now): ISO 8601 or -1h.")]
WindowOpt = Annotated[str | None, typer.Option("--window", help="shift | day: the one holding --until.")]


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _handler_options(settings: Settings) -> dict[str, Any]:
    for h in settings.handlers:
        if h.kind == "analytics":
            return h.options()
    return {}


async def _replay(settings: Settings, since: str | None, until: str | None, window: str | None) -> tuple[Any, Any]:
    opts = _handler_options(settings)
    engine_opts = {k: v for k, v in opts.items() if k in _ENGINE_KEYS}
    until_t = parse_time(until, where="--until") if until else None
    w = resolve_window(
        since=parse_time(since, where="--since") if since else None,
        until=until_t,
        window=window,
        bucket_s=int(engine_opts.get("bucket_s", 60)),
        shift_starts=opts.get("shift_starts", DEFAULT_SHIFT_STARTS),
    )
    store = open_store(settings.db)
    await store.open()
    try:
        result = await replay_store(store, until=until_t, engine_options=engine_opts)
    finally:
        await store.close()
    return result, w


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (PyWatsEventsError, ValueError, TypeError) as exc:
        raise _fail(str(exc)) from None


def _warn_rejected(result: Any) -> None:
    if result.rejected:
        _err.print(f"[yellow]warning:[/] {result.rejected} stored events could not be used; first:", highlight=False)
        for msg in result.errors[:5]:
            _err.print(f"  {msg}", highlight=False, soft_wrap=True)


@analytics_app.command("report")
def report(
    since: SinceOpt = None,
    until: UntilOpt = None,
    window: WindowOpt = None,
    asset: Annotated[list[str] | None, typer.Option("--asset", help="Only these assets (repeatable).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout, one row per asset and the line.")] = False,
) -> None:
    """Time in SEMI E10 states, availability, utilization, error rate, MTBF/MTTR, yield, cycle time, OEE
    per asset and for the line, over a window, from the event store."""
    settings = _load(config, db)
    result, w = _run(_replay(settings, since, until, window))
    rep = result.engine.report(w, asset or None)
    _warn_rejected(result)
    if as_json:
        sys.stdout.write(jsonsafe.dumps(rep, compact=False) + "\n")
    elif as_csv:
        sys.stdout.write(report_csv(rep))
    else:
        _out.print(report_table(rep))


@analytics_app.command("rebuild")
def rebuild(
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Recompute the analytics from the event store and rewrite the status-history table for the window
    (all of it without --since/--until)."""
    settings = _load(config, db)

    async def go() -> dict[str, Any]:
        result, w = await _replay(settings, since, until, None)
        opts = _handler_options(settings)
        history = HistoryStore(opts.get("db") or settings.db)
        await history.open()
        try:
            s = parse_time(since, where="--since") if since else None
            u = parse_time(until, where="--until") if until else None
            keep = [
                c
                for c in result.changes
                if (s is None or c.at_us >= w.since_us) and (u is None or c.at_us < w.until_us)
            ]
            written = await history.replace(keep, s, u)
        finally:
            await history.close()
        return {
            "events_read": result.read,
            "events_applied": result.applied,
            "events_rejected": result.rejected,
            "history_rows_written": written,
            "assets": len(result.engine.asset_ids()),
            "errors": result.errors,
        }

    summary = _run(go())
    if as_json:
        sys.stdout.write(jsonsafe.dumps(summary, default=None, compact=False) + "\n")
    else:
        _out.print(
            f"read {summary['events_read']} events, applied {summary['events_applied']}, rejected "
            f"{summary['events_rejected']}; {summary['history_rows_written']} history rows written for "
            f"{summary['assets']} assets"
        )
        for msg in summary["errors"][:5]:
            _err.print(f"  {msg}", highlight=False, soft_wrap=True)


def _load(config: Path | None, db: str | None) -> Settings:
    try:
        return load_settings(config, db=db)
    except PyWatsEventsError as exc:
        raise _fail(str(exc)) from None
