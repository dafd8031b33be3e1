"""Typed pydantic models of the IPC-CFX messages that pyWATS maps to domain events.

Field names are snake_case; each field's alias is its CFX (PascalCase) name, and validation matches CFX
names case-insensitively (``TransactionID`` and ``TransactionId`` both fill ``transaction_id``) and drops
``$type`` members, as the CFX SDK does. Members a model does not name are kept as extra attributes, so
vendor extensions are not lost. Enumerations (results, methods, severities) are read in every form the
SDK's ``StringEnumConverter`` reads (name in any case, numeric string, JSON integer; see
``pywats_cfx.enums``) and hold the SDK member name (``"Passed"``); a value outside the SDK's declaration is
kept as sent (an ``int`` for a number), because the SDK accepts it too and CFX adds members between versions.

Use ``parse_message(envelope)`` to get the typed model of an envelope's body.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_pascal

from . import enums
from .enums import CFXEnum, InvalidEnumValue
from .envelope import CFXEnvelope
from .errors import InvalidMessageBodyError
from .scalars import read_bool, read_datetime_text, read_timespan_seconds, refuse_bool
from .states import state_code

__all__ = [
    "MESSAGE_MODELS",
    "ActiveRecipe",
    "CFXMessage",
    "CFXModel",
    "Calibration",
    "CalibrationPerformed",
    "ComponentDesignator",
    "ConsumedMaterial",
    "Defect",
    "EndpointConnected",
    "EndpointShuttingDown",
    "EnergyConsumed",
    "Fault",
    "FaultAcknowledged",
    "FaultCleared",
    "FaultOccurred",
    "Heartbeat",
    "InspectedUnit",
    "Inspection",
    "InstalledComponent",
    "InstalledMaterial",
    "MaintenancePerformed",
    "MaintenanceTask",
    "MaterialCarrier",
    "MaterialLocation",
    "MaterialPackage",
    "MaterialsConsumed",
    "MaterialsInstalled",
    "MaterialsLoaded",
    "MaterialsUninstalled",
    "MaterialsUnloaded",
    "Measurement",
    "NumericValue",
    "Operator",
    "OperatorActivated",
    "OperatorDeactivated",
    "PerformanceImpact",
    "ProcessDataRecorded",
    "ProcessedUnit",
    "Reading",
    "ReadingsRecorded",
    "Recipe",
    "RecipeActivated",
    "RecipeIdentifier",
    "Repair",
    "RepairedUnit",
    "Stage",
    "StationOffline",
    "StationOnline",
    "StationStateChanged",
    "Symptom",
    "Test",
    "TestedUnit",
    "Tool",
    "ToolUsed",
    "ToolsUsed",
    "UninstalledMaterial",
    "UnitPosition",
    "UnitsArrived",
    "UnitsDeparted",
    "UnitsDisqualified",
    "UnitsInitialized",
    "UnitsInspected",
    "UnitsLoaded",
    "UnitsProcessed",
    "UnitsRepaired",
    "UnitsTested",
    "UnitsUnloaded",
    "WorkCompleted",
    "WorkOrderIdentifier",
    "WorkStageCompleted",
    "WorkStageStarted",
    "WorkStarted",
    "message_model",
    "parse_message",
]

_ALIASES: dict[type, dict[str, str]] = {}
# Per model: CFX names (as aliased) of its list and dict members, whose null reads as empty.
_EMPTY_WHEN_NULL: dict[type, dict[str, type]] = {}


def _enum_reader(table: CFXEnum) -> Any:
    def read(value: Any) -> Any:
        try:
            member = table.read(value)
        except InvalidEnumValue as exc:
            raise ValueError(str(exc)) from None
        return None if member is None else member.wire

    return read


def _timespan(value: Any) -> timedelta | None:
    seconds = read_timespan_seconds(value)
    return None if seconds is None else timedelta(seconds=seconds)


# Scalar field types read as the SDK's Newtonsoft reader reads them (see ``pywats_cfx.scalars``): the
# adapters use the same rules, so both accept and refuse the same bodies.
CFXBool: TypeAlias = Annotated[bool | None, BeforeValidator(read_bool)]
CFXInt: TypeAlias = Annotated[int | None, BeforeValidator(refuse_bool)]
CFXFloat: TypeAlias = Annotated[float | None, BeforeValidator(refuse_bool)]
CFXDateTime: TypeAlias = Annotated[datetime | None, BeforeValidator(read_datetime_text)]
CFXTimeSpan: TypeAlias = Annotated[timedelta | None, BeforeValidator(_timespan)]

# Field types of the SDK enumerations: the member name, or an unknown value as sent (int or text).
TestResultValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.TEST_RESULT))]
TestMethodValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.TEST_METHOD))]
InspectionMethodValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.INSPECTION_METHOD))]
WorkResultValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.WORK_RESULT))]
FaultSeverityValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.FAULT_SEVERITY))]
FaultCauseValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.FAULT_CAUSE))]
SideLocationValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.SIDE_LOCATION))]
AccessTypeValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.ACCESS_TYPE))]
UnitStatusValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.UNIT_STATUS))]
DisqualificationReasonValue: TypeAlias = Annotated[
    str | int | None, BeforeValidator(_enum_reader(enums.DISQUALIFICATION_REASON))
]
ActorTypeValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.ACTOR_TYPE))]


class CFXModel(BaseModel):
    """Base of every CFX structure: case-insensitive CFX names, ``$type`` dropped, extra members kept."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _cfx_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        aliases = _ALIASES.get(cls)
        if aliases is None:
            aliases = {}
            # Map to the CFX alias, not the field name, so validation errors name the CFX field.
            for name, info in cls.model_fields.items():
                aliases[name.lower()] = info.alias or name
                aliases[(info.alias or name).lower()] = info.alias or name
            _ALIASES[cls] = aliases
        empty = _EMPTY_WHEN_NULL.get(cls)
        if empty is None:
            empty = {}
            for name, info in cls.model_fields.items():
                factory = info.default_factory
                if factory is list or factory is dict:
                    empty[info.alias or name] = factory
            _EMPTY_WHEN_NULL[cls] = empty
        out: dict[str, Any] = {}
        for key, value in data.items():
            if not isinstance(key, str) or key.lower() == "$type":
                continue
            name = aliases.get(key.lower(), key)
            # The SDK writes an unset List<T> or Dictionary as null; it means "none".
            out[name] = empty[name]() if value is None and name in empty else value
        return out


