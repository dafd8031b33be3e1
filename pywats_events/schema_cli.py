"""``pywats-events schema``: the JSON Schema of the typed domain event payloads (``pywats_events.domain``).

MQTT, NATS and webhook producers target the same payload contract as the IPC-CFX adapters by validating
against these files. Registered on the main command line in ``pywats_events.cli``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .domain import DOMAIN_EVENTS, domain_event_schema
from .errors import NoPayloadModelError

__all__ = ["schema_command", "schema_file_name", "write_schemas"]


def schema_file_name(event_type: str) -> str:
    """The file name of one event type's schema: ``<event type>.schema.json`` (``test.result.schema.json``)."""
    return f"{event_type}.schema.json"


def write_schemas(out_dir: Path, event_types: list[str] | None = None) -> list[Path]:
    """Write the JSON Schema of each event type's payload to ``out_dir`` (created if missing).

    Args:
        out_dir: the directory; existing files of the same names are replaced.
        event_types: the types to write; None for every type in ``DOMAIN_EVENTS``.

    Returns:
        The files written, in the order of ``event_types`` (sorted by type when None).

    Raises:
        NoPayloadModelError: a type has no payload model (nothing is written then).
        OSError: the directory cannot be created or a file cannot be written.
    """
    types = sorted(DOMAIN_EVENTS) if event_types is None else list(event_types)
    # Every schema is built before the first file is written: an unknown type leaves the folder as it was.
    schemas = [(t, domain_event_schema(t)) for t in types]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, schema in schemas:
        path = out_dir / schema_file_name(event_type)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(path)  # a reader never sees half a schema
        written.append(path)
    return written


def schema_command(
    event_type: Annotated[
        str | None,
        typer.Argument(help="Event type (test.result); all types when omitted.", show_default=False),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write <event type>.schema.json files to this directory.", show_default=False),
    ] = None,
) -> None:
    """Print or write the JSON Schema (draft 2020-12) of typed event payloads, so MQTT and webhook producers
    target the same contract as the CFX adapters.

    Without --out: one type prints its schema, no type prints an object of every schema by event type.
    With --out: one file per type, and the written paths on stdout. An unknown type exits with code 2.
    """
    try:
        if out is not None:
            for path in write_schemas(out, None if event_type is None else [event_type]):
                typer.echo(str(path))
            return
        result: dict[str, Any]
        if event_type is not None:
            result = domain_event_schema(event_type)
        else:
            result = {t: domain_event_schema(t) for t in sorted(DOMAIN_EVENTS)}
    except NoPayloadModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: cannot write schemas to {out}: {exc}", err=True)
        raise typer.Exit(2) from None
    sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
