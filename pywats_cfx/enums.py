"""IPC-CFX enumerations, read the way the CFX SDK reads them.

Every enumeration of the SDK's ``CFX/Structures/*.cs`` carries ``[JsonConverter(typeof(StringEnumConverter))]``
(Newtonsoft.Json), so a conforming reader accepts four spellings of one member:

* the member name, in any letter case (``"Passed"``, ``"passed"``, ``"PASSED"``);
* the ``[EnumMember(Value = ...)]`` text where the declaration gives one (only ``ResourceState`` does: ``"2200"``);
* a numeric string (``"1"``, ``" +1 "``): Newtonsoft parses it as the underlying integer;
* a JSON integer (``1``): the member's value, which is its position in the declaration unless the
  declaration assigns numbers.

An integer (or numeric string) outside the declaration is accepted by the SDK too (``Enum.ToObject`` does not
check), so here it is not an error either: ``read_enum`` returns an ``EnumValue`` that keeps the number and
says it is unknown. A name outside the declaration is kept as sent and marked unknown as well, because a
newer CFX version may add members an older table lacks. JSON ``true``/``false``, fractional numbers, arrays
and objects are refused, as the SDK refuses them (``Unexpected token ... when parsing enum``).

Each table below is taken from the SDK declaration it names (IPCConnectedFactoryExchange/CFX, the
``CFX/Structures`` file of the same name, CFX 2.1); member order is the declaration order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACCESS_TYPE",
    "ACTOR_TYPE",
    "CALIBRATION_TYPE",
    "DATA_TYPE",
    "DISQUALIFICATION_REASON",
    "ENUMS",
    "FAULT_CAUSE",
    "FAULT_SEVERITY",
    "INSPECTION_METHOD",
    "MAINTENANCE_TYPE",
    "OPERATION_STATUS",
    "PERFORMANCE_IMPACT_CAUSE",
    "PROCESSING_RESULT",
    "REPAIR_RESULT",
    "SIDE_LOCATION",
    "TEST_METHOD",
    "TEST_RESULT",
    "UNINSTALLED_REASON",
    "UNIT_STATUS",
    "WORK_RESULT",
    "CFXEnum",
    "EnumValue",
    "InvalidEnumValue",
]


class InvalidEnumValue(ValueError):
    """A value no SDK reader turns into a member (a boolean, a fraction, an object, ...).

    Raised by ``CFXEnum.read`` with the reason only; callers wrap it into ``InvalidMessageBodyError`` with
    the field path and the input's origin.
    """


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enumeration value as read from the wire.

    Attributes:
        enum: the SDK enumeration's name (``TestResult``).
        name: the SDK member name (``Passed``); for an unknown value the text as sent, or None when an
            integer was sent.
        number: the member's integer value, or the integer sent; None for an unknown name.
        known: False when the value is not in the SDK declaration.
    """

    enum: str
    name: str | None
    number: int | None
    known: bool

    @property
    def wire(self) -> str | int:
        """What to show for this value: the member name, or for an unknown value what was sent."""
        if self.name is not None:
            return self.name
        assert self.number is not None
        return self.number