class CFXMessage(CFXModel):
    """Base of message bodies; ``MESSAGE_NAME`` is the full CFX message name."""

    MESSAGE_NAME: ClassVar[str] = ""


class Operator(CFXModel):
    """``CFX.Structures.Operator``: a person acting on the line (tester, inspector, maintenance)."""

    operator_identifier: str | None = None
    actor_type: ActorTypeValue = None
    last_name: str | None = None
    first_name: str | None = None
    login_name: str | None = None


class NumericValue(CFXModel):
    """``CFX.Structures.NumericValue``: a measured number with units and acceptance limits."""

    value: CFXFloat = None
    value_units: str | None = None
    expected_value: CFXFloat = None
    expected_value_units: str | None = None
    minimum_acceptable_value: CFXFloat = None
    maximum_acceptable_value: CFXFloat = None


class Measurement(CFXModel):
    """``CFX.Structures.Measurement`` (and subtypes such as ``NumericMeasurement``)."""

    unique_identifier: str | None = None
    measurement_name: str | None = None
    time_recorded: CFXDateTime = None
    sequence: CFXInt = None
    result: TestResultValue = None
    crds: str | None = Field(default=None, alias="CRDs")
    measured_value: NumericValue | None = None
    #: ``BooleanMeasurement``/``TextMeasurement`` (CFX/Structures/BooleanMeasurement.cs, TextMeasurement.cs):
    #: the reading and what was expected, as sent (bool or text).
    value: Any = None
    expected_value: Any = None


class UnitPosition(CFXModel):
    """``CFX.Structures.UnitPosition``: a unit (or a position on a panel/carrier) being processed."""

    unit_identifier: str | None = None
    position_number: CFXInt = None
    position_name: str | None = None
    x: CFXFloat = None
    y: CFXFloat = None
    rotation: CFXFloat = None
    flip_x: CFXBool = None
    flip_y: CFXBool = None
    status: UnitStatusValue = None


class ComponentDesignator(CFXModel):
    """``CFX.Structures.ComponentDesignator``: reference designator and part number on a unit."""

    reference_designator: str | None = None
    unit_position: UnitPosition | None = None
    part_number: str | None = None


class Symptom(CFXModel):
    """``CFX.Structures.Symptom``: what a failing test saw."""

    unique_identifier: str | None = None
    symptom_code: str | None = None
    symptom_category: str | None = None
    description: str | None = None
    components_of_interest: list[ComponentDesignator] = Field(default_factory=list)


