"""The ``pywats-events`` command line (typer + rich).

``run`` is the long-running service; ``ingest`` processes files once; ``events`` and ``dlq`` inspect and
manage the store. Every listing takes ``--json`` (one JSON document on stdout). Errors print one line on
stderr and exit with status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .admin import Admin
from .bus import STOP_GRACE
from .config import Settings, build_bus, build_transport, load_settings
from .errors import ConfigError, PyWatsEventsError
from .schema_cli import schema_command
from .transports.file import FileOutcome, FileSettings, FileTransport, find_inputs

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="pywats-events",
    help="pyWATS events: route factory and lab events (IPC-CFX, MQTT, webhooks, drop folders) to handlers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Stored events: list, acknowledge, purge.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queue: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.command("schema")(schema_command)

out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Configuration file (TOML or YAML).", show_default=False)
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Store: file path or URL (sqlite:///events.db, postgresql://...). Env: PYWATS_EVENTS_DB.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _fail(message: str) -> typer.Exit:
    # The message may hold brackets ("[http.routes.events]"): print it as text, not as rich markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _settings(config: Path | None, db: str | None) -> Settings:
    try:
        return load_settings(config, db=db)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    async def runner() -> T:
        return await coro_factory()

    try:
        return asyncio.run(runner())
    except (PyWatsEventsError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise _fail(str(msg)) from None


def _existing_store(url: str) -> None:
    """Refuse to inspect a SQLite store that does not exist: opening it would create an empty one, and
    the listing would say "nothing" about a store the user never meant (wrong folder, missing --config).

    Raises:
        ConfigError: the SQLite file is missing.
    """
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ConfigError(
            f"no store at {url}: nothing was ingested there; give the --config or --db the service or "
            "ingest used (or PYWATS_EVENTS_DB)"
        )


async def _with_store(settings: Settings, action: Callable[[Admin], Awaitable[T]]) -> T:
    bus = build_bus(settings, with_transports=False)
    _existing_store(bus.store.url)
    await bus.store.open()
    try:
        return await action(Admin(bus))
    finally:
        await bus.store.close()


async def _with_bus(settings: Settings, action: Callable[[Admin], Awaitable[T]]) -> T:
    bus = build_bus(settings, with_transports=False)
    # Transports are built (not started) for the decoders they register: replaying raw input from an MQTT
    # topic decodes it through that transport's current mapping rules.
    for i, cfg in enumerate(settings.transports):
        build_transport(cfg, i, base_dir=settings.config_dir)
    _existing_store(bus.store.url)
    await bus.start()
    try:
        return await action(Admin(bus))
    finally:
        await bus.stop()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=str, indent=None) + "\n")


# -- run ------------------------------------------------------------------------------------------
#: Exit status of ``run --exit-on-connect-failure`` when a transport could not connect.
EXIT_CONNECT_FAILURE = 3


@app.command()
def run(
    config: ConfigOpt = None,
    db: DbOpt = None,
    exit_on_connect_failure: Annotated[
        bool,
        typer.Option(
            "--exit-on-connect-failure",
            help="Exit with status 3 when a transport (broker) cannot connect, at start-up or later, instead of "
            "retrying forever: for supervisors (systemd Restart=, Kubernetes) that restart and alert.",
        ),
    ] = False,
    connect_grace: Annotated[
        float,
        typer.Option(
            "--connect-grace",
            metavar="SECONDS",
            min=0,
            help="With --exit-on-connect-failure: exit only once a transport has been without its connection "
            "this long (0: at the first failed attempt).",
        ),
    ] = 0.0,
) -> None:
    """Run the service until SIGINT or SIGTERM: transports, handlers and (if enabled) the HTTP server.

    With no configuration: drop folder ./inbox, SQLite store ./pywats-events.db, the event-store handler,
    HTTP on 127.0.0.1:8080.
    """
    settings = _settings(config, db)
    _setup_logging(settings.log_level)
    grace = connect_grace if exit_on_connect_failure else None
    if _run(lambda: _serve(settings, grace)):
        raise typer.Exit(EXIT_CONNECT_FAILURE)


async def _watch_connections(bus: Any, grace: float, stop: asyncio.Event) -> bool:
    """Set ``stop`` and return True once a transport has failed to connect (``grace`` 0) or been without its
    connection for ``grace`` seconds; polls every 0.1 s (a state lasting less is no outage)."""
    from .transports.base import TransportState

    log = logging.getLogger("pywats_events")
    since: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        now = loop.time()
        for t in bus.transports.values():
            if t.state is TransportState.CONNECTED:
                since.pop(t.name, None)
                continue
            start = since.setdefault(t.name, now)
            failed = t.state in (TransportState.RECONNECTING, TransportState.ERROR)
            if (grace == 0 and failed) or (grace > 0 and now - start >= grace):
                log.error(
                    "transport %s is %s (%s); exiting with status %d (--exit-on-connect-failure)",
                    t.name,
                    t.state.value,
                    t.last_error or getattr(t, "state_detail", None) or "not connected",
                    EXIT_CONNECT_FAILURE,
                )
                stop.set()
                return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)
    return False


async def _serve(settings: Settings, connect_grace: float | None = None) -> bool:
    log = logging.getLogger("pywats_events")
    bus = build_bus(settings)
    server = None
    # The HTTP settings themselves decide (PYWATS_HTTP_ENABLED=false wins over the file, as every key);
    # they need only pydantic, so the check works without the http extra installed.
    from .http.settings import HTTPSettings

    http_settings = HTTPSettings.from_config(settings.http)
    if http_settings.enabled:
        try:
            from .http.server import Server
        except ImportError as exc:
            raise ConfigError(
                f"HTTP is enabled but its libraries are missing ({exc}); "
                "pip install 'pywats-events[http]' or set [http] enabled = false"
            ) from None
        server = Server(bus, http_settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            # Nothing is acknowledged before it is settled, so leaving now loses nothing.
            log.warning(
                "%s again: exiting now without draining; unsettled messages are redelivered by their brokers, "
                "files stay in the drop folder",
                sig.name,
            )
            logging.shutdown()
            os._exit(128 + sig.value)
        log.info(
            "stopping (%s received): draining for up to %.1fs; send it again to exit at once",
            sig.name,
            settings.bus.drain_timeout,
        )
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)
    await bus.start()
    try:
        if server is not None:
            await server.start()
            log.info("HTTP on http://%s:%s", server.settings.host, server.port)
        log.info(
            "pyWATS events running: store %s, transports %s, handlers %s",
            bus.store.url,
            ", ".join(f"{t.name} ({t.kind})" for t in bus.transports.values()) or "none",
            ", ".join(s.name for s in bus.registry) or "none",
        )
        watch = None if connect_grace is None else asyncio.create_task(_watch_connections(bus, connect_grace, stop))
        await stop.wait()
        failed = watch is not None and await watch
    finally:
        # The HTTP server and the bus stop together: open requests wait for the bus, which honours its
        # drain timeout; the bound below holds even if a part ignores its own.
        stopping = [asyncio.ensure_future(bus.stop())]
        if server is not None:
            stopping.append(asyncio.ensure_future(server.stop()))
        limit = settings.bus.drain_timeout + 3 * STOP_GRACE
        _, pending = await asyncio.wait(stopping, timeout=limit + STOP_GRACE)
        if pending:
            log.warning("stop: not finished within %.1fs; exiting anyway", limit + STOP_GRACE)
            for task in pending:
                task.cancel()
    log.info("stopped")
    return failed


# -- ingest ---------------------------------------------------------------------------------------
@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files, or folders searched for *.json, *.json.gz, *.jsonl.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    decoder: Annotated[str, typer.Option(help="Decoder: auto, cfx or event-json.")] = "auto",
) -> None:
    """Decode and route files once (they stay where they are). Exit 0 when every input is settled:
    handled, or stored in the dead-letter queue."""
    settings = _settings(config, db)
    _setup_logging("ERROR")  # the summary names every failure; warnings would repeat them
    try:
        files = find_inputs(paths)
    except FileNotFoundError as exc:
        raise _fail(str(exc)) from None
    summary = _run(lambda: _ingest(settings, files, as_json, decoder))
    if as_json:
        _print_json(summary)
    else:
        table = Table(title="pywats-events ingest")
        table.add_column("", style="bold")
        table.add_column("count", justify="right")
        for key in (
            "files",
            "events",
            "handled",
            "dead_lettered",
            "failed_files",
            "skipped",
            "unrouted",
            "not_settled",
        ):
            table.add_row(key.replace("_", " "), str(summary[key]))
        out.print(table)
        for f in summary["failures"]:
            where = f"{f['file']}:line {f['line']}" if "line" in f else f["file"]
            out.print(f"[yellow]dead-lettered[/] {where}: {f['reason']}", highlight=False)
        where = _store_options(config, db)
        out.print(
            f"store: {summary['store']}  (see: pywats-events dlq list{where}, pywats-events events list{where})",
            highlight=False,
            soft_wrap=True,
        )
    if summary["not_settled"]:
        raise typer.Exit(1)


def _store_options(config: Path | None, db: str | None) -> str:
    """The ``--config``/``--db`` options that make a follow-up command read the same store (shell-quoted,
    with a leading space; empty when the defaults apply)."""
    parts = []
    if config is not None:
        parts += ["--config", shlex.quote(str(config))]
    if db is not None:
        parts += ["--db", shlex.quote(db)]
    return "".join(" " + p for p in parts)


async def _ingest(settings: Settings, files: list[Path], quiet: bool, decoder: str) -> dict[str, Any]:
    bus = build_bus(settings, with_transports=False)
    transport = FileTransport(FileSettings(decoder=decoder, move_files=False), name="ingest")
    transport.bind(bus)
    totals = {"files": len(files), "events": 0, "handled": 0, "dead_lettered": 0, "failed_files": 0}
    totals.update(skipped=0, unrouted=0, not_settled=0)
    failures: list[dict[str, Any]] = []

    def account(outcome: FileOutcome) -> None:
        r = outcome.result
        totals["events"] += r.events
        totals["handled"] += r.handled
        totals["dead_lettered"] += r.dead_lettered
        totals["skipped"] += r.skipped
        totals["unrouted"] += r.unrouted
        if outcome.status == "failed":
            totals["failed_files"] += 1
        elif outcome.status == "error":
            totals["not_settled"] += 1
        if outcome.bad_lines:  # JSON Lines: one failure per dead-lettered line
            failures.extend(
                {"file": str(outcome.path), "line": b.number, "reason": b.reason} for b in outcome.bad_lines
            )
        elif outcome.status in ("failed", "error"):
            failures.append({"file": str(outcome.path), "reason": outcome.reason})

    async with bus:
        if quiet:
            await transport.ingest(files, on_file=account)
        else:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("ingesting", total=len(files))

                def step(outcome: FileOutcome) -> None:
                    account(outcome)
                    progress.advance(task)

                await transport.ingest(files, on_file=step)
    return {**totals, "failures": failures, "store": bus.store.url}


# -- events ---------------------------------------------------------------------------------------
def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@events_app.command("list")
def events_list(
    type_pattern: Annotated[str | None, typer.Option("--type", "-t", help="Type pattern, e.g. 'asset.*'.")] = None,
    category: Annotated[str | None, typer.Option(help="Category, e.g. 'test'.")] = None,
    min_severity: Annotated[str | None, typer.Option("--min-severity", help="info|warning|error|critical")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 start (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end (exclusive).")] = None,
    source: Annotated[str | None, typer.Option(help="Exact source.")] = None,
    unacked: Annotated[bool, typer.Option("--unacked", help="Only unacknowledged events.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored events, oldest first."""
    settings = _settings(config, db)
    rows = _run(
        lambda: _with_store(
            settings,
            lambda a: a.query_events(
                type_pattern,
                category,
                min_severity,
                _when(since),
                _when(until),
                source,
                False if unacked else None,
                limit,
                offset,
            ),
        )
    )
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"events ({len(rows)})")
    for col in ("timestamp", "type", "severity", "source", "id", "acked"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["timestamp"], r["type"], r["severity"], r["source"], r["id"], "yes" if r["acknowledged_at"] else ""
        )
    out.print(table)