@dataclass(frozen=True, slots=True)
class CFXEnum:
    """The table of one SDK enumeration: member names in declaration order, their values and wire texts.

    Args:
        name: the enumeration's name in the SDK (``TestResult``).
        source: the SDK file that declares it (``CFX/Structures/TestResult.cs``), cited in docs and tests.
        members: member names in declaration order.
        values: the members' integer values when the declaration assigns them; by default the position
            (0, 1, 2, ...), as C# numbers an enum without initialisers.
        enum_members: ``[EnumMember(Value = ...)]`` texts per member, or empty when there are none.
        aliases: further names accepted for a member (lower-cased name -> member name), for spellings that
            other SDKs emit.
    """

    name: str
    source: str
    members: tuple[str, ...]
    values: tuple[int, ...] = ()
    enum_members: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    _by_text: dict[str, EnumValue] = field(init=False, repr=False, compare=False)
    _by_number: dict[int, str] = field(init=False, repr=False, compare=False)
    _number_of: dict[str, int] = field(init=False, repr=False, compare=False)
    _known: dict[int, EnumValue] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = self.values or tuple(range(len(self.members)))
        if len(values) != len(self.members) or (self.enum_members and len(self.enum_members) != len(values)):
            raise ValueError(f"{self.name}: members, values and EnumMember texts differ in length")
        # One EnumValue per member, shared by every read: reading is a dict lookup on the hot path.
        known = {m: EnumValue(self.name, m, v, True) for m, v in zip(self.members, values, strict=True)}
        by_text: dict[str, EnumValue] = {}
        # Exact spellings first so the usual lookup needs no lower-casing; then the case-insensitive forms.
        for member in self.members:
            by_text[member] = known[member]
        for wire, member in zip(self.enum_members, self.members, strict=False):
            by_text.setdefault(wire, known[member])
        for member in self.members:
            by_text.setdefault(member.lower(), known[member])
        for wire, member in zip(self.enum_members, self.members, strict=False):
            by_text.setdefault(wire.lower(), known[member])
        for alias, member in self.aliases.items():
            by_text.setdefault(alias.lower(), known[member])
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_known", dict(zip(values, known.values(), strict=True)))
        object.__setattr__(self, "_by_text", by_text)
        object.__setattr__(self, "_by_number", dict(zip(values, self.members, strict=True)))
        object.__setattr__(self, "_number_of", dict(zip(self.members, values, strict=True)))

    def number_of(self, member: str) -> int:
        """The integer value of a member name as declared (``TEST_RESULT.number_of("Failed") == 1``).

        Raises:
            KeyError: ``member`` is not a member name.
        """
        return self._number_of[member]

    def member_of(self, number: int) -> str | None:
        """The member name of an integer value, or None when the declaration has no such value."""
        return self._by_number.get(number)

    def read(self, value: Any) -> EnumValue | None:
        """Read one wire value as the SDK's ``StringEnumConverter`` reads it.

        Args:
            value: the decoded JSON value: a string (name in any case, ``EnumMember`` text or numeric
                string), an int, or None.

        Returns:
            None for null, an empty or blank string (the SDK's reading of a nullable member); otherwise an
            ``EnumValue``, ``known=False`` for an integer or name outside the declaration.

        Raises:
            InvalidEnumValue: a boolean, a fractional number, an array or an object.
        """
        if value is None:
            return None
        if value.__class__ is str:
            found = self._by_text.get(value)
            if found is not None:
                return found
            text = value.strip()
            if not text:
                return None
            found = self._by_text.get(text.lower())
            if found is not None:
                return found
            # Newtonsoft treats text that starts with a digit or a sign as a number (EnumUtils.ParseEnum).
            if text[0] in "+-" or text[0].isdigit():
                digits = text[1:] if text[0] in "+-" else text
                if digits.isascii() and digits.isdecimal() and len(digits) <= 10:
                    return self._number(int(text))
            return EnumValue(self.name, value, None, False)
        if value.__class__ is int:
            return self._number(value)
        if isinstance(value, bool):
            raise InvalidEnumValue(f"expected a {self.name} name or integer, got a boolean")
        if isinstance(value, int):
            return self._number(int(value))
        if isinstance(value, float):
            raise InvalidEnumValue(f"expected a {self.name} name or integer, got the fraction {value!r}")
        kind = "an array" if isinstance(value, list) else "an object" if isinstance(value, dict) else "a value"
        raise InvalidEnumValue(f"expected a {self.name} name or integer, got {kind}")

    def _number(self, number: int) -> EnumValue:
        found = self._known.get(number)
        return found if found is not None else EnumValue(self.name, None, number, False)


def _sdk(name: str, *members: str) -> CFXEnum:
    return CFXEnum(name, f"CFX/Structures/{name}.cs", members)


#: ``CFX.Structures.TestResult`` (Skipped added in CFX 1.4).
TEST_RESULT = _sdk("TestResult", "Passed", "Failed", "Error", "Aborted", "Skipped")
#: ``CFX.Structures.TestMethod``.
TEST_METHOD = _sdk("TestMethod", "Human", "Automated", "ICT", "FPT", "FCT", "BST")
#: ``CFX.Structures.InspectionMethod``.
INSPECTION_METHOD = _sdk("InspectionMethod", "Human", "AOI", "SPI", "AXI")
#: ``CFX.Structures.WorkResult``.
WORK_RESULT = _sdk("WorkResult", "Completed", "Failed", "Aborted", "Skipped")
#: ``CFX.Structures.FaultSeverity``.
FAULT_SEVERITY = _sdk("FaultSeverity", "Information", "Warning", "Error", "Alarm")
#: ``CFX.Structures.FaultCause``.
FAULT_CAUSE = _sdk(
    "FaultCause",
    "LoadError",
    "UnloadError",
    "AutoSafetyStop",
    "SafetyStop",
    "QualityCheck",
    "RemoteStop",
    "MechanicalFailure",
    "SoftwareFailure",
    "PowerFailure",
    "MissingDocumentation",
    "Refill",
    "MsdExpired",
    "MaterialExpired",
    "MissingComponent",
    "ElectricalFailure",
    "ServicesFailure",
    "ProcessError",
    "RejectedComponent",
)
#: ``CFX.Structures.SideLocation``.
SIDE_LOCATION = _sdk("SideLocation", "Unknown", "Right", "Left", "Both")
#: ``CFX.Structures.AccessType``.
ACCESS_TYPE = _sdk("AccessType", "Unknown", "Ignore", "Local", "Remote")
#: ``CFX.Structures.UnitStatus``.
UNIT_STATUS = _sdk("UnitStatus", "Pass", "Fail", "Scrap", "Skip")
#: ``CFX.Structures.DisqualificationReason``.
DISQUALIFICATION_REASON = _sdk(
    "DisqualificationReason", "DefectiveRepairNotPossible", "DefectiveRepairNotFeasible", "DefectiveMaterials"
)
#: ``CFX.Structures.ActorType``.
ACTOR_TYPE = _sdk("ActorType", "Human", "Robot", "RemoteSystem")

