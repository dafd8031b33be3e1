"""CIRCMAN-style event notification on the pyWATS events bus.

Code written against the CIRCMAN 5.0 digital-twin event notification API (seed document ``003``) runs
with the package prefix ``circman5.manufacturing.digital_twin.event_notification`` changed to
``pywats_events.notification``; the submodules ``event_types``, ``event_manager`` and ``publishers`` are
the document's. Everything it publishes is a bus event (stored, routed, dead-lettered like any other).
"""

from .event_manager import EventFilter, EventHandler, EventManager, NotificationConfig, event_manager
from .event_types import (
    ErrorEvent,
    Event,
    EventCategory,
    EventSeverity,
    OptimizationEvent,
    SystemStateEvent,
    ThresholdEvent,
    UserActionEvent,
    category_of,
    from_bus_event,
    to_bus_event,
)
from .publishers import DigitalTwinPublisher, EventPublisherBase

__all__ = [
    "DigitalTwinPublisher",
    "ErrorEvent",
    "Event",
    "EventCategory",
    "EventFilter",
    "EventHandler",
    "EventManager",
    "EventPublisherBase",
    "EventSeverity",
    "NotificationConfig",
    "OptimizationEvent",
    "SystemStateEvent",
    "ThresholdEvent",
    "UserActionEvent",
    "category_of",
    "event_manager",
    "from_bus_event",
    "to_bus_event",
]
