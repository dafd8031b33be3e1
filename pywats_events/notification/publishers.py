"""Publishers: components that publish notification events under their own source name.

Follows the CIRCMAN 5.0 ``publishers`` module (seed document ``003``, section 4): ``EventPublisherBase``
and ``DigitalTwinPublisher`` with its four publish methods and the document's messages and defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from .event_manager import EventManager, event_manager
from .event_types import ErrorEvent, Event, EventCategory, EventSeverity, SystemStateEvent, ThresholdEvent

__all__ = ["DigitalTwinPublisher", "EventPublisherBase"]

log = logging.getLogger(__name__)


class EventPublisherBase:
    """Publishes events with ``source_name`` as their source when they have none of their own.

    Args:
        source_name: the component's name (``digital_twin``).
        manager: the event manager to publish through (default the module-level ``event_manager``).
    """

    def __init__(self, source_name: str, manager: EventManager | None = None) -> None:
        self.source_name = source_name
        self.event_manager = manager if manager is not None else event_manager

    def publish(self, event: Event) -> None:
        """Publish ``event`` (its source set to ``source_name`` when empty or the default ``system``).

        Raises:
            As ``EventManager.publish``.
        """
        if not getattr(event, "source", None) or event.source == "system":
            event.source = self.source_name
        self.event_manager.publish(event)


class DigitalTwinPublisher(EventPublisherBase):
    """The digital twin's publisher: state updates, threshold breaches, errors and simulation results.

    Each method returns True when it published, False when the manager's configuration turns that kind
    off (``publish_state_changes``, ``publish_threshold_breaches``, ``publish_simulation_results``; logged
    at INFO). Errors are always published.
    """

    def __init__(self, manager: EventManager | None = None) -> None:
        super().__init__("digital_twin", manager)

    def _enabled(self, flag: str) -> bool:
        if getattr(self.event_manager.config, flag):
            return True
        log.info("digital_twin: not published, %s is off in the notification configuration", flag)
        return False

    def publish_state_update(self, previous_state: dict[str, Any], updated_state: dict[str, Any]) -> bool:
        """A ``SystemStateEvent`` from the ``system_status`` of two state snapshots (``unknown`` when
        absent)."""
        if not self._enabled("publish_state_changes"):
            return False
        self.publish(SystemStateEvent(
            previous_state=previous_state.get("system_status", "unknown"),
            new_state=updated_state.get("system_status", "unknown"),
            severity=EventSeverity.INFO,
        ))
        return True

    def publish_parameter_threshold_event(
        self,
        parameter_path: str,
        parameter_name: str,
        threshold: float,
        actual_value: float,
        state: dict[str, Any],
        severity: EventSeverity = EventSeverity.WARNING,
    ) -> bool:
        """A ``ThresholdEvent`` for ``parameter_name``; ``details`` add ``parameter_path`` and the state's
        ``timestamp`` (``unknown`` when absent)."""
        if not self._enabled("publish_threshold_breaches"):
            return False
        self.publish(ThresholdEvent(
            parameter=parameter_name,
            threshold=threshold,
            actual_value=actual_value,
            severity=severity,
            details={"parameter_path": parameter_path, "state_timestamp": state.get("timestamp", "unknown")},
        ))
        return True

    def publish_error_event(
        self,
        error_type: str,
        error_message: str,
        severity: EventSeverity = EventSeverity.ERROR,
        stacktrace: str | None = None,
    ) -> bool:
        """An ``ErrorEvent`` (always published)."""
        self.publish(ErrorEvent(error_type=error_type, error_message=error_message, severity=severity,
                                stacktrace=stacktrace))
        return True

    def publish_simulation_result(
        self, simulation_id: str, parameters: dict[str, Any], results: dict[str, Any], improvement: float
    ) -> bool:
        """A PROCESS event for a finished simulation; ``improvement`` in percent."""
        if not self._enabled("publish_simulation_results"):
            return False
        self.publish(Event(
            category=EventCategory.PROCESS,
            severity=EventSeverity.INFO,
            message=f"Simulation {simulation_id} completed with {improvement:.2f}% improvement",
            details={"simulation_id": simulation_id, "parameters": parameters, "results_summary": results,
                     "improvement": improvement},
        ))
        return True
