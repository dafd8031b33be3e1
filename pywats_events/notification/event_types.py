"""CIRCMAN-style notification events: categories, severities, the base ``Event`` and its five kinds.

Follows the CIRCMAN 5.0 digital-twin event notification API (``circman5.manufacturing.digital_twin.
event_notification.event_types``, seed document ``003``): the same class names, fields, defaults,
generated messages and default severities, so code written against that document runs with only the
package prefix changed to ``pywats_events.notification``.

Each notification event converts to a bus ``pywats_events.Event`` and back without loss
(``to_bus_event`` / ``from_bus_event``): the bus type is ``<category>.<kind>`` (``threshold.breached``,
``system.state_changed``...), so the bus category is the CIRCMAN category; ``message``, ``details``, the
class name and the original timestamp string travel in the payload. A bus event that did not start as a
notification converts to a base ``Event`` whose ``details`` hold the bus type and payload, and back.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..event import Event as BusEvent
from ..event import Severity

__all__ = [
    "ErrorEvent",
    "Event",
    "EventCategory",
    "EventSeverity",
    "OptimizationEvent",
    "SystemStateEvent",
    "ThresholdEvent",
    "UserActionEvent",
    "category_of",
    "from_bus_event",
    "to_bus_event",
]


class EventCategory(Enum):
    """Categories for events (CIRCMAN ``EventCategory``); each is also the bus event's category."""

    SYSTEM = "system"
    PROCESS = "process"
    OPTIMIZATION = "optimization"
    THRESHOLD = "threshold"
    USER = "user"
    ERROR = "error"