class Defect(CFXModel):
    """``CFX.Structures.Defect``: a defect found by a test or an inspection."""

    unique_identifier: str | None = None
    defect_code: str | None = None
    defect_category: str | None = None
    description: str | None = None
    component_of_interest: ComponentDesignator | None = None
    priority: CFXInt = None
    confidence_level: CFXFloat = None


class Test(CFXModel):
    """``CFX.Structures.Test``: one test run on a unit."""

    unique_identifier: str | None = None
    test_name: str | None = None
    test_start_time: CFXDateTime = None
    test_end_time: CFXDateTime = None
    result: TestResultValue = None
    symptoms_found: list[Symptom] = Field(default_factory=list)
    defects_found: list[Defect] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)


class TestedUnit(CFXModel):
    """``CFX.Structures.TestedUnit``: the tests of one unit (or panel position)."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    overall_result: TestResultValue = None
    tests: list[Test] = Field(default_factory=list)


class Inspection(CFXModel):
    """``CFX.Structures.Inspection``: one inspection step on a unit."""

    unique_identifier: str | None = None
    inspection_name: str | None = None
    inspection_start_time: CFXDateTime = None
    inspection_end_time: CFXDateTime = None
    result: TestResultValue = None
    defects_found: list[Defect] = Field(default_factory=list)
    symptoms: list[Symptom] = Field(default_factory=list)
    measurements: list[Measurement] = Field(default_factory=list)


class InspectedUnit(CFXModel):
    """``CFX.Structures.InspectedUnit`` (also used for ``InspectedPanel``)."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    overall_result: TestResultValue = None
    inspections: list[Inspection] = Field(default_factory=list)


class WorkOrderIdentifier(CFXModel):
    """``CFX.Structures.WorkOrderIdentifier``: a work order and its batch."""

    work_order_id: str | None = None
    batch: str | None = None


class MaterialCarrier(CFXModel):
    """``CFX.Structures.MaterialCarrier``: a feeder, tray carrier or cart holding material packages."""

    unique_identifier: str | None = None
    name: str | None = None


class RecipeIdentifier(CFXModel):
    """``CFX.Structures.RecipeIdentifier``: a recipe's name and revision."""

    recipe_name: str | None = None
    revision: str | None = None


class Recipe(CFXModel):
    """``CFX.Structures.Recipe`` (the members pyWATS reads; the rest kept as extras)."""

    name: str | None = None
    revision: str | None = None


class Stage(CFXModel):
    """``CFX.Structures.Stage``: a zone of a machine."""

    stage_sequence: CFXInt = None
    stage_name: str | None = None
    stage_type: str | None = None


class MaterialPackage(CFXModel):
    """``CFX.Structures.MaterialPackage`` (and ``MaterialPackageDetailed``): a reel, tray, stick..."""

    unique_identifier: str | None = None
    internal_part_number: str | None = None
    internal_package_name: str | None = None
    quantity: CFXFloat = None
    #: The lot (CFX/Structures/MaterialPackage.cs ``BatchId``; the SDK's MaterialPackage has no lot code).
    batch_id: str | None = None
    #: Only in ``MaterialPackageDetail`` (CFX/Structures/MaterialPackageDetail.cs).
    manufacturer_lot_code: str | None = None


class MaterialLocation(CFXModel):
    """``CFX.Structures.MaterialLocation``: where a material package sits (slot, feeder)."""

    location_identifier: str | None = None
    location_name: str | None = None
    material_package: MaterialPackage | None = None
    carrier_information: MaterialCarrier | None = None


class InstalledComponent(CFXModel):
    """``CFX.Structures.InstalledComponent``: one placement on a unit."""

    reference_designator: str | None = None
    installation_time: CFXDateTime = None


