"""Log output of the command line: human-readable lines or one JSON object per line.

JSON lines suit log shippers (Loki, Elasticsearch, journald's JSON export): every record becomes
``{"time", "level", "logger", "message", ...}`` plus the fields passed with ``extra=`` and, for an
exception, ``exc_type`` and ``traceback``, so a collector can filter on fields rather than parse text.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from . import jsonsafe, tracing

__all__ = ["LOG_FORMATS", "JSONFormatter", "setup_logging"]

#: Values of ``--log-format``.
LOG_FORMATS = ("text", "json")

#: Attributes every ``logging.LogRecord`` has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON object (one line, UTF-8, no ``\\n`` inside).

    Fields: ``time`` (ISO 8601 UTC, milliseconds), ``level``, ``logger``, ``message`` (arguments merged),
    every ``extra=`` field (values JSON cannot hold are written with ``str``), and ``exc_type`` /
    ``traceback`` when the record carries an exception.
    """

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc_type"] = record.exc_info[0].__name__
            doc["traceback"] = self.formatException(record.exc_info)
        return jsonsafe.dumps(doc, ensure_ascii=False, compact=False)


def setup_logging(level: str, log_format: Literal["text", "json"] = "text") -> None:
    """Send log records at ``level`` and above to stderr in ``log_format``, replacing earlier handlers
    of the root logger (a command may set up logging after the global options did).

    Args:
        level: a ``logging`` level name (``DEBUG`` .. ``CRITICAL``, any case); unknown names mean ``INFO``.
        log_format: ``text`` (one readable line per record) or ``json`` (``JSONFormatter``; lines written
            during a delivery get the fields ``event_id``, ``handler``, ``transport``, ``trace_id``: see
            ``pywats_events.tracing.DeliveryContextFilter``).
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
        # Lines written during a delivery carry event_id, handler, transport and trace_id as fields.
        handler.addFilter(tracing.DeliveryContextFilter())
        tracing.enable_log_context()
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
        tracing.disable_log_context()
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