class EventSeverity(Enum):
    """Severity levels for events (CIRCMAN ``EventSeverity``); the same four as ``pywats_events.Severity``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


def _now_iso() -> str:
    return datetime.datetime.now().isoformat()


@dataclass
class Event:
    """Base class for all notification events (CIRCMAN ``Event``).

    Attributes:
        event_id: unique id, a UUID string by default.
        timestamp: ISO 8601 string; local time without offset by default, as the document does.
        category / severity: see ``EventCategory`` / ``EventSeverity``.
        source: who published it (``system`` by default; publishers set their own name).
        message: human-readable text.
        details: the event's data, JSON-serializable.
        acknowledged: whether an operator acknowledged it (kept by the store).
    """

    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timestamp: str = field(default_factory=_now_iso)
    category: EventCategory = EventCategory.SYSTEM
    severity: EventSeverity = EventSeverity.INFO
    source: str = "system"
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    acknowledged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The event as a dictionary of JSON values (enums as their values)."""
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "category": self.category.value,
            "severity": self.severity.value,
            "source": self.source,
            "message": self.message,
            "details": self.details,
            "acknowledged": self.acknowledged,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Build an event from ``to_dict`` output; missing keys take the defaults.

        Called on a subclass, it returns an instance of that subclass with the stored fields (the
        subclass's own constructor arguments are already folded into ``message`` and ``details``).

        Raises:
            ValueError: an unknown category or severity value.
        """
        obj = object.__new__(cls)
        Event.__init__(
            obj,
            event_id=data.get("event_id", str(uuid.uuid4())),
            timestamp=data.get("timestamp", _now_iso()),
            category=EventCategory(data.get("category", EventCategory.SYSTEM.value)),
            severity=EventSeverity(data.get("severity", EventSeverity.INFO.value)),
            source=data.get("source", "system"),
            message=data.get("message", ""),
            details=data.get("details", {}),
            acknowledged=data.get("acknowledged", False),
        )
        return obj


class SystemStateEvent(Event):
    """A system state change: ``details`` has ``previous_state`` and ``new_state``; severity INFO by default."""

    def __init__(self, previous_state: str, new_state: str, **kwargs: Any) -> None:
        details = {"previous_state": previous_state, "new_state": new_state, **kwargs.pop("details", {})}
        super().__init__(
            category=EventCategory.SYSTEM,
            message=f"System state changed from {previous_state} to {new_state}",
            details=details,
            **kwargs,
        )


class ThresholdEvent(Event):
    """A parameter beyond its threshold (severity WARNING by default).

    Args:
        parameter: the parameter's name; threshold / actual_value: the limit and the value seen.
    """

    def __init__(self, parameter: str, threshold: float, actual_value: float, **kwargs: Any) -> None:
        severity = kwargs.pop("severity", EventSeverity.WARNING)
        details = {"parameter": parameter, "threshold": threshold, "actual_value": actual_value,
                   **kwargs.pop("details", {})}
        super().__init__(
            category=EventCategory.THRESHOLD,
            severity=severity,
            message=f"Threshold breach: {parameter} exceeded {threshold} with value {actual_value}",
            details=details,
            **kwargs,
        )


class OptimizationEvent(Event):
    """An optimization opportunity (severity INFO by default); ``potential_improvement`` in percent."""

    def __init__(
        self, optimization_type: str, potential_improvement: float, recommended_action: str, **kwargs: Any
    ) -> None:
        severity = kwargs.pop("severity", EventSeverity.INFO)
        details = {
            "optimization_type": optimization_type,
            "potential_improvement": potential_improvement,
            "recommended_action": recommended_action,
            **kwargs.pop("details", {}),
        }
        super().__init__(
            category=EventCategory.OPTIMIZATION,
            severity=severity,
            message=(f"Optimization opportunity: {optimization_type} with {potential_improvement:.2f}% "
                     "improvement potential"),
            details=details,
            **kwargs,
        )


class ErrorEvent(Event):
    """A system error (severity ERROR by default), with an optional stack trace."""

    def __init__(self, error_type: str, error_message: str, stacktrace: str | None = None, **kwargs: Any) -> None:
        severity = kwargs.pop("severity", EventSeverity.ERROR)
        details = {"error_type": error_type, "error_message": error_message, "stacktrace": stacktrace,
                   **kwargs.pop("details", {})}
        super().__init__(
            category=EventCategory.ERROR,
            severity=severity,
            message=f"Error: {error_type} - {error_message}",
            details=details,
            **kwargs,
        )


class UserActionEvent(Event):
    """Something a user did (severity INFO by default)."""

    def __init__(self, user_id: str, action: str, action_details: dict[str, Any], **kwargs: Any) -> None:
        severity = kwargs.pop("severity", EventSeverity.INFO)
        details = {"user_id": user_id, "action": action, "action_details": action_details,
                   **kwargs.pop("details", {})}
        super().__init__(
            category=EventCategory.USER,
            severity=severity,
            message=f"User {user_id} performed action: {action}",
            details=details,
            **kwargs,
        )


#: Bus type suffix of each notification class (the prefix is the event's category).
_KIND = {
    "SystemStateEvent": "state_changed",
    "ThresholdEvent": "breached",
    "OptimizationEvent": "opportunity",
    "ErrorEvent": "raised",
    "UserActionEvent": "action",
    "Event": "notification",
}
_CLASSES: dict[str, type[Event]] = {
    "SystemStateEvent": SystemStateEvent,
    "ThresholdEvent": ThresholdEvent,
    "OptimizationEvent": OptimizationEvent,
    "ErrorEvent": ErrorEvent,
    "UserActionEvent": UserActionEvent,
    "Event": Event,
}
#: Bus categories that have no CIRCMAN category of the same name are production-side events.
_CATEGORY_OF_BUS = {c.value: c for c in EventCategory}


def category_of(event: BusEvent) -> EventCategory:
    """The notification category of a bus event: the one of the same name, else PROCESS (production
    events such as ``test.result`` or ``asset.fault``)."""
    return _CATEGORY_OF_BUS.get(event.category, EventCategory.PROCESS)


def _bus_timestamp(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"notification timestamp {text!r} is not ISO 8601") from None
    return value.astimezone(datetime.UTC)  # a naive value is local time, as the document writes it


def to_bus_event(event: Event, *, tags: tuple[str, ...] = ()) -> BusEvent:
    """The bus event for a notification event (see the module docstring for the mapping).

    Raises:
        ValueError: the timestamp is not ISO 8601, or the id is longer than 200 characters.
    """
    details = event.details
    if type(event) is Event and details.get("_bus_type"):  # a bus event that went through from_bus_event
        payload = dict(details.get("payload", {}))
        return BusEvent(
            id=event.event_id, type=details["_bus_type"], source=event.source,
            timestamp=_bus_timestamp(event.timestamp), severity=Severity(event.severity.value), payload=payload,
            correlation_id=details.get("correlation_id"), causation_id=details.get("causation_id"),
            subjects=tuple(details.get("subjects", ())), tags=tuple(details.get("tags", ())) + tags,
            headers=dict(details.get("headers", {})),
        )
    name = next((c.__name__ for c in type(event).__mro__ if c.__name__ in _KIND), "Event")
    return BusEvent(
        id=event.event_id,
        type=f"{event.category.value}.{_KIND[name]}",
        source=event.source or "system",
        timestamp=_bus_timestamp(event.timestamp),
        severity=Severity(event.severity.value),
        payload={"message": event.message, "details": details, "notification_class": name,
                 "notification_timestamp": event.timestamp},
        tags=tags,
    )


def from_bus_event(event: BusEvent, *, acknowledged: bool = False) -> Event:
    """The notification event for a bus event: the original class and fields for one that started as a
    notification; otherwise a base ``Event`` (category of the same name, or PROCESS for production
    events such as ``test.result``) whose ``details`` keep the bus type, payload and ids."""
    payload = event.payload
    name = payload.get("notification_class")
    if isinstance(name, str) and name in _CLASSES and "notification_timestamp" in payload:
        return _CLASSES[name].from_dict({
            "event_id": event.id,
            "timestamp": payload["notification_timestamp"],
            "category": event.category if event.category in _CATEGORY_OF_BUS else EventCategory.SYSTEM.value,
            "severity": event.severity.value,
            "source": event.source,
            "message": payload.get("message", ""),
            "details": payload.get("details", {}),
            "acknowledged": acknowledged,
        })
    return Event(
        event_id=event.id,
        timestamp=event.timestamp.isoformat(),
        category=category_of(event),
        severity=EventSeverity(event.severity.value),
        source=event.source,
        message=event.type,
        details={
            "_bus_type": event.type, "payload": event.payload, "correlation_id": event.correlation_id,
            "causation_id": event.causation_id, "subjects": list(event.subjects), "tags": list(event.tags),
            "headers": event.headers,
        },
        acknowledged=acknowledged,
    )