class InstalledMaterial(CFXModel):
    """``CFX.Structures.InstalledMaterial``: material installed on one unit."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    quantity_installed: CFXFloat = None
    quantity_non_installed: CFXFloat = None
    material: MaterialPackage | None = None
    carrier_location: MaterialLocation | None = None
    installed_components: list[InstalledComponent] = Field(default_factory=list)


class ActiveRecipe(CFXModel):
    """``CFX.Structures.ActiveRecipe``: the recipe active on a lane or stage (``Heartbeat.ActiveRecipes``)."""

    lane: CFXInt = None
    stage: Stage | None = None
    recipe_identifier: RecipeIdentifier | None = None
    recipe: Recipe | None = None


class Fault(CFXModel):
    """``CFX.Structures.Fault``: an equipment fault (subtypes add members, kept as extras)."""

    transaction_id: str | None = Field(default=None, alias="TransactionID")
    cause: FaultCauseValue = None
    severity: FaultSeverityValue = None
    fault_code: str | None = None
    fault_occurrence_id: str | None = None
    lane: CFXInt = None
    stage: Stage | None = None
    side_location: SideLocationValue = None
    access_type: AccessTypeValue = None
    description: str | None = None
    description_translations: dict[str, str | None] = Field(default_factory=dict)
    occurred_at: CFXDateTime = None
    due_date_time: CFXDateTime = None


class UnitsTested(CFXMessage):
    """``CFX.Production.TestAndInspection.UnitsTested``: results of tests on one or more units."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.TestAndInspection.UnitsTested"
    transaction_id: str | None = Field(default=None, alias="TransactionId")
    test_method: TestMethodValue = None
    tester: Operator | None = None
    recipe_name: str | None = None
    recipe_revision: str | None = None
    tested_units: list[TestedUnit] = Field(default_factory=list)


class UnitsInspected(CFXMessage):
    """``CFX.Production.TestAndInspection.UnitsInspected``: results of inspections (AOI, SPI, AXI, human)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.TestAndInspection.UnitsInspected"
    transaction_id: str | None = Field(default=None, alias="TransactionId")
    inspection_method: InspectionMethodValue = None
    inspector: Operator | None = None
    recipe_name: str | None = None
    recipe_revision: str | None = None
    inspected_units: list[InspectedUnit] = Field(default_factory=list)
    inspected_panel: InspectedUnit | None = None


class WorkStarted(CFXMessage):
    """``CFX.Production.WorkStarted``: a work transaction began on one or more units."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.WorkStarted"
    transaction_id: str | None = Field(default=None, alias="TransactionID")
    primary_identifier: str | None = None
    hermes_identifier: str | None = None
    lane: CFXInt = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)
    recipe_name: str | None = None
    revision: str | None = None
    work_order_identifier: WorkOrderIdentifier | None = None


class WorkCompleted(CFXMessage):
    """``CFX.Production.WorkCompleted``: a work transaction ended (``Result``: a WorkResult)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.WorkCompleted"
    transaction_id: str | None = Field(default=None, alias="TransactionID")
    result: WorkResultValue = None
    primary_identifier: str | None = None
    hermes_identifier: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)
    stage: Stage | None = None
    #: Not in CFX/Production/WorkCompleted.cs; read (as for WorkStarted) when a sender adds them.
    lane: CFXInt = None
    recipe_name: str | None = None
    revision: str | None = None
    work_order_identifier: WorkOrderIdentifier | None = None


class UnitsArrived(CFXMessage):
    """``CFX.Production.UnitsArrived``: units entered a station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.UnitsArrived"
    primary_identifier: str | None = None
    hermes_identifier: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)
    lane: CFXInt = None


class UnitsDeparted(CFXMessage):
    """``CFX.Production.UnitsDeparted``: units left a station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.UnitsDeparted"
    primary_identifier: str | None = None
    hermes_identifier: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)
    lane: CFXInt = None


class UnitsDisqualified(CFXMessage):
    """``CFX.Production.UnitsDisqualified``: units taken out of production (``Reason``)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.UnitsDisqualified"
    reason: DisqualificationReasonValue = None
    comments: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)


class MaterialsInstalled(CFXMessage):
    """``CFX.Production.Assembly.MaterialsInstalled``: materials placed on units."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.Assembly.MaterialsInstalled"
    transaction_id: str | None = Field(default=None, alias="TransactionId")
    installed_materials: list[InstalledMaterial] = Field(default_factory=list)


class MaterialsLoaded(CFXMessage):
    """``CFX.Materials.Storage.MaterialsLoaded``: material packages loaded at a station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Materials.Storage.MaterialsLoaded"
    materials: list[MaterialLocation] = Field(default_factory=list)


class FaultOccurred(CFXMessage):
    """``CFX.ResourcePerformance.FaultOccurred``: a fault was raised at the sending station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.FaultOccurred"
    fault: Fault


class FaultCleared(CFXMessage):
    """``CFX.ResourcePerformance.FaultCleared``: a fault was cleared (``FaultOccurrenceId``)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.FaultCleared"
    fault_occurrence_id: str | None = None
    operator: Operator | None = None