@events_app.command("ack")
def events_ack(
    ids: Annotated[list[str], typer.Argument(help="Event ids.")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges (operator name).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge stored events."""
    settings = _settings(config, db)
    n = _run(lambda: _with_store(settings, lambda a: a.acknowledge_events(ids, by)))
    _print_json({"acknowledged": n}) if as_json else out.print(f"acknowledged {n} event(s)")


@events_app.command("purge")
def events_purge(
    older_than_days: Annotated[
        float | None, typer.Option("--older-than-days", help="Delete events older than N days.")
    ] = None,
    keep: Annotated[int | None, typer.Option("--keep", help="Keep at most N newest events.")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete old stored events (and old idempotency records)."""
    settings = _settings(config, db)
    n = _run(lambda: _with_store(settings, lambda a: a.purge_events(older_than_days, keep)))
    _print_json({"deleted": n}) if as_json else out.print(f"deleted {n} event(s)")


# -- dlq ------------------------------------------------------------------------------------------
HandlerOpt = Annotated[str | None, typer.Option("--handler", help="Only entries of this handler.")]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="failed|unrecoverable|circuit_open|decode_error|unrouted|timeout")
]


@dlq_app.command("list")
def dlq_list(
    handler: HandlerOpt = None,
    reason: ReasonOpt = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    offset: Annotated[int, typer.Option(help="Skip this many.")] = 0,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead-letter entries, oldest first."""
    settings = _settings(config, db)
    rows = _run(lambda: _with_store(settings, lambda a: a.list_dead_letters(handler, reason, limit, offset)))
    if as_json:
        _print_json(rows)
        return
    table = Table(title=f"dead letters ({len(rows)})")
    for col in ("id", "reason", "handler", "what", "error", "attempts", "last failure"):
        table.add_column(col, overflow="fold")
    for r in rows:
        what = r["event"]["type"] if r["event"] else r["origin"]
        error = f"{r['error_type']}: {r['error_message']}"
        table.add_row(r["id"], r["reason"], r["handler"] or "-", what, error, str(r["attempts"]), r["last_failure_at"])
    out.print(table)


@dlq_app.command("show")
def dlq_show(
    entry_id: Annotated[str, typer.Argument(help="Entry id.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one dead-letter entry with its event or raw body and traceback."""
    settings = _settings(config, db)
    entry = _run(lambda: _with_store(settings, lambda a: a.show_dead_letter(entry_id)))
    if as_json:
        _print_json(entry)
        return
    for key, value in entry.items():
        if key in ("event", "headers"):
            value = json.dumps(value, indent=2, default=str)
        out.print(f"[bold]{key}[/]: {value}", highlight=False)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Entry ids (none: use the filters).")] = None,
    handler: HandlerOpt = None,
    reason: ReasonOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Replay every entry.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay entries to the handler that failed (configured handlers are loaded) or re-decode raw input."""
    if not ids and handler is None and reason is None and not everything:
        raise _fail("give entry ids, --handler, --reason, or --all")
    settings = _settings(config, db)
    _setup_logging("WARNING")
    report = _run(lambda: _with_bus(settings, lambda a: a.replay_dead_letters(ids or None, handler, reason)))
    if as_json:
        _print_json(report)
    else:
        out.print(f"replayed {report['replayed']}: {report['succeeded']} succeeded, {report['failed']} failed again")
    if report["failed"]:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    ids: Annotated[list[str] | None, typer.Argument(help="Entry ids (none: use the filters).")] = None,
    handler: HandlerOpt = None,
    reason: ReasonOpt = None,
    everything: Annotated[bool, typer.Option("--all", help="Delete every entry.")] = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete dead-letter entries."""
    if not ids and handler is None and reason is None and not everything:
        raise _fail("give entry ids, --handler, --reason, or --all")
    settings = _settings(config, db)
    n = _run(lambda: _with_store(settings, lambda a: a.purge_dead_letters(ids or None, handler, reason, everything)))
    _print_json({"deleted": n}) if as_json else out.print(f"deleted {n} entr{'y' if n == 1 else 'ies'}")


# -- plugins --------------------------------------------------------------------------------------
@app.command("plugins")
def plugins(as_json: JsonOpt = False) -> None:
    """List the installed transports, decoders and handlers (entry points), with the extra each needs and
    whether it can be imported here."""
    from .plugins import describe_plugins

    found = describe_plugins()
    if as_json:
        _print_json(found)
        return
    for what, rows in found.items():
        table = Table(title=what)
        for col in ("kind", "from", "extra", "status"):
            table.add_column(col, overflow="fold")
        for r in rows:
            status = r.get("error") or ("ok, settings: " + ", ".join(r["settings"]) if r.get("settings") else "ok")
            table.add_row(r["name"], f"{r['value']} ({r['distribution']})", ",".join(r["extras"]) or "-", status)
        out.print(table)


def main() -> None:
    """Entry point of the ``pywats-events`` console script."""
    app()
