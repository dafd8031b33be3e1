"""The step and container structures of the lab orchestrator (``laborchestrator.structures``).

Code written against laborchestrator runs with the prefix changed to ``pywats_lab.structures``: steps are
built with keywords and their times and status are set afterwards, as the LARA status DB document does::

    step = ProcessStep(name="Read Absorbance", main_device=DeviceInfo(name="PlateReader"),
                       data={"fct": "absorbance", "wavelength": 450})
    step.start = datetime.now()
    ...
    step.finish = datetime.now()
    step.status = "completed"

Times may be naive (taken as local time, as ``datetime.now()`` gives) or timezone-aware; the status DB
stores them as UTC.
"""

from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ContainerInfo", "DeviceInfo", "MoveStep", "ProcessStep"]


@dataclass
class DeviceInfo:
    """A device of the lab (liquid handler, incubator, robotic arm, plate reader).

    Attributes:
        name: the device's name in the lab (``Hamilton_STAR``); the status DB's key.
        num_slots: positions it has, when known (count).
    """

    name: str
    num_slots: int | None = None


@dataclass
class ContainerInfo:
    """A container (plate, tube rack) on the platform.

    Attributes:
        name: display name.
        current_device: the device it is at.
        current_pos: the position (slot number, from 0) on that device.
        barcode: its barcode, unique among containers on the platform.
        lidded: whether it carries a lid.
        filled: whether it holds samples.
        start_device / start_pos: where it was added (the status DB fills them).
        removed: whether it has left the platform.
    """

    name: str
    current_device: str
    current_pos: int
    barcode: str
    lidded: bool = False
    filled: bool = True
    start_device: str | None = None
    start_pos: int | None = None
    removed: bool = False


@dataclass
class ProcessStep:
    """One operation of an experiment on one device.

    Attributes:
        name: the step's name (``Read Absorbance``).
        main_device: the device executing it.
        data: its parameters; ``data["fct"]`` is the function (``absorbance``, ``dispense``, ``move``), the
            other keys the method parameters the duration estimate matches on.
        start / finish: when it ran (``None`` until set).
        status: free text (``completed``, ``failed``, ``running``).
        uuid: the step's id (a new UUID unless given); recording the same uuid twice updates the step.
    """

    name: str
    main_device: DeviceInfo
    data: dict[str, Any] = field(default_factory=dict)
    start: datetime | None = None
    finish: datetime | None = None
    status: str = ""
    uuid: str = field(default_factory=lambda: str(_uuid.uuid4()))

    @property
    def fct(self) -> str | None:
        """``data["fct"]``, the function this step executes."""
        value = self.data.get("fct")
        return None if value is None else str(value)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, ``None`` while either is missing."""
        if self.start is None or self.finish is None:
            return None
        return (self.finish - self.start).total_seconds()


@dataclass
class MoveStep(ProcessStep):
    """A container move by ``main_device`` (a robotic arm) from one device position to another.

    Attributes:
        origin_device / target_device: the devices moved from and to.
        origin_pos / destination_pos: the positions (slot numbers from 0).
    """

    origin_device: DeviceInfo | None = None
    target_device: DeviceInfo | None = None
    origin_pos: int = 0
    destination_pos: int = 0
