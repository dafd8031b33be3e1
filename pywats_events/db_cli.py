"""``pywats-events db``: the store's schema version (Alembic migrations, ``pywats_events.migrations``).

``db current`` shows the revision the database records and whether this version needs to upgrade it;
``db upgrade`` runs the missing revisions under the schema lock (the service's ``run`` does the same at
start-up, so this is for upgrading before the service starts, or for a database shared by several
hosts); ``db downgrade REVISION`` takes it back before installing an older pywats-events.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from . import jsonsafe
from .config import load_settings
from .errors import ConfigError, PyWatsEventsError
from .sql_store import SQLStore, open_store

__all__ = ["db_app"]

T = TypeVar("T")

db_app = typer.Typer(
    help="Store schema (migrations): current, upgrade, downgrade.", no_args_is_help=True, add_completion=False
)

_err = Console(stderr=True)
_out = Console()

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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _store(config: Path | None, db: str | None, *, must_exist: bool) -> SQLStore:
    """The SQL store the configuration names (a memory store has no schema).

    Raises:
        typer.Exit: status 2, the configuration is invalid, the store is ``memory://``, or (``must_exist``)
            the SQLite file is missing.
    """
    try:
        settings = load_settings(config, db=db)
        store = open_store(settings.db)
    except PyWatsEventsError as exc:
        raise _fail(str(exc)) from None
    if not isinstance(store, SQLStore):
        raise _fail(f"the store {store.url} is held in memory: it has no schema to migrate")
    path = store.url.removeprefix("sqlite:///")
    if must_exist and store.url.startswith("sqlite:///") and not Path(path).exists():
        # Reading the version of a file that is not there would create an empty one.
        raise _fail(f"no store at {store.url}: give the --config or --db the service uses (or PYWATS_EVENTS_DB)")
    return store


def _run(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return asyncio.run(action())  # type: ignore[arg-type]
    except (PyWatsEventsError, ConfigError) as exc:
        raise _fail(str(exc)) from None


def _print_json(data: Any) -> None:
    sys.stdout.write(jsonsafe.dumps(data, default=None, compact=False) + "\n")


@db_app.command("current")
def db_current(config: ConfigOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Show the schema revision the store records and the newest this version knows (changes nothing).

    Exit status 0 whether or not an upgrade is due (see "up_to_date"); 2 when the store cannot be read.
    """
    store = _store(config, db, must_exist=True)
    state = _run(store.schema_state)
    if as_json:
        _print_json({"url": store.url, "version": state.version, **state.as_dict()})
    else:
        _out.print(f"{escape(store.url)}: {escape(state.describe())}", highlight=False)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; default every head.")] = "heads",
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upgrade the store's schema (creates the tables of a new store; adopts a 0.1.0 store). A store
    already up to date is left untouched."""
    store = _store(config, db, must_exist=False)
    before, after = _run(lambda: store.migrate_schema(revision))
    if as_json:
        _print_json({"url": store.url, "before": before.as_dict(), "after": after.as_dict()})
    elif before.current == after.current:
        _out.print(f"{escape(store.url)}: {escape(after.describe())}; nothing to do", highlight=False)
    else:
        _out.print(f"{escape(store.url)}: upgraded {before.version or 'none'} -> {after.version}", highlight=False)


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision (e.g. 0001), or 'base' to drop every table.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm 'base': it deletes all stored data.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take the store's schema back to REVISION (before installing an older pywats-events)."""
    if revision == "base" and not yes:
        raise _fail("downgrade to 'base' drops every table with its events and dead letters; add --yes")
    store = _store(config, db, must_exist=True)
    before, after = _run(lambda: store.migrate_schema(revision, down=True))
    if as_json:
        _print_json({"url": store.url, "before": before.as_dict(), "after": after.as_dict()})
    else:
        _out.print(
            f"{escape(store.url)}: downgraded {before.version or 'none'} -> {after.version or 'none'}",
            highlight=False,
        )
