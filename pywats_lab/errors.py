"""Every exception ``pywats_lab`` raises, each deriving from the matching ``pywats_events.errors`` class.

Bad lab data (an unknown barcode, a move to an occupied position, a step that finishes before it starts) is
a ``LabDataError``: it also derives from ``ValueError``, so code written against the LARA status DB that
catches ``ValueError`` keeps working. The ``lab-status-db`` and ``lab-orchestrator`` handlers turn these into
``LabEventError`` (an ``UnrecoverableError``): retrying cannot fix bad data, so the delivery is dead-lettered
at once with the reason in words.
"""

from __future__ import annotations

from pywats_events.errors import ConfigError, PyWatsEventsError, StoreError, UnrecoverableError
from pywats_events.http.errors import InvalidLabMessageError as _CoreInvalidLabMessageError

__all__ = [
    "ContainerNotAtPositionError",
    "DuplicateContainerError",
    "InvalidLabMessageError",
    "LabConfigError",
    "LabDataError",
    "LabError",
    "LabEventError",
    "PositionOccupiedError",
    "StatusDBError",
    "StepTimeError",
    "UnknownContainerError",
    "UnknownDeviceError",
    "UnknownExperimentError",
    "UnknownProcessError",
]


class LabError(PyWatsEventsError):
    """Base class of every ``pywats_lab`` error."""


class LabConfigError(LabError, ConfigError):
    """A lab setting or the lab configuration file is invalid; the message names the key or the file."""


class InvalidLabMessageError(LabError, _CoreInvalidLabMessageError):
    """A lab event message or ``ModuleStatusUpdateEvent`` that fails validation; ``field`` names the wire key
    (``data.Status``, ``[2].topic``). Also an ``InvalidRequestError`` so the HTTP intake answers 400."""


class StatusDBError(LabError, StoreError):
    """The status database cannot be reached or answered with an error (not a data problem)."""


class LabDataError(LabError, ValueError):
    """The status DB refused an operation because of its data; nothing was written."""


class UnknownContainerError(LabDataError):
    """No container with that barcode is on the platform (never added, or removed)."""


class DuplicateContainerError(LabDataError):
    """A container with that barcode is already on the platform."""


class UnknownDeviceError(LabDataError):
    """The device or position is not in the lab configuration (only raised when the configuration is strict)."""


class PositionOccupiedError(LabDataError):
    """The target position already holds another container."""


class ContainerNotAtPositionError(LabDataError):
    """A move names a source device/position the container is not at."""


class StepTimeError(LabDataError):
    """A step without a start time, or one that finishes before it starts."""


class UnknownProcessError(LabDataError):
    """No process with that UUID."""


class UnknownExperimentError(LabDataError):
    """No experiment with that UUID."""


class LabEventError(LabError, UnrecoverableError):
    """A lab event (``lab.step.*``, ``lab.container.*``, ``lab.order.*``) whose payload is invalid or
    contradicts the status DB. Raised by the lab handlers: the delivery is dead-lettered at once, with the
    event type, the offending key and the reason in the message."""