class FaultAcknowledged(CFXMessage):
    """``CFX.ResourcePerformance.FaultAcknowledged``: an operator acknowledged a fault."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.FaultAcknowledged"
    fault_occurrence_id: str | None = None
    operator: Operator | None = None


class StationStateChanged(CFXMessage):
    """``CFX.ResourcePerformance.StationStateChanged``: SEMI E10 state transition of a station.

    ``old_state``/``new_state`` are integer E10 codes (see ``pywats_cfx.states``), whatever form the wire
    used; ``old_state_duration`` is read from the .NET TimeSpan text (``"00:01:25"``).
    """

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.StationStateChanged"
    old_state: CFXInt = None
    old_state_duration: CFXTimeSpan = None
    new_state: int
    related_fault: Fault | None = None

    @field_validator("old_state", "new_state", mode="before")
    @classmethod
    def _e10(cls, value: Any, info: Any) -> Any:
        if value is None:
            return None
        try:
            return state_code(value)
        except InvalidMessageBodyError as exc:
            raise ValueError(exc.reason) from None


class EndpointConnected(CFXMessage):
    """``CFX.EndpointConnected``: an endpoint came online."""

    MESSAGE_NAME: ClassVar[str] = "CFX.EndpointConnected"
    cfx_handle: str | None = Field(default=None, alias="CFXHandle")
    request_network_uri: str | None = None
    request_target_address: str | None = None


class EndpointShuttingDown(CFXMessage):
    """``CFX.EndpointShuttingDown``: an endpoint is going offline."""

    MESSAGE_NAME: ClassVar[str] = "CFX.EndpointShuttingDown"
    cfx_handle: str | None = Field(default=None, alias="CFXHandle")


class Heartbeat(CFXMessage):
    """``CFX.Heartbeat``: an endpoint is alive (sent every minute by default)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Heartbeat"
    cfx_handle: str | None = Field(default=None, alias="CFXHandle")
    heartbeat_frequency: CFXTimeSpan = None
    active_faults: list[Fault] = Field(default_factory=list)
    active_recipes: list[ActiveRecipe] = Field(default_factory=list)


# --- structures and messages mapped for issue 11, point 7 (CFX 2.1 declarations) ------------------------

ProcessingResultValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.PROCESSING_RESULT))]
RepairResultValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.REPAIR_RESULT))]
MaintenanceTypeValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.MAINTENANCE_TYPE))]
UninstalledReasonValue: TypeAlias = Annotated[
    str | int | None, BeforeValidator(_enum_reader(enums.UNINSTALLED_REASON))
]
CalibrationTypeValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.CALIBRATION_TYPE))]
OperationStatusValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.OPERATION_STATUS))]
DataTypeValue: TypeAlias = Annotated[str | int | None, BeforeValidator(_enum_reader(enums.DATA_TYPE))]
PerformanceImpactCauseValue: TypeAlias = Annotated[
    str | int | None, BeforeValidator(_enum_reader(enums.PERFORMANCE_IMPACT_CAUSE))
]


class ProcessedUnit(CFXModel):
    """``CFX.Structures.ProcessedUnit``: one unit's result and process data (a ``ProcessData`` subtype, as sent)."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    unit_result: ProcessingResultValue = None
    unit_process_data: dict[str, Any] | None = None


class Repair(CFXModel):
    """``CFX.Structures.Repair``: one repair on a unit."""

    unique_identifier: str | None = None
    repair_name: str | None = None
    repair_start_time: CFXDateTime = None
    repair_end_time: CFXDateTime = None
    comments: str | None = None
    component_of_interest: ComponentDesignator | None = None
    related_defect_identifiers: list[str | None] = Field(default_factory=list)
    related_symptom_identifiers: list[str | None] = Field(default_factory=list)
    result: RepairResultValue = None
    error: str | None = None


class RepairedUnit(CFXModel):
    """``CFX.Structures.RepairedUnit``: the repairs of one unit."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    overall_result: RepairResultValue = None
    repairs: list[Repair] = Field(default_factory=list)


class Tool(CFXModel):
    """``CFX.Structures.Tool`` (subtypes such as ``SMTHeadAndNozzle`` add members, kept as extras)."""

    unique_identifier: str | None = None
    name: str | None = None