#: ``CFX.Structures.ProcessingResult`` (``UnitsProcessed``).
PROCESSING_RESULT = _sdk("ProcessingResult", "Succeeded", "Failed", "Error", "Aborted", "Skipped")
#: ``CFX.Structures.RepairResult`` (``UnitsRepaired``).
REPAIR_RESULT = _sdk("RepairResult", "RepairSuccessful", "UnableToRepair", "Scrap", "Error", "Aborted")
#: ``CFX.Structures.MaintenanceType`` (``MaintenancePerformed``).
MAINTENANCE_TYPE = _sdk("MaintenanceType", "Preventive", "Inspection", "Repair", "Test")
#: ``CFX.Structures.UninstalledReason`` (``MaterialsUninstalled``).
UNINSTALLED_REASON = _sdk(
    "UninstalledReason", "DefectiveMaterial", "DefectiveInstallation", "IncorrectMaterial", "Other"
)
#: ``CFX.Structures.CalibrationType``; the SDK spells its first member ``Unkwnown`` (sic); ``Unknown`` is read too.
CALIBRATION_TYPE = CFXEnum(
    "CalibrationType",
    "CFX/Structures/CalibrationType.cs",
    (
        "Unkwnown",
        "General",
        "XAxis",
        "YAxis",
        "ZAxis",
        "UnitPosition",
        "TravelRange",
        "SystemIdentification",
        "ZeroPointOffset",
        "BoardCamera",
        "FeedUnitsTable",
        "NozzleChanger",
        "BoardReferenceCorner",
        "ComponentSensorCamera",
        "SegmentOffset",
        "ComponentSensorLightBarrier",
        "ZeroPressure",
        "BoardMapping",
        "HeadMapping",
        "HeadsAndCameras",
        "VacuumTooling",
    ),
    aliases={"Unknown": "Unkwnown"},
)
#: ``CFX.Structures.OperationStatus`` (``Calibration.Status``).
OPERATION_STATUS = _sdk("OperationStatus", "Unknown", "Failed", "Ok")
#: ``CFX.Structures.DataType`` (``Reading.ValueDataType``).
DATA_TYPE = _sdk("DataType", "String", "StringList", "Numeric", "Integer", "Boolean", "Enumeration", "Binary", "Guid")
#: ``CFX.Structures.PerformanceImpactCause`` (``WorkStageCompleted.PerformanceImpacts``).
PERFORMANCE_IMPACT_CAUSE = _sdk(
    "PerformanceImpactCause",
    "AlternativeTrackUsed",
    "DeactivatedSegmentOnHead",
    "VisionSystemDumpAlwaysActivated",
    "AdditionalImageAcquisition",
    "LowFeederSpeed",
    "GangPickNoParallelPick",
)

#: Every table, by SDK enumeration name.
ENUMS: dict[str, CFXEnum] = {
    e.name: e
    for e in (
        TEST_RESULT,
        TEST_METHOD,
        INSPECTION_METHOD,
        WORK_RESULT,
        FAULT_SEVERITY,
        FAULT_CAUSE,
        SIDE_LOCATION,
        ACCESS_TYPE,
        UNIT_STATUS,
        DISQUALIFICATION_REASON,
        ACTOR_TYPE,
        PROCESSING_RESULT,
        REPAIR_RESULT,
        MAINTENANCE_TYPE,
        UNINSTALLED_REASON,
        CALIBRATION_TYPE,
        OPERATION_STATUS,
        DATA_TYPE,
        PERFORMANCE_IMPACT_CAUSE,
    )
}
