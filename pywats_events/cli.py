"""The ``pywats-events`` command line (typer + rich).

``run`` is the long-running service; ``ingest`` processes files once; ``events`` and ``dlq`` inspect and
manage the store (listings newest first, one line per entry at the terminal width; ids or unique id
prefixes); ``config check``, ``mqtt try`` and ``publish`` are for commissioning (logic in
``pywats_events.commissioning``). Every listing takes ``--json`` (one JSON document on stdout). Errors print
one line on stderr and exit with status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import jsonsafe, tracing
from ._version import __version__
from .admin import Admin
from .analytics.cli import analytics_app
from .bus import STOP_GRACE
from .config import LOG_LEVELS, Settings, build_bus, build_transport, load_settings
from .docs_command import docs_app
from .errors import ConfigError, PyWatsEventsError
from .event import severity_rank
from .id_prefix import resolve_ids, short_ids
from .logging_setup import LOG_FORMATS, setup_logging
from .paging import Page
from .pattern import validate_type_pattern
from .reload import ConfigReloader
from .runtime import install_signal_handlers, loop_factory
from .schema_cli import schema_command
from .store import EventQuery
from .transports.file import FileOutcome, FileSettings, FileTransport, find_inputs

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(
    name="pywats-events",
    help="pyWATS events: route factory and lab events (IPC-CFX, MQTT, webhooks, drop folders) to handlers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Stored events: list, acknowledge, purge.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead-letter queue: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(analytics_app, name="analytics")
config_app = typer.Typer(help="Configuration: check it as run would use it.", no_args_is_help=True)
mqtt_app = typer.Typer(help="MQTT mapping rules: try a topic and payload.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(mqtt_app, name="mqtt")
app.add_typer(docs_app, name="docs")
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
OldestFirstOpt = Annotated[bool, typer.Option("--oldest-first", help="Oldest first instead of newest first.")]


def _fail(message: str) -> typer.Exit:
    # The message may hold brackets ("[http.routes.events]"): print it as text, not as rich markup.
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


class _GlobalOptions:
    """The global options given before the command (``--log-level``, ``--log-format``)."""

    log_level: str | None = None
    log_format: Literal["text", "json"] = "text"


def _setup_logging(level: str) -> None:
    """Log at ``level`` (the command's default, or the configuration's), unless ``--log-level`` was given."""
    setup_logging(_GlobalOptions.log_level or level, _GlobalOptions.log_format)


def _setup_tracing() -> None:
    """OpenTelemetry tracing when the environment configures it (``tracing.configure_from_environment``)."""
    try:
        if tracing.configure_from_environment():
            logging.getLogger("pywats_events").info("OpenTelemetry tracing on")
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def schema_heads() -> str:
    """The newest schema revisions this installation knows (Alembic heads, ``branch@revision`` for each
    branch: ``pywats_events@0001`` plus any plug-in's), as ``--version`` prints them; or why they are
    unknown (a broken migrations plug-in)."""
    try:
        from .migrations import script_directory

        script = script_directory()
        heads = []
        for rev in sorted(script.get_heads()):
            labels = sorted(script.get_revision(rev).branch_labels or ())
            heads.append(f"{labels[0]}@{rev}" if labels else rev)
        return ", ".join(heads) or "none"
    except Exception as exc:  # a plug-in's migrations that do not import: say so, still print the version
        return f"unknown ({exc})"


def _version(value: bool) -> None:
    if value:
        out.print(f"pywats-events {__version__}", highlight=False)
        out.print(f"schema {schema_heads()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="DEBUG, INFO, WARNING, ERROR or CRITICAL; wins over the configuration's log_level and each "
            "command's default.",
            show_default=False,
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", help="text, or json: one JSON object per log line (time, level, logger, message, fields)."
        ),
    ] = "text",
) -> None:
    """pyWATS events: route factory and lab events (IPC-CFX, MQTT, webhooks, drop folders) to handlers."""
    if log_level is not None and log_level.upper() not in LOG_LEVELS:
        raise _fail(f"--log-level: unknown level {log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    if log_format not in LOG_FORMATS:
        raise _fail(f"--log-format: unknown format {log_format!r}; use one of {', '.join(LOG_FORMATS)}")
    _GlobalOptions.log_level = log_level.upper() if log_level else None
    _GlobalOptions.log_format = "json" if log_format == "json" else "text"
    if log_level is not None:
        setup_logging(log_level, _GlobalOptions.log_format)


def _settings(config: Path | None, db: str | None) -> Settings:
    try:
        return load_settings(config, db=db)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


def _run(
    coro_factory: Callable[[], Awaitable[T]], loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
) -> T:
    async def runner() -> T:
        return await coro_factory()

    try:
        with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
            return loop_runner.run(runner())
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
    sys.stdout.write(jsonsafe.dumps(data, compact=False) + "\n")


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
    SIGHUP reloads the configuration (log level, retry/breaker policies, handler timeouts, transport
    options a transport can swap; the rest is logged as needing a restart).

    With no configuration: drop folder ./inbox, SQLite store ./pywats-events.db, the event-store handler,
    HTTP on 127.0.0.1:8080.
    """
    settings = _settings(config, db)
    _setup_logging(settings.log_level)
    _setup_tracing()
    grace = connect_grace if exit_on_connect_failure else None
    # Windows: an MQTT transport needs a selector loop (runtime.loop_factory); elsewhere the default loop.
    factory = loop_factory(t.kind for t in settings.transports)
    if _run(lambda: _serve(settings, grace, config_path=config, db=db), loop_factory=factory):
        raise typer.Exit(EXIT_CONNECT_FAILURE)


async def _watch_connections(bus: Any, grace: float, stop: asyncio.Event) -> bool:
    """Set ``stop`` and return True once a transport has failed to connect (``grace`` 0) or been without its
    connection for ``grace`` seconds; polls every 0.1 s (a state lasting less is no outage)."""
    from .transport import TransportState

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


async def _serve(
    settings: Settings, connect_grace: float | None = None, *, config_path: Path | None = None, db: str | None = None
) -> bool:
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
    reloader = ConfigReloader(bus, settings, config_path, db, log_level_pinned=_GlobalOptions.log_level is not None)
    reloading: set[asyncio.Task[Any]] = set()
    reload_lock = asyncio.Lock()

    async def reload_once() -> None:
        async with reload_lock:  # two SIGHUPs in a row: the second reads the file after the first applied
            await reloader.reload()

    def on_reload() -> None:
        if stop.is_set():
            return
        task = loop.create_task(reload_once())
        reloading.add(task)
        task.add_done_callback(reloading.discard)

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
            bus.drain_timeout,
        )
        stop.set()

    remove_signal_handlers = install_signal_handlers(loop, on_signal, on_reload)
    try:
        return await _serve_until_stopped(bus, server, stop, connect_grace, log)
    finally:
        remove_signal_handlers()


