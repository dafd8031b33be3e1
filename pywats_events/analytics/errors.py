"""Errors of the analytics handler and its report (one place, as every package of the project has)."""

from __future__ import annotations

from ..errors import PyWatsEventsError, UnrecoverableError

__all__ = ["AnalyticsError", "AnalyticsInputError", "AnalyticsWindowError", "TooLateError"]


class AnalyticsError(PyWatsEventsError):
    """Base class of analytics errors."""


class AnalyticsInputError(AnalyticsError, UnrecoverableError):
    """An event cannot be used for analytics (no state category, no unit id, a fault cleared before it
    occurred). Unrecoverable: retrying cannot help, so the bus dead-letters the delivery at once.

    Attributes:
        event_id: id of the offending event.
        event_type: its type (``asset.state_changed``...).
        field: the payload field at fault (``new_category``, ``unit_id``...).
    """

    def __init__(self, event_id: str, event_type: str, field: str, message: str) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.field = field
        super().__init__(f"{event_type} {event_id}: payload.{field}: {message}")


class AnalyticsWindowError(AnalyticsError, ValueError):
    """A report window is invalid (``until`` not after ``since``, an unknown window name, a bad time)."""


class TooLateError(AnalyticsError, UnrecoverableError):
    """A state change is older than the oldest change the in-memory history still holds for its asset, so
    it cannot be placed; ``pywats-events analytics rebuild`` recomputes from the event store. Unrecoverable:
    the bus dead-letters the delivery at once (replaying it after a rebuild is a harmless duplicate)."""