class ToolUsed(CFXModel):
    """``CFX.Structures.ToolUsed``: a tool used on a unit, with its cycles."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    tool: Tool | None = None
    usage_cycles: CFXInt = None
    installed_components: list[InstalledComponent] = Field(default_factory=list)


class Reading(CFXModel):
    """``CFX.Structures.Reading``: a reading; values are text, ``BinaryValue`` base64 (.NET byte[])."""

    reading_identifier: str | None = None
    time_recorded: CFXDateTime = None
    reading_sequence: CFXInt = None
    result: TestResultValue = None
    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    components: list[ComponentDesignator] = Field(default_factory=list)
    value_data_type: DataTypeValue = None
    value_units: str | None = None
    value_mime_type: str | None = None
    value: Any = None
    binary_value: str | None = None
    expected_value: Any = None
    expected_value_units: str | None = None
    minimum_acceptable_value: Any = None
    maximum_acceptable_value: Any = None


class ConsumedMaterial(CFXModel):
    """``CFX.Structures.ConsumedMaterial``: quantities taken from one material location."""

    material_location: MaterialLocation | None = None
    quantity_used: CFXFloat = None
    quantity_spoiled: CFXFloat = None
    remaining_quantity: CFXFloat = None


class MaintenanceTask(CFXModel):
    """``CFX.Structures.MaintenanceTask``: one task of a maintenance job (``ManHoursConsumed`` in hours)."""

    task: str | None = None
    task_id: str | None = None
    operator: Operator | None = None
    man_hours_consumed: CFXFloat = None


class Calibration(CFXModel):
    """``CFX.Structures.Calibration``: a calibration and its measurements (as sent)."""

    calibration_code: str | None = None
    calibration_type: CalibrationTypeValue = None
    comments: str | None = None
    status: OperationStatusValue = None
    calibration_time: CFXDateTime = None
    measurements: list[dict[str, Any]] = Field(default_factory=list)


class UninstalledMaterial(CFXModel):
    """``CFX.Structures.UninstalledMaterial``: material removed from one unit."""

    unit_identifier: str | None = None
    unit_position_number: CFXInt = None
    quantity_uninstalled: CFXFloat = None
    reason: UninstalledReasonValue = None
    material: MaterialPackage | None = None
    uninstalled_components: list[InstalledComponent] = Field(default_factory=list)


class PerformanceImpact(CFXModel):
    """``CFX.Structures.PerformanceImpact``: why a stage ran slower than its recipe expects."""

    cause: PerformanceImpactCauseValue = None


class UnitsProcessed(CFXMessage):
    """``CFX.Production.Processing.UnitsProcessed``: process data of units (``ProcessData`` subtypes as sent)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.Processing.UnitsProcessed"
    transaction_id: str | None = None
    overall_result: ProcessingResultValue = None
    common_process_data: dict[str, Any] | None = None
    unit_process_data: list[ProcessedUnit] = Field(default_factory=list)


class UnitsRepaired(CFXMessage):
    """``CFX.Production.ReworkAndRepair.UnitsRepaired``: repairs done on units."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.ReworkAndRepair.UnitsRepaired"
    transaction_id: str | None = None
    repair_operator: Operator | None = None
    repaired_units: list[RepairedUnit] = Field(default_factory=list)


class UnitsInitialized(CFXMessage):
    """``CFX.Production.UnitsInitialized``: units given identities (serialised) for a work order."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.UnitsInitialized"
    transaction_id: str | None = None
    primary_identifier: str | None = None
    hermes_identifier: str | None = None
    work_order_identifier: WorkOrderIdentifier | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)


class WorkStageStarted(CFXMessage):
    """``CFX.Production.WorkStageStarted``: work began in one stage (zone) of a station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.WorkStageStarted"
    transaction_id: str | None = None
    stage: Stage | None = None


class WorkStageCompleted(CFXMessage):
    """``CFX.Production.WorkStageCompleted``: work ended in one stage (``Result``: a WorkResult)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.WorkStageCompleted"
    transaction_id: str | None = None
    stage: Stage | None = None
    result: WorkResultValue = None
    performance_impacts: list[PerformanceImpact] = Field(default_factory=list)


class UnitsLoaded(CFXMessage):
    """``CFX.Production.LoadingAndUnloading.UnitsLoaded``: units put into a carrier (``UniqueIdentifier``)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.LoadingAndUnloading.UnitsLoaded"
    unique_identifier: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)


class UnitsUnloaded(CFXMessage):
    """``CFX.Production.LoadingAndUnloading.UnitsUnloaded``: units taken out of a carrier."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.LoadingAndUnloading.UnitsUnloaded"
    unique_identifier: str | None = None
    unit_count: CFXInt = None
    units: list[UnitPosition] = Field(default_factory=list)


