"""pyWATS lab: the Biosero lab dialect, the LARA-style status DB with duration estimates, and an orchestrator.

Plug-in family of pyWATS events (extra ``lab``). Registered by entry point: the decoder ``lab-event`` (the
EventService intake and any transport), the handler kinds ``lab-status-db`` and ``lab-orchestrator``.

============================================================  ================================
their import                                                  ours
============================================================  ================================
``biosero.datamodels.events``                                 ``pywats_lab.events``
``biosero.datamodels.clients``                                ``pywats_lab.clients``
``platform_status_db.larastatus.status_db_implementation``    ``pywats_lab.status_db``
``laborchestrator.structures``                                ``pywats_lab.structures``
============================================================  ================================
"""

from __future__ import annotations

from .clients import EventClient, HttpClientHelper
from .errors import (
    ContainerNotAtPositionError,
    DuplicateContainerError,
    InvalidLabMessageError,
    LabConfigError,
    LabDataError,
    LabError,
    LabEventError,
    PositionOccupiedError,
    StatusDBError,
    StepTimeError,
    UnknownContainerError,
    UnknownDeviceError,
    UnknownExperimentError,
    UnknownProcessError,
)
from .events import EventMessage, ModuleStatus, ModuleStatusUpdateEvent, decode_lab_event, monitor_status_changes
from .handlers import LabStatusDBHandler, OrchestratorHandler
from .orchestrator import ModuleDashboard, WorkflowOrchestrator
from .settings import LabSettings
from .status_db import AsyncStatusDB, StatusDBImplementation
from .structures import ContainerInfo, DeviceInfo, MoveStep, ProcessStep

__all__ = [
    "AsyncStatusDB",
    "ContainerInfo",
    "ContainerNotAtPositionError",
    "DeviceInfo",
    "DuplicateContainerError",
    "EventClient",
    "EventMessage",
    "HttpClientHelper",
    "InvalidLabMessageError",
    "LabConfigError",
    "LabDataError",
    "LabError",
    "LabEventError",
    "LabSettings",
    "LabStatusDBHandler",
    "ModuleDashboard",
    "ModuleStatus",
    "ModuleStatusUpdateEvent",
    "MoveStep",
    "OrchestratorHandler",
    "PositionOccupiedError",
    "ProcessStep",
    "StatusDBError",
    "StatusDBImplementation",
    "StepTimeError",
    "UnknownContainerError",
    "UnknownDeviceError",
    "UnknownExperimentError",
    "UnknownProcessError",
    "WorkflowOrchestrator",
    "decode_lab_event",
    "monitor_status_changes",
]
