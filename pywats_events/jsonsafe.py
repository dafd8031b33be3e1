"""RFC 8259 JSON out of everything the project writes, with one rule for non-finite numbers.

JSON (RFC 8259 section 6) has no NaN or infinities, yet Python's ``json`` writes the bare tokens ``NaN``,
``Infinity`` and ``-Infinity`` that strict parsers refuse, and pydantic writes ``null`` (which loses the
fact that a value was measured at all). The rule here is the one IPC-CFX senders already follow:
Newtonsoft.Json (the .NET CFX SDK's serializer, ``FloatFormatHandling.String``) writes ``double.NaN`` as
the string ``"NaN"`` and the infinities as ``"Infinity"`` / ``"-Infinity"``, and reads those strings back
into a double; WATS's REST API, also .NET, does the same. So a non-finite float becomes that string in
every JSON the project emits (event JSON, the store, HTTP answers, the forwarder, MQTT/AMQP/NATS
publishing, ``--json`` output, logs), and the JSON decoders of the intake turn the bare tokens into the
same strings (as the CFX decoder does), so a handler sees the same value whatever path an event took.
Refusing such messages would lose test results whose measurement legitimately failed (a NaN reading).

``dumps`` costs nothing extra for the common case: the C encoder runs with ``allow_nan=False`` and only a
document that actually holds a non-finite float is rewritten (``finite``) and encoded again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["NON_FINITE_STRINGS", "dumps", "finite", "loads"]

#: The strings non-finite floats are written as (Newtonsoft's ``FloatFormatHandling.String``).
NON_FINITE_STRINGS = frozenset({"NaN", "Infinity", "-Infinity"})

_OUT_OF_RANGE = "Out of range float values are not JSON compliant"


def _text(value: float) -> str:
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth of dicts, lists and tuples) replaced by
    ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``; containers are copied only where something changed,
    tuples become lists (as JSON writes them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else _text(value)
    if isinstance(value, dict):
        out = {k: finite(v) for k, v in value.items()}
        return out if any(out[k] is not v for k, v in value.items()) else value
    if isinstance(value, list | tuple):
        items = [finite(v) for v in value]
        changed = any(a is not b for a, b in zip(items, value, strict=True))
        return items if changed or isinstance(value, tuple) else value
    return value


_ENCODERS: dict[tuple[Any, ...], json.JSONEncoder] = {}


def _separators(indent: int | None, compact: bool) -> tuple[str, str]:
    return (",", ":") if compact and indent is None else ((",", ": ") if indent is not None else (", ", ": "))


def _encoder(
    default: Callable[[Any], Any] | None, indent: int | None, ensure_ascii: bool, sort_keys: bool, compact: bool
) -> json.JSONEncoder:
    key = (default, indent, ensure_ascii, sort_keys, compact)
    enc = _ENCODERS.get(key)
    if enc is None:
        if len(_ENCODERS) > 64:
            _ENCODERS.clear()
        enc = _ENCODERS[key] = json.JSONEncoder(
            allow_nan=False,
            default=default,
            indent=indent,
            ensure_ascii=ensure_ascii,
            sort_keys=sort_keys,
            separators=_separators(indent, compact),
        )
    return enc


def dumps(
    value: Any,
    *,
    default: Callable[[Any], Any] | None = str,
    indent: int | None = None,
    ensure_ascii: bool = True,
    sort_keys: bool = False,
    compact: bool = True,
) -> str:
    """``value`` as RFC 8259 JSON text.

    Compact (``,`` and ``:`` without spaces) unless ``indent`` is given or ``compact`` is False (then
    ``json.dumps``'s ``", "`` and ``": "``). Non-finite floats are written as ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``. A value JSON cannot hold goes through ``default`` (``str`` by default, so it is
    written as text, not lost; ``None`` to raise).

    Raises:
        TypeError: a value JSON cannot hold and ``default`` is None.
        ValueError: a circular reference.
    """
    enc = _encoder(default, indent, ensure_ascii, sort_keys, compact)
    try:
        return enc.encode(value)
    except ValueError as exc:
        if not str(exc).startswith(_OUT_OF_RANGE):
            raise
    # ``default`` may have produced the non-finite float (a Decimal, a numpy scalar): convert its output.
    if default is not None:
        user_default = default
        enc = json.JSONEncoder(
            allow_nan=False,
            default=lambda o: finite(user_default(o)),
            indent=indent,
            ensure_ascii=ensure_ascii,
            sort_keys=sort_keys,
            separators=_separators(indent, compact),
        )
    return enc.encode(finite(value))


def _constant(name: str) -> str:
    return name  # "NaN", "Infinity", "-Infinity": the strings the rule above writes


def loads(text: str | bytes) -> Any:
    """Parse JSON as ``json.loads`` does, except that the bare tokens ``NaN``, ``Infinity`` and
    ``-Infinity`` (which Python's and some other writers produce, though RFC 8259 has none) become the
    strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``, as the CFX decoder reads them.

    Raises:
        json.JSONDecodeError: not JSON.
    """
    return json.loads(text, parse_constant=_constant)