class ToolsUsed(CFXMessage):
    """``CFX.Production.ToolsUsed``: tools used during a work transaction."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.ToolsUsed"
    transaction_id: str | None = None
    used_tools: list[ToolUsed] = Field(default_factory=list)


class RecipeActivated(CFXMessage):
    """``CFX.Production.RecipeActivated``: a recipe became active (cycle and work times in ms)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.RecipeActivated"
    recipe_name: str | None = None
    revision: str | None = None
    lane: CFXInt = None
    stage: Stage | None = None
    expected_cycle_time: CFXFloat = None
    expected_work_time: CFXFloat = None
    expected_units_per_work_transaction: CFXFloat = None
    number_of_components_per_unit: CFXFloat = None
    work_order_identifier: WorkOrderIdentifier | None = None
    target_quantity: CFXFloat = None


class OperatorActivated(CFXMessage):
    """``CFX.Production.OperatorActivated``: an operator logged on at a station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.OperatorActivated"
    operator: Operator | None = None


class OperatorDeactivated(CFXMessage):
    """``CFX.Production.OperatorDeactivated``: an operator logged off."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.OperatorDeactivated"
    operator: Operator | None = None


class ReadingsRecorded(CFXMessage):
    """``CFX.Production.ReadingsRecorded``: readings taken during production."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.ReadingsRecorded"
    transaction_id: str | None = None
    readings: list[Reading] = Field(default_factory=list)


class ProcessDataRecorded(CFXMessage):
    """``CFX.ResourcePerformance.ProcessDataRecorded``: station-level process data (a subtype, as sent)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.ProcessDataRecorded"
    process_data: dict[str, Any] | None = None


class MaintenancePerformed(CFXMessage):
    """``CFX.ResourcePerformance.MaintenancePerformed``: maintenance done on the station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.MaintenancePerformed"
    maintenance_type: MaintenanceTypeValue = None
    maintenance_order_number: str | None = None
    maintenance_job_code: str | None = None
    consumed_materials: list[ConsumedMaterial] = Field(default_factory=list)
    tasks: list[MaintenanceTask] = Field(default_factory=list)


class CalibrationPerformed(CFXMessage):
    """``CFX.ResourcePerformance.CalibrationPerformed``: a calibration was done."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.CalibrationPerformed"
    calibration: Calibration | None = None
    transaction_id: str | None = Field(default=None, alias="TransactionID")


class StationOffline(CFXMessage):
    """``CFX.ResourcePerformance.StationOffline``: the station went offline (no members)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.StationOffline"


class StationOnline(CFXMessage):
    """``CFX.ResourcePerformance.StationOnline``: back online (``OfflineDuration``: .NET TimeSpan text)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.StationOnline"
    offline_duration: CFXTimeSpan = None


