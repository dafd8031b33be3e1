"""Every exception ``pywats_wats`` raises, derived from the core's classes so the bus treats them right.

How the bus treats them (``pywats_events.bus``):

- ``ReportBuildError``, ``WatsRejectedError``: ``UnrecoverableError``, dead-lettered at once (retrying the
  same input cannot help); the message names the event and the field, or carries the server's own text.
- ``WatsUnavailableError``: ``SinkUnavailableError``, retried with backoff; if the retries still fail the
  delivery is parked and the breaker opens, so the parked deliveries are redelivered when WATS answers.
- ``WatsAuthError``: ``SinkUnavailableError`` parked at once without retries (401/403 is a configuration
  problem: nothing is spent, readiness turns red, and the breaker's probe finds out when it is fixed).
"""

from __future__ import annotations

from pywats_events.errors import ConfigError, PyWatsEventsError, SinkUnavailableError, UnrecoverableError

__all__ = [
    "ReportBuildError",
    "WatsAuthError",
    "WatsConfigError",
    "WatsError",
    "WatsRejectedError",
    "WatsUnavailableError",
]


class WatsError(PyWatsEventsError):
    """Base class of the WATS package's own errors (raised outside deliveries, e.g. by ``WatsClient.check``)."""


class WatsConfigError(ConfigError):
    """A ``wats-*`` handler option is missing or invalid; the message names the handler and the key."""


class ReportBuildError(UnrecoverableError):
    """An event cannot become a valid WSJF report (no serial number, a forbidden character, no part number).

    Args:
        message: what is wrong, naming the payload field.
        event_id: the event's id, so the dead-letter entry and the log line point at the input.
    """

    def __init__(self, message: str, event_id: str = "") -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id}: {message}" if event_id else message)


class WatsRejectedError(UnrecoverableError):
    """WATS answered 400 (or another 4xx that retrying cannot fix): the report is invalid.

    Args:
        message: the server's validation text, prefixed with the request line.
        status: the HTTP status code.
    """

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class WatsUnavailableError(SinkUnavailableError):
    """WATS cannot take the request now: refused connection, timeout, 5xx, 408 or 429.

    Args:
        message: the request and what happened.
        status: the HTTP status code, ``None`` when there was no answer.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class WatsAuthError(SinkUnavailableError):
    """WATS refused the token (401/403, "Authentication", support.wats.com article 207424253). Parked at once:
    a wrong token is fixed by a person, and the deliveries wait for it instead of being spent.

    Args:
        message: the request and the status (never the token).
        status: 401 or 403.
    """

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message, retry=False)
