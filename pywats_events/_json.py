"""JSON on the hot path: orjson when it is installed (the ``orjson`` extra, part of ``all``), else the
standard library, with the same results either way.

orjson parses and writes a few times faster than ``json`` but refuses some documents ``json`` takes
(``NaN``/``Infinity``, lone surrogates, nesting deeper than 1024) and reads integers beyond 64 bits as
floats, losing digits. Anything orjson refuses, and any text with a run of 19 or more digits, is handed to
``json`` as it is, so what parses, what is refused and the error message
(``json.JSONDecodeError`` with line and column) do not depend on whether orjson is installed; only
the speed does. ``PYWATS_EVENTS_NO_ORJSON=1`` in the environment ignores an installed orjson (the
stdlib path is tested that way).
"""

from __future__ import annotations

import os
import re
from typing import Any

from . import jsonsafe

__all__ = ["ORJSON", "dumps_compact", "loads"]

_orjson: Any
try:
    if os.environ.get("PYWATS_EVENTS_NO_ORJSON", "").strip() not in ("", "0"):
        raise ImportError("orjson disabled by PYWATS_EVENTS_NO_ORJSON")
    import orjson as _orjson
except ImportError:
    _orjson = None

#: True when orjson is in use.
ORJSON: bool = _orjson is not None


#: Every ASCII digit becomes "0", so a run of 19 digits is the substring ``_RUN``; no other byte becomes "0".
_ZEROS = bytes.maketrans(b"123456789", b"0" * 9)
_RUN = b"0" * 19
_RUN_RE = re.compile(r"[0-9]{19}")


def _long_digit_run(text: str | bytes) -> bool:
    """True when ``text`` holds 19 or more ASCII digits in a row (in a number or a string alike)."""
    if isinstance(text, str):
        return _RUN_RE.search(text) is not None
    return _RUN in text.translate(_ZEROS)


if _orjson is not None:
    _orjson_loads = _orjson.loads
    _orjson_dumps = _orjson.dumps
    _OrjsonDecodeError = _orjson.JSONDecodeError
    _OrjsonEncodeError = _orjson.JSONEncodeError

    def loads(text: str | bytes) -> Any:
        """Parse one JSON document (``str`` or UTF-8 ``bytes``).

        Raises:
            json.JSONDecodeError: not JSON (the standard library's message, line and column).
            RecursionError: nested too deeply for the standard library.
            UnicodeDecodeError: ``bytes`` that are not UTF-8.
        """
        if _long_digit_run(text):
            # orjson reads an integer beyond 64 bits as a float without an error (3.13), losing digits:
            # a run of 19+ digits (the shortest that can exceed 64 bits) goes to ``json``, which keeps it.
            return jsonsafe.loads(text)
        try:
            return _orjson_loads(text)
        except _OrjsonDecodeError:
            # What orjson refuses, json decides (NaN, big integers) and words (the error), as without it;
            # bare NaN/Infinity tokens become the strings "NaN"/"Infinity" (pywats_events.jsonsafe's rule).
            return jsonsafe.loads(text)

    #: Datetimes and dataclasses go to ``json`` (which refuses them) instead of being written by orjson.
    _OPTIONS = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS

    def dumps_compact(value: Any) -> str:
        """``value`` (dicts, lists, tuples, strings, numbers, booleans, ``None``) as compact JSON text
        (``separators=(",", ":")``, non-ASCII written as is). Meant for rows the store builds
        itself (ids, times, JSON text already made RFC 8259-safe by ``jsonsafe``): a float NaN or
        infinity would be written as ``null`` by orjson (as ``"NaN"`` by the fallback), so keep them out.

        Raises:
            TypeError / ValueError: a value JSON cannot hold (as ``json.dumps``).
        """
        try:
            return _orjson_dumps(value, option=_OPTIONS).decode()  # type: ignore[no-any-return]
        except (_OrjsonEncodeError, TypeError):
            return jsonsafe.dumps(value, ensure_ascii=False, default=None)

else:

    def loads(text: str | bytes) -> Any:
        """Parse one JSON document (``str`` or UTF-8 ``bytes``).

        Raises:
            json.JSONDecodeError: not JSON (the standard library's message, line and column).
            RecursionError: nested too deeply.
            UnicodeDecodeError: ``bytes`` that are not UTF-8.
        """
        return jsonsafe.loads(text)

    def dumps_compact(value: Any) -> str:
        """``value`` (dicts, lists, tuples, strings, numbers, booleans, ``None``) as compact JSON text
        (``separators=(",", ":")``, non-ASCII written as is).

        Raises:
            TypeError / ValueError: a value JSON cannot hold.
        """
        return jsonsafe.dumps(value, ensure_ascii=False, default=None)