class EnergyConsumed(CFXMessage):
    """``CFX.ResourcePerformance.EnergyConsumed``: energy (kWh), power (W), current (A), voltage (V) and
    frequency (Hz) over a period; the ``*RYB`` lists hold one value per phase (red, yellow, blue)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.ResourcePerformance.EnergyConsumed"
    start_time: CFXDateTime = None
    end_time: CFXDateTime = None
    energy_used: CFXFloat = None
    peak_power: CFXFloat = None
    minimum_power: CFXFloat = None
    mean_power: CFXFloat = None
    power_now: CFXFloat = None
    power_factor_now: CFXFloat = None
    peak_current: CFXFloat = None
    minimum_current: CFXFloat = None
    mean_current: CFXFloat = None
    current_now: CFXFloat = None
    peak_voltage: CFXFloat = None
    minimum_voltage: CFXFloat = None
    mean_voltage: CFXFloat = None
    voltage_now: CFXFloat = None
    peak_frequency: CFXFloat = None
    minimum_frequency: CFXFloat = None
    mean_frequency: CFXFloat = None
    frequency_now: CFXFloat = None
    three_phase_neutral_current_now: CFXFloat = None
    peak_power_ryb: list[CFXFloat] = Field(default_factory=list, alias="PeakPowerRYB")
    minimum_power_ryb: list[CFXFloat] = Field(default_factory=list, alias="MinimumPowerRYB")
    mean_power_ryb: list[CFXFloat] = Field(default_factory=list, alias="MeanPowerRYB")
    power_now_ryb: list[CFXFloat] = Field(default_factory=list, alias="PowerNowRYB")
    power_factor_now_ryb: list[CFXFloat] = Field(default_factory=list, alias="PowerFactorNowRYB")
    peak_current_ryb: list[CFXFloat] = Field(default_factory=list, alias="PeakCurrentRYB")
    minimum_current_ryb: list[CFXFloat] = Field(default_factory=list, alias="MinimumCurrentRYB")
    mean_current_ryb: list[CFXFloat] = Field(default_factory=list, alias="MeanCurrentRYB")
    current_now_ryb: list[CFXFloat] = Field(default_factory=list, alias="CurrentNowRYB")
    peak_voltage_ryb: list[CFXFloat] = Field(default_factory=list, alias="PeakVoltageRYB")
    minimum_voltage_ryb: list[CFXFloat] = Field(default_factory=list, alias="MinimumVoltageRYB")
    mean_voltage_ryb: list[CFXFloat] = Field(default_factory=list, alias="MeanVoltageRYB")
    voltage_now_ryb: list[CFXFloat] = Field(default_factory=list, alias="VoltageNowRYB")
    subsystem_name: str | None = None
    consumption_details: list[dict[str, Any]] = Field(default_factory=list)


class MaterialsConsumed(CFXMessage):
    """``CFX.Materials.Management.MaterialsConsumed``: material used up (not installed on units)."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Materials.Management.MaterialsConsumed"
    consumed_materials: list[ConsumedMaterial] = Field(default_factory=list)


class MaterialsUninstalled(CFXMessage):
    """``CFX.Production.Assembly.MaterialsUninstalled``: materials removed from units."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Production.Assembly.MaterialsUninstalled"
    transaction_id: str | None = None
    uninstalled_materials: list[UninstalledMaterial] = Field(default_factory=list)


class MaterialsUnloaded(CFXMessage):
    """``CFX.Materials.Storage.MaterialsUnloaded``: material packages taken off the station."""

    MESSAGE_NAME: ClassVar[str] = "CFX.Materials.Storage.MaterialsUnloaded"
    material_package_identifiers: list[str | None] = Field(default_factory=list)


#: Full CFX message name -> typed model.
MESSAGE_MODELS: dict[str, type[CFXMessage]] = {
    model.MESSAGE_NAME: model
    for model in (
        UnitsTested,
        UnitsInspected,
        WorkStarted,
        WorkCompleted,
        UnitsArrived,
        UnitsDeparted,
        UnitsDisqualified,
        MaterialsInstalled,
        MaterialsLoaded,
        FaultOccurred,
        FaultCleared,
        FaultAcknowledged,
        StationStateChanged,
        EndpointConnected,
        EndpointShuttingDown,
        Heartbeat,
        UnitsProcessed,
        UnitsRepaired,
        UnitsInitialized,
        WorkStageStarted,
        WorkStageCompleted,
        UnitsLoaded,
        UnitsUnloaded,
        ToolsUsed,
        RecipeActivated,
        OperatorActivated,
        OperatorDeactivated,
        ReadingsRecorded,
        ProcessDataRecorded,
        MaintenancePerformed,
        CalibrationPerformed,
        StationOffline,
        StationOnline,
        EnergyConsumed,
        MaterialsConsumed,
        MaterialsUninstalled,
        MaterialsUnloaded,
    )
}


def message_model(message_name: str) -> type[CFXMessage] | None:
    """The typed model of a CFX message name, or None when pyWATS has none for it."""
    return MESSAGE_MODELS.get(message_name)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def parse_message(env: CFXEnvelope, *, origin: str = "") -> CFXMessage | None:
    """Validate an envelope's ``MessageBody`` against the typed model of its ``MessageName``.

    Args:
        env: a parsed envelope.
        origin: where it came from, for error messages.

    Returns:
        The typed body, or None when the message has no model here (see ``MESSAGE_MODELS``).

    Raises:
        InvalidMessageBodyError: the body does not fit the model; the message names the field by its
            CFX path (``TestedUnits[0].Tests``).
    """
    model = MESSAGE_MODELS.get(env.message_name)
    if model is None:
        return None
    try:
        return model.model_validate(env.message_body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidMessageBodyError(_field_path(first["loc"]), first["msg"], origin) from None
