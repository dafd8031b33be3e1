"""Scalar CFX members read the way the SDK's Newtonsoft.Json reader reads them.

One set of rules for the adapters and the typed models, so that both accept and refuse the same bodies
(IPCConnectedFactoryExchange/CFX, ``CFX/Utilities/JsonConvert.cs`` deserializes with Newtonsoft defaults):

* ``bool`` members: JSON ``true``/``false``, the strings ``"true"``/``"false"`` in any case
  (``bool.TryParse``), and numbers (``Convert.ToBoolean``: non-zero is true). ``"1"`` is refused.
* ``int`` and ``double`` members never take a JSON boolean (``Unexpected token: Boolean``).
* ``DateTime`` members take ISO 8601 text only; a JSON number is refused (Newtonsoft has no Unix time
  default).
* ``TimeSpan`` members take .NET TimeSpan text, ``[-][d.]hh:mm[:ss[.fffffff]]`` or a whole number of days
  (``TimeSpan.Parse("1")`` is one day). A plain JSON number is read as seconds, as pyWATS always has.

Every function raises ``ValueError`` with the reason; callers add the field path and the input's origin.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

__all__ = ["read_bool", "read_datetime_text", "read_timespan_seconds", "refuse_bool"]

# .NET TimeSpan text: [-][d.]hh:mm[:ss[.fffffff]], or [-]d (days).
_TIMESPAN = re.compile(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?")
_DAYS = re.compile(r"-?\d{1,8}")


def read_bool(value: Any) -> bool | None:
    """A ``bool`` member: JSON booleans, ``"true"``/``"false"`` (any case), numbers (non-zero is true).

    Raises:
        ValueError: any other value (``"1"``, ``"yes"``, an object).
    """
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    raise ValueError(f"expected a boolean, got {value!r:.40}")


def refuse_bool(value: Any) -> Any:
    """Pass ``value`` on unless it is a JSON boolean, which no SDK number member takes.

    Raises:
        ValueError: ``value`` is ``true`` or ``false``.
    """
    if value is True or value is False:
        raise ValueError("expected a number, got a boolean")
    return value


def read_datetime_text(value: Any) -> str | datetime | None:
    """A ``DateTime`` member: ISO 8601 text, returned as sent once checked.

    Raises:
        ValueError: a number, or text that is not an ISO 8601 date-time.
    """
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an ISO 8601 date-time") from None
    return value


def read_timespan_seconds(value: Any) -> float | None:
    """A ``TimeSpan`` member in seconds: .NET TimeSpan text, a whole number of days, or a number of seconds.

    Raises:
        ValueError: anything else (``"soon"``, a boolean, an object).
    """
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        m = _TIMESPAN.fullmatch(text)
        if m:
            sign, days, hours, minutes, seconds = m.groups()
            total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds or 0)
            return -total if sign else total
        if _DAYS.fullmatch(text):
            return float(int(text) * 86400)
    raise ValueError(f"{value!r:.60} is not a time span (.NET TimeSpan text such as '00:01:25')")
