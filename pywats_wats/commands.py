"""WATS commands: ``preview`` (the reports the handler would post), ``check`` (does the server answer, is the
token accepted, do the process codes exist), ``fake-server`` (the validating fake on a port).

Run as ``python -m pywats_wats preview samples/cfx --config samples/wats/pywats-events.toml --json``. The
typer ``app`` is also meant to be mounted as ``pywats-events wats ...``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pywats_events import jsonsafe
from pywats_events.codec import DecodeContext, get_decoder
from pywats_events.config import load_settings
from pywats_events.errors import ConfigError, DecodeError
from pywats_events.transports.file import find_inputs

from .builder import ReportBuilder
from .client import WatsClient
from .errors import ReportBuildError, WatsAuthError, WatsConfigError, WatsError, WatsRejectedError, WatsUnavailableError
from .settings import AssetSettings, ClientSettings, ProductionSettings, ReportSettings, parse_settings

__all__ = ["app", "main", "preview_reports"]

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="WATS: preview reports, check the server, fake server."
)

#: Product fields used by ``preview`` without ``--config``, so that the report's shape can be seen at once.
PREVIEW_DEFAULTS: dict[str, Any] = {
    "base_url": "http://wats.invalid",
    "token": "preview",
    "part_number": "UNCONFIGURED",
    "revision": "-",
    "process_code": 0,
    "location": "-",
    "purpose": "-",
}

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Service configuration (TOML or YAML).")]


def _handler_options(config: Path, kinds: tuple[str, ...]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(kind, name, options)`` of the configuration's WATS handlers of ``kinds``.

    Raises:
        ConfigError: the file is unreadable or invalid.
    """
    settings = load_settings(config)
    return [(h.kind, h.name or h.kind, h.options()) for h in settings.handlers if h.kind in kinds]


def report_settings(config: Path | None) -> ReportSettings:
    """The ``wats-report`` settings of ``config`` (the first such handler), or the preview defaults.

    Raises:
        ConfigError: bad file, no ``wats-report`` handler in it, or invalid options.
    """
    if config is None:
        return ReportSettings(**PREVIEW_DEFAULTS)
    found = _handler_options(config, ("wats-report",))
    if not found:
        raise WatsConfigError(f'{config}: no [[handlers]] table with kind = "wats-report"')
    _, name, options = found[0]
    return parse_settings(ReportSettings, name, options)


def preview_reports(paths: list[Path], settings: ReportSettings) -> tuple[list[dict[str, Any]], list[str]]:
    """Decode ``paths`` (CFX files, batches, event JSON; folders searched) and build the report of every
    test/inspection result they yield.

    Returns:
        ``(reports, problems)``: WSJF bodies, and one line per input or event that gave none.

    Raises:
        FileNotFoundError: a path does not exist.
    """
    builder = ReportBuilder(settings)
    decode = get_decoder("auto")
    reports: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in find_inputs(paths):
        try:
            events = decode(path.read_bytes(), DecodeContext(origin=str(path)))
        except DecodeError as exc:
            problems.append(str(exc) if exc.where else f"{path}: {exc}")
            continue
        for event in events:
            if event.type not in settings.event_types:
                continue
            if event.type == "repair.result" and settings.repair_process_code is None:
                continue  # as the handler: repairs are not reported without a repair operation
            try:
                report = builder.build(event)
            except ReportBuildError as exc:
                problems.append(f"{path}: {exc}")
                continue
            if report is not None:
                reports.append(report.to_wsjf())
    return reports, problems


@app.command()
def preview(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (*.json, *.json.gz, *.jsonl).")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the WSJF report the wats-report handler would post for each test/inspection result."""
    try:
        settings = report_settings(config)
        reports, problems = preview_reports(paths, settings)
    except (ConfigError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if config is None:
        typer.echo("note: no --config, product fields are placeholders (UNCONFIGURED)", err=True)
    for report in reports:
        if as_json:
            sys.stdout.write(jsonsafe.dumps(report, default=None) + "\n")
        else:
            typer.echo(f"# report {report['id']}  sn {report['sn']}  result {report['result']}")
            typer.echo(jsonsafe.dumps(report, indent=2, default=None))
    for problem in problems:
        typer.echo(f"no report: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


async def _check(config: Path) -> list[tuple[str, bool, str]]:
    """``(what, ok, detail)`` lines for every WATS handler of ``config``."""
    lines: list[tuple[str, bool, str]] = []
    for kind, name, options in _handler_options(config, ("wats-report", "wats-asset", "wats-production")):
        kinds: dict[str, type[ClientSettings]] = {
            "wats-report": ReportSettings,
            "wats-asset": AssetSettings,
            "wats-production": ProductionSettings,
        }
        cls = kinds[kind]
        try:
            settings = parse_settings(cls, name, options)
            client = WatsClient.from_settings(settings)
        except WatsConfigError as exc:
            lines.append((name, False, str(exc)))
            continue
        async with client:
            try:
                processes = await client.processes()
            except WatsUnavailableError as exc:
                lines.append((f"{name}: server", False, str(exc)))
                continue
            except WatsAuthError as exc:
                lines.append((f"{name}: server", True, f"{settings.base_url} answers"))
                lines.append((f"{name}: token", False, str(exc)))
                continue
            except (WatsRejectedError, WatsError) as exc:
                lines.append((f"{name}: server", False, str(exc)))
                continue
        lines.append((f"{name}: server", True, f"{settings.base_url} answers"))
        lines.append((f"{name}: token", True, "accepted"))
        if isinstance(settings, ReportSettings):
            known = {int(p["code"]) for p in processes if isinstance(p, dict) and "code" in p}
            wanted = {settings.process_code, *settings.process_codes.values()}
            wanted |= {p.process_code for p in [*settings.stations.values(), *settings.recipes.values()]}
            for code in sorted(c for c in wanted if c is not None):
                lines.append(
                    (f"{name}: process {code}", code in known, "defined" if code in known else "not on the server")
                )
    if not lines:
        lines.append((str(config), False, "no wats-report, wats-asset or wats-production handler"))
    return lines


@app.command()
def check(config: Annotated[Path, typer.Option("--config", "-c", help="Service configuration.")]) -> None:
    """Say whether the server answers, the token is accepted and the process codes exist. Exit 1 if not."""
    try:
        lines = asyncio.run(_check(config))
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for what, ok, detail in lines:
        typer.echo(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")
    if not all(ok for _, ok, _ in lines):
        raise typer.Exit(1)


@app.command("fake-server")
def fake_server(
    port: Annotated[int, typer.Option(help="TCP port.")] = 8085,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    token: Annotated[str, typer.Option(help="The token it accepts.")] = "fake-wats-token",
    lenient: Annotated[bool, typer.Option("--lenient", help="Skip strict status consistency checks.")] = False,
) -> None:
    """Run the validating fake WATS server in the foreground (see pywats_wats.testing)."""
    from .testing import main as fake_main

    fake_main(["--port", str(port), "--host", host, "--token", token, *(["--lenient"] if lenient else [])])


def main() -> None:
    """``python -m pywats_wats``."""
    app()