async def _serve_until_stopped(
    bus: Any, server: Any, stop: asyncio.Event, connect_grace: float | None, log: logging.Logger
) -> bool:
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
        limit = bus.drain_timeout + 3 * STOP_GRACE
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


async def _dead_letter_ids(a: Admin, ids: list[str] | None) -> list[str] | None:
    """Full ids for the entry ids or prefixes given (``None`` when none: the filters select).

    Raises:
        UnknownIdError / AmbiguousIdError: an id names no entry, or a prefix several.
    """
    if not ids:
        return None
    return await resolve_ids(ids, a.bus.store.dead_letter_ids_with_prefix, "dead-letter entry")


def _line_table(*columns: tuple[str, int | None]) -> Table:
    """A borderless table whose rows stay one line each at the console width: fixed columns keep their
    width (characters), the others (width ``None``) share the rest equally and are cut with an ellipsis."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    fixed = sum(w for _, w in columns if w is not None)
    flexible = sum(1 for _, w in columns if w is None)
    gaps = 2 * (len(columns) - 1)  # one space of padding either side of every inner column edge
    share = max(8, (out.width - fixed - gaps) // max(flexible, 1))
    for name, width in columns:
        w = share if width is None else width
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=w, min_width=w, max_width=w)
    return table


def _short_time(iso: str) -> str:
    """``2026-12-03T13:11:12.123+00:00`` as ``2026-12-03 13:11:12`` (UTC, seconds)."""
    t = datetime.fromisoformat(iso).astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


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
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="Exact correlation id (CFX TransactionID).")
    ] = None,
    unacked: Annotated[bool, typer.Option("--unacked", help="Only unacknowledged events.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=100_000)] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (from the newest).", min=0)] = 0,
    oldest_first: OldestFirstOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored events, newest first, one line each (full ids and payloads: --json)."""
    settings = _settings(config, db)
    since_t, until_t = _when(since), _when(until)

    async def listing(a: Admin) -> tuple[Page, list[dict[str, Any]]]:
        q = EventQuery(
            type_pattern=type_pattern,
            category=category,
            min_severity=min_severity,
            since=since_t,
            until=until_t,
            source=source,
            acknowledged=False if unacked else None,
            correlation_id=correlation_id,
        )
        if type_pattern is not None:
            validate_type_pattern(type_pattern)
        if min_severity is not None:
            severity_rank(min_severity)
        page = Page(await a.bus.store.count_events(q), limit, offset, newest_first=not oldest_first)
        start, n = page.store_window()
        if n == 0:
            return page, []
        rows = await a.query_events(
            type_pattern, category, min_severity, since_t, until_t, source, q.acknowledged, n, start,
            correlation_id=correlation_id,
        )
        return page, rows[::-1] if page.newest_first else rows

    page, rows = _run(lambda: _with_store(settings, listing))
    if as_json:
        _print_json(rows)
        return
    width = short_ids([r["id"] for r in rows])
    table = _line_table(("id", width), ("time", 19), ("sev", 4), ("type", None), ("source", None), ("ack", 3))
    for r in rows:
        table.add_row(
            r["id"][:width],
            _short_time(r["timestamp"]),
            r["severity"][:4],
            r["type"],
            r["source"],
            "yes" if r["acknowledged_at"] else "",
        )
    if rows:
        out.print(table)
    out.print(page.more_hint(len(rows)), highlight=False)


