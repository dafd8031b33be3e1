"""Plug-ins found by entry point: transports, decoders and handlers.

The core never names a plug-in package. A distribution (this project's own included) declares what it
brings in its ``pyproject.toml``, under one of three entry-point groups, and the core finds it through
``importlib.metadata`` the way pytest finds its plug-ins::

    [project.entry-points."pywats_events.transports"]
    lines = "my_lines.transport:LinesTransport [lines]"   # kind = "lines"; the extra in brackets

    [project.entry-points."pywats_events.decoders"]
    my-format = "my_lines.codec:decoder"                   # decoder = "my-format"

    [project.entry-points."pywats_events.handlers"]
    my-sink = "my_lines.handler:MySink"                    # [[handlers]] kind = "my-sink"

The entry's name is the ``kind`` (or decoder name) a configuration file uses; its value is the class or
callable; the optional ``[extra]`` names the pip extra that brings the libraries it needs, so a missing
library is reported as ``pip install 'dist[extra]'``. A class may carry ``settings_model`` (the pydantic
model of its options), shown by ``describe_plugins`` and ``pywats-events plugins``.

Nothing is imported until it is used: listing plug-ins reads metadata only, so an uninstalled broker
library costs nothing until a configuration asks for that kind.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import logging
from dataclasses import dataclass
from typing import Any, Literal

from .errors import PluginError

__all__ = [
    "COMMAND_GROUP",
    "DECODER_GROUP",
    "HANDLER_GROUP",
    "TRANSPORT_GROUP",
    "PluginSpec",
    "available",
    "describe_plugins",
    "load_plugin",
]

log = logging.getLogger(__name__)

TRANSPORT_GROUP = "pywats_events.transports"
DECODER_GROUP = "pywats_events.decoders"
HANDLER_GROUP = "pywats_events.handlers"
#: Command-line sub-apps (typer) a plug-in adds: ``wats = "pywats_wats.commands:app"`` gives
#: ``pywats-events wats ...``.
COMMAND_GROUP = "pywats_events.commands"

Group = Literal[
    "pywats_events.transports", "pywats_events.decoders", "pywats_events.handlers", "pywats_events.commands"
]
_WHAT = {TRANSPORT_GROUP: "transport", DECODER_GROUP: "decoder", HANDLER_GROUP: "handler", COMMAND_GROUP: "command"}


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """One registered plug-in, as its distribution's metadata declares it (nothing imported yet).

    Attributes:
        group: the entry-point group (``TRANSPORT_GROUP``, ``DECODER_GROUP``, ``HANDLER_GROUP``).
        name: the kind or decoder name a configuration uses (``mqtt``, ``cfx``, ``event-store``).
        value: ``module:attribute`` of the class or callable.
        extras: pip extras that bring the libraries it needs (may be empty).
        distribution: the installed distribution that declares it (``pywats-events``), if known.
    """

    group: str
    name: str
    value: str
    extras: tuple[str, ...] = ()
    distribution: str | None = None

    @property
    def install_hint(self) -> str:
        """``pip install 'dist[extra]'`` for this plug-in's extras, or an empty string when it has none."""
        if not self.extras:
            return ""
        return f"pip install '{self.distribution or 'pywats-events'}[{','.join(self.extras)}]'"


def available(group: str) -> dict[str, PluginSpec]:
    """Every plug-in registered in ``group``, by name (metadata only; nothing is imported).

    When two distributions register the same name, the first one found wins and a WARNING names both.

    Raises:
        PluginError: ``group`` is not one of the three groups.
    """
    if group not in _WHAT:
        raise PluginError(f"unknown plug-in group {group!r}; known: {', '.join(sorted(_WHAT))}")
    out: dict[str, PluginSpec] = {}
    for ep in md.entry_points(group=group):
        dist = ep.dist.name if ep.dist is not None else None
        spec = PluginSpec(group, ep.name, ep.value.split("[", 1)[0].strip(), tuple(ep.extras), dist)
        if ep.name in out and out[ep.name].value != spec.value:
            log.warning(
                "%s %r is registered twice: %s (%s) and %s (%s); using the first",
                _WHAT[group], ep.name, out[ep.name].value, out[ep.name].distribution, spec.value, dist,
            )
            continue
        out.setdefault(ep.name, spec)
    return out


def load_plugin(group: str, name: str, what: str = "") -> Any:
    """Import and return the class or callable registered as ``name`` in ``group``.

    Args:
        group: one of ``TRANSPORT_GROUP``, ``DECODER_GROUP``, ``HANDLER_GROUP``.
        name: the kind or decoder name.
        what: where the request came from, for the error message (``transport 'line1'``).

    Raises:
        PluginError: no plug-in of that name (the message lists the known ones), or it cannot be imported
            (the message says which pip extra brings what it needs).
    """
    where = f"{what}: " if what else ""
    specs = available(group)
    spec = specs.get(name)
    if spec is None:
        known = ", ".join(sorted(specs)) or "none (is the package installed with pip?)"
        raise PluginError(f"{where}unknown {_WHAT[group]} kind {name!r}; known: {known}")
    module_name, _, attr = spec.value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f" (install it with: {spec.install_hint})" if spec.install_hint else ""
        raise PluginError(f"{where}cannot import {module_name!r} for {_WHAT[group]} {name!r}: {exc}{hint}") from None
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(
                f"{where}{_WHAT[group]} {name!r}: module {module_name!r} has no {attr!r} "
                f"(entry point of {spec.distribution or 'an installed package'})"
            ) from None
    return obj


def describe_plugins() -> dict[str, list[dict[str, Any]]]:
    """Every registered plug-in by kind of plug-in (``transports``, ``decoders``, ``handlers``), each with
    name, value, extras, distribution and (when importable) the names of its settings fields.

    Never raises for a plug-in that cannot be imported: its entry says ``"error"`` instead.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for group, what in _WHAT.items():
        rows = []
        for name, spec in sorted(available(group).items()):
            row: dict[str, Any] = {
                "name": name,
                "value": spec.value,
                "extras": list(spec.extras),
                "distribution": spec.distribution,
            }
            try:
                obj = load_plugin(group, name)
            except PluginError as exc:
                row["error"] = str(exc)
            else:
                model = getattr(obj, "settings_model", None)
                if model is not None and hasattr(model, "model_fields"):
                    row["settings"] = sorted(model.model_fields)
            rows.append(row)
        out[f"{what}s"] = rows
    return out
