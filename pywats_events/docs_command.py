"""``pywats-events docs``: write the API documents of a configuration.

``docs asyncapi`` writes the AsyncAPI 3.0 document of the configured broker channels (AMQP, MQTT, NATS;
``pywats_events.asyncapi``); ``docs openapi`` the OpenAPI document the HTTP server serves at
``/openapi.json`` (``pywats_events.http.openapi``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape

from .config import load_settings
from .errors import ConfigError, PyWatsEventsError

__all__ = ["docs_app"]

docs_app = typer.Typer(
    help="API documents: AsyncAPI of the broker channels, OpenAPI of the HTTP API.", no_args_is_help=True
)

_err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="Configuration file (TOML or YAML).", show_default=False)
]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of standard output.", show_default=False),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="json or yaml.")]


def _write(doc: dict[str, Any], output: Path | None, fmt: str) -> None:
    if fmt not in ("json", "yaml"):
        raise ConfigError(f"--format must be json or yaml, got {fmt!r}")
    if fmt == "json":
        text = json.dumps(doc, indent=2) + "\n"
    else:
        text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _fail(exc: Exception) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


@docs_app.command("asyncapi")
def asyncapi(config: ConfigOpt = None, output: OutputOpt = None, fmt: FormatOpt = "json") -> None:
    """The AsyncAPI 3.0 document of the configured AMQP (CFX), MQTT and NATS channels.

    Exits 2 with the reason on an invalid configuration.
    """
    from .asyncapi import build_asyncapi

    try:
        doc = build_asyncapi(load_settings(config))
        _write(doc, output, fmt)
    except (PyWatsEventsError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    if "Not described" in doc["info"]["description"]:
        _err.print(escape(doc["info"]["description"].partition(" Not described")[2].strip()), highlight=False)


@docs_app.command("openapi")
def openapi(config: ConfigOpt = None, output: OutputOpt = None, fmt: FormatOpt = "json") -> None:
    """The OpenAPI document of the HTTP API for the configuration's ``[http]`` settings (as served at
    ``/openapi.json``). Exits 2 with the reason on an invalid configuration."""
    try:
        from .http.openapi import build_openapi
        from .http.settings import HTTPSettings

        settings = load_settings(config)
        _write(build_openapi(HTTPSettings.from_config(settings.http)), output, fmt)
    except (PyWatsEventsError, ValueError, OSError, ImportError) as exc:
        raise _fail(exc) from None