@events_app.command("ack")
def events_ack(
    ids: Annotated[list[str], typer.Argument(help="Event ids or unique id prefixes (at least 4 characters).")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges (operator name).")] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge stored events. Every id must name a stored event (exit 2 otherwise; nothing changes)."""
    settings = _settings(config, db)

    async def ack(a: Admin) -> int:
        full = await resolve_ids(ids, a.bus.store.event_ids_with_prefix, "stored event")
        return await a.acknowledge_events(full, by)

    n = _run(lambda: _with_store(settings, ack))
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
    limit: Annotated[int, typer.Option(help="At most this many.", min=1, max=100_000)] = 50,
    offset: Annotated[int, typer.Option(help="Skip this many (from the newest).", min=0)] = 0,
    oldest_first: OldestFirstOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead-letter entries, newest first, one line each; `dlq show ID` for one in full."""
    settings = _settings(config, db)

    async def listing(a: Admin) -> tuple[Page, list[dict[str, Any]]]:
        page = Page(await a.count_dead_letters(handler, reason), limit, offset, newest_first=not oldest_first)
        start, n = page.store_window()
        rows = await a.list_dead_letters(handler, reason, n, start) if n else []
        return page, rows[::-1] if page.newest_first else rows

    page, rows = _run(lambda: _with_store(settings, listing))
    if as_json:
        _print_json(rows)
        return
    width = short_ids([r["id"] for r in rows])
    table = _line_table(("id", width), ("reason", 12), ("handler", 12), ("what", 20), ("error", None))
    for r in rows:
        # Raw input has no event: its origin's last part (the file name, the routing key) tells it apart.
        what = r["event"]["type"] if r["event"] else r["origin"].rstrip("/").rpartition("/")[2] or r["origin"]
        # The message says what is wrong; the class name only when there is no message (`show` has both).
        error = _first_line(r["error_message"]) or r["error_type"]
        table.add_row(r["id"][:width], r["reason"], r["handler"] or "-", what, error)
    if rows:
        out.print(table)
    out.print(page.more_hint(len(rows)), highlight=False)


@dlq_app.command("show")
def dlq_show(
    entry_id: Annotated[str, typer.Argument(help="Entry id or a unique id prefix (at least 4 characters).")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one dead-letter entry with its event or raw body and traceback."""
    settings = _settings(config, db)

    async def show(a: Admin) -> dict[str, Any]:
        (full,) = await resolve_ids([entry_id], a.bus.store.dead_letter_ids_with_prefix, "dead-letter entry")
        return await a.show_dead_letter(full)

    entry = _run(lambda: _with_store(settings, show))
    if as_json:
        _print_json(entry)
        return
    for key, value in entry.items():
        if key in ("event", "headers"):
            value = jsonsafe.dumps(value, indent=2)
        out.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)


@dlq_app.command("replay")
def dlq_replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Entry ids or id prefixes (none: use the filters).")] = None,
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

    async def replay(a: Admin) -> dict[str, Any]:
        full = await _dead_letter_ids(a, ids)
        return await a.replay_dead_letters(full, handler, reason)

    report = _run(lambda: _with_bus(settings, replay))
    if as_json:
        _print_json(report)
    else:
        out.print(f"replayed {report['replayed']}: {report['succeeded']} succeeded, {report['failed']} failed again")
    if report["failed"]:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    ids: Annotated[list[str] | None, typer.Argument(help="Entry ids or id prefixes (none: use the filters).")] = None,
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

    async def purge(a: Admin) -> int:
        return await a.purge_dead_letters(await _dead_letter_ids(a, ids), handler, reason, everything)

    n = _run(lambda: _with_store(settings, purge))
    _print_json({"deleted": n}) if as_json else out.print(f"deleted {n} entr{'y' if n == 1 else 'ies'}")


# -- commissioning: config check, mqtt try, publish ---------------------------------------------------
@config_app.command("check")
def config_check(
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate everything `run` would (settings, transports, handlers, store, [http] and [http.console])
    and print the resolved configuration without secrets. Exit 2 with the problem on stderr."""
    from .commissioning.check import check_configuration

    _setup_logging("WARNING")
    report = _run(lambda: check_configuration(config, db))
    if as_json:
        _print_json(report)
        return
    out.print(f"configuration {report['config'] or '(embedded default)'}: ok", highlight=False)
    out.print_json(data=report)


@mqtt_app.command("try")
def mqtt_try(
    topic: Annotated[str, typer.Argument(help="MQTT topic name, e.g. stations/fct1/results.")],
    payload: Annotated[str, typer.Argument(help="Message payload (text); '@FILE' reads it from a file.")],
    transport: Annotated[
        str | None, typer.Option("--transport", help="MQTT transport name (when there are several).")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show which mapping rule(s) match TOPIC and the event(s) PAYLOAD becomes; warn when several rules
    match. Exit 1 when no rule matches or the payload gives no event."""
    from .commissioning.mqtt_trial import try_topic

    settings = _settings(config, None)
    if payload.startswith("@"):
        try:
            body = Path(payload[1:]).read_bytes()
        except OSError as exc:
            raise _fail(f"cannot read payload file {payload[1:]}: {exc.strerror or exc}") from None
    else:
        body = payload.encode()
    try:
        trial = try_topic(settings, topic, body, transport)
    except PyWatsEventsError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        _print_json(trial.to_json_dict())
    else:
        for m in trial.matches:
            fields = ", ".join(f"{k}={v}" for k, v in m["fields"].items())
            out.print(
                f"match rules[{m['index']}] {m['filter']} (decoder {m['decoder']}){': ' + fields if fields else ''}",
                highlight=False,
                markup=False,
            )
        for w in trial.warnings:
            err.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False)
        for ev in trial.events:
            out.print_json(data=ev)
        if trial.error:
            err.print(f"[bold red]no event:[/] {escape(trial.error)}", highlight=False)
    if trial.error:
        raise typer.Exit(1)


@app.command("publish")
def publish(
    file: Annotated[
        Path | None, typer.Argument(help="JSON file: an event (or list) or a CFX envelope (or batch).")
    ] = None,
    to: Annotated[
        str,
        typer.Option("--to", help="A [[transports]] name (cfx, mqtt or nats kind), or 'http' for POST /events|/cfx."),
    ] = "",
    sample: Annotated[
        str | None, typer.Option("--sample", help="Generate a CFX envelope: units-tested, fault, state-changed...")
    ] = None,
    seq: Annotated[int, typer.Option("--seq", min=0, help="Generated envelope's sequence number.")] = 0,
    source: Annotated[str | None, typer.Option("--source", help="Generated envelope's Source (handle).")] = None,
    topic: Annotated[
        str | None,
        typer.Option("--topic", help="MQTT topic, AMQP routing key or NATS subject (default from the settings)."),
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test message to a configured transport or the HTTP intake, without starting a consumer;
    waits for the broker's confirm (AMQP), PUBACK (MQTT QoS 1), PubAck (NATS JetStream) or the HTTP answer."""
    from .commissioning.publish import load_message, publish_message

    if not to:
        raise _fail("--to: give the transport name from the configuration (or 'http')")
    settings = _settings(config, None)
    _setup_logging("WARNING")
    _setup_tracing()
    try:
        message = load_message(file, sample, seq=seq, source=source)
    except PyWatsEventsError as exc:
        raise _fail(str(exc)) from None
    factory = loop_factory(t.kind for t in settings.transports if (t.name or t.kind) == to)
    report = _run(lambda: publish_message(settings, to, message, topic=topic), loop_factory=factory)
    if as_json:
        _print_json(report)
    else:
        dest = report["destination"]
        what = ", ".join(report.get("routing_keys") or report.get("topics") or report.get("subjects") or [])
        traces = [t for t in (report.get("trace_ids") or [report.get("trace_id")]) if t]
        trace = f" (trace {', '.join(traces)})" if traces else ""
        out.print(
            f"published {message.kind} {report['name']} to {to}: {dest}{' ' + what if what else ''}{trace}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


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


def add_plugin_commands() -> list[str]:
    """Mount every installed command plug-in (entry-point group ``pywats_events.commands``, a typer app
    each) as a sub-command; returns their names. One whose extra is not installed is left out (it is
    listed by ``pywats-events plugins`` with the reason)."""
    from .plugins import COMMAND_GROUP, available, load_plugin

    mounted = []
    for name in sorted(available(COMMAND_GROUP)):
        if any(group.name == name for group in app.registered_groups):
            continue
        try:
            sub = load_plugin(COMMAND_GROUP, name)
        except PyWatsEventsError as exc:
            logging.getLogger(__name__).debug("command plug-in %r not mounted: %s", name, exc)
            continue
        app.add_typer(sub, name=name)
        mounted.append(name)
    return mounted


def main() -> None:
    """Entry point of the ``pywats-events`` console script."""
    add_plugin_commands()
    app()


app.add_typer(__import__("pywats_events.db_cli").db_cli.db_app, name="db")  # schema migrations: db_cli.py
