"""Typed domain events: pydantic v2 models of the payloads the project's event types carry.

An ``Event`` keeps its ``payload`` as a plain dict, so every transport and the store handle every type the
same way. The models here are the contract of that dict per event type (the typed domain events of the
pyWATS event architecture document: ``TestResultEvent``, ``MaterialInstalledEvent``, ``AssetFaultEvent``,
``AssetStateChangedEvent``, ``WorkStartedEvent``, ``WorkCompletedEvent``, and one per type the IPC-CFX
adapters produce). ``DOMAIN_EVENTS`` maps the event type to its model, ``payload_model`` looks one up and
``typed_payload(event)`` returns the validated model instance; ``pywats-events schema`` writes their JSON
Schema so MQTT, NATS and webhook producers target the same contract.

The contract is derived from what ``pywats_cfx.adapters`` produces (the core never imports a plug-in);
``tests/unit/cfx/test_domain_payloads.py`` keeps the two in step: every key every mapping produces is a
declared field, and every SDK sample's payloads validate with no undeclared member at any depth.

Rules of the models:

- Permissive in presence: producers other than CFX send fewer fields, so every field is optional (``None``
  or an empty list when absent), except the few without which the event means nothing
  (``AssetStateChangedEvent.new_state``). Members a model does not declare are kept (``model_extra``), as
  the event payload is open; the JSON Schema says ``additionalProperties: true``.
- Strict in type: no coercion (``"3"`` is not an integer, ``1`` is not a string, ``1`` is not ``true``).
  Numbers are JSON numbers; a non-finite one is the text Newtonsoft writes (``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``) so event JSON stays RFC 8259 JSON. Date-times are ISO 8601 strings, kept as sent (with
  their UTC offset), checked on validation. Enumeration words are the project's (``pass``) or the IPC-CFX
  SDK member names (``MechanicalFailure``); a value outside the SDK's table is kept as sent (a string or an
  integer) and listed in ``unknown_enum_values``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, overload

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from .errors import NoPayloadModelError, PayloadValidationError
from .event import Event

__all__ = [
    "DOMAIN_EVENTS",
    "ActiveRecipe",
    "AssetCalibrationEvent",
    "AssetFaultAcknowledgedEvent",
    "AssetFaultClearedEvent",
    "AssetFaultEvent",
    "AssetMaintenanceEvent",
    "AssetOfflineEvent",
    "AssetOnlineEvent",
    "AssetStateChangedEvent",
    "ConsumedMaterial",
    "Defect",
    "DomainPayload",
    "EndpointConnectedEvent",
    "EndpointShuttingDownEvent",
    "EnergyConsumedEvent",
    "FaultDetails",
    "HeartbeatEvent",
    "InspectionDefect",
    "InspectionResultEvent",
    "InspectionRun",
    "InstalledComponent",
    "LoadedMaterial",
    "MaintenanceTask",
    "MaterialConsumedEvent",
    "MaterialInstalledEvent",
    "MaterialLoadedEvent",
    "MaterialLocation",
    "MaterialUninstalledEvent",
    "MaterialUnloadedEvent",
    "Measurement",
    "OperatorActivatedEvent",
    "OperatorDeactivatedEvent",
    "Reading",
    "RecipeActivatedEvent",
    "Repair",
    "RepairResultEvent",
    "SensorReadingEvent",
    "StageCompletedEvent",
    "StageStartedEvent",
    "Symptom",
    "TestResultEvent",
    "TestRun",
    "ToolUse",
    "ToolUsedEvent",
    "UnitArrivedEvent",
    "UnitDepartedEvent",
    "UnitDisqualifiedEvent",
    "UnitInitializedEvent",
    "UnitLoadedEvent",
    "UnitPosition",
    "UnitProcessedEvent",
    "UnitUnloadedEvent",
    "UnknownEnumValue",
    "WorkCompletedEvent",
    "WorkStartedEvent",
    "domain_event_schema",
    "payload_model",
    "typed_payload",
]


# --- field types -------------------------------------------------------------------------------------


def _check_iso(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:60]!r} is not an ISO 8601 date-time") from None
    return value


#: An ISO 8601 date-time string, kept as sent (with its UTC offset); checked, not converted.
IsoDateTime = Annotated[str, AfterValidator(_check_iso), WithJsonSchema({"type": "string", "format": "date-time"})]
#: A JSON number, or the text Newtonsoft writes for a non-finite double.
Number = int | float | Literal["NaN", "Infinity", "-Infinity"]
#: An enumeration value: the project's word or the SDK member name, or an unknown value as sent.
EnumWord = str | int
#: Any JSON value (a member passed through as the producer sent it).
JsonValue = Annotated[Any, WithJsonSchema({})]

SeverityWord = Literal["info", "warning", "error", "critical"]


def _f(description: str, default: Any = None) -> Any:
    """A field with a default and its description (units in words: seconds, millimetres, ...)."""
    return Field(default=default, description=description)


def _list(description: str) -> Any:
    return Field(default_factory=list, description=description)


class _Part(BaseModel):
    """A structure inside a payload (a test, a measurement, a unit position)."""

    # Strict: a producer's "3" for an integer is a contract error to report, not to guess at. Extras are
    # kept: a producer may add its own members to a structure, as CFX vendors do.
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)


class UnknownEnumValue(_Part):
    """An enumeration value outside the IPC-CFX SDK's declaration (the event also carries the tag
    ``cfx.unknown_enum``)."""

    field: str | None = _f("Field path in the CFX body, e.g. ``TestedUnits[0].Tests[1].Result``.")
    enum: str | None = _f("The SDK enumeration's name, e.g. ``TestResult``.")
    value: JsonValue = _f("The value as sent.")


class DomainPayload(BaseModel):
    """Base of every typed payload: the members every CFX-mapped payload starts with, all optional.

    Class attributes:
        EVENT_TYPE: the event type this model is the payload of (``test.result``).
        CFX_MESSAGES: the IPC-CFX message names whose adapters produce it (documentation only).
    """

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)

    EVENT_TYPE: ClassVar[str] = ""
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ()

    cfx_message: str | None = _f("Full IPC-CFX message name the event came from (CFX producers only).")
    unique_id: str | None = _f("The CFX envelope's ``UniqueID`` (CFX producers only).")
    handle: str | None = _f("CFX handle of the sender, the envelope's ``Source``.")
    target: str | None = _f("CFX handle of the addressee, the envelope's ``Target``.")
    request_id: str | None = _f("The CFX envelope's ``RequestID`` (pairs a request with its response).")
    unknown_enum_values: list[UnknownEnumValue] | None = _f(
        "Enumeration values outside the SDK's declaration; absent when there are none."
    )
    cfx_body: dict[str, JsonValue] | None = _f(
        "The original CFX ``MessageBody`` as received (``cfx-with-body`` decoder only)."
    )


class _Transaction(DomainPayload):
    transaction_id: str | None = _f("Id of the work transaction (CFX ``TransactionID``); also the correlation id.")


class _Asset(DomainPayload):
    asset_id: str | None = _f("The station or equipment the event is about (its CFX handle).")


class _AssetTransaction(_Asset):
    transaction_id: str | None = _f("Id of the work transaction (CFX ``TransactionID``); also the correlation id.")


class _Unit(_Transaction):
    unit_id: str | None = _f("Serial number of the unit (CFX ``UnitIdentifier``).")
    unit_position: int | None = _f("Position of the unit in its carrier or panel, 1-based (``UnitPositionNumber``).")


# --- structures --------------------------------------------------------------------------------------


class Measurement(_Part):
    """One measurement of a test or inspection (CFX/Structures/Measurement.cs and its subtypes)."""

    name: str | None = _f("Measurement name (``MeasurementName``).")
    id: str | None = _f("Its unique id (``UniqueIdentifier``).")
    sequence: int | None = _f("Order among the test's measurements (``Sequence``).")
    value: JsonValue = _f(
        "The measured value: a number for a numeric measurement (in ``units``), else as sent (text, boolean)."
    )
    units: str | None = _f("Units of ``value`` as the sender spells them (``V``, ``mm``, ``Ohm``).")
    expected_value: JsonValue = _f("The expected (nominal) value, in ``expected_value_units``.")
    expected_value_units: str | None = _f("Units of ``expected_value``.")
    low_limit: Number | None = _f("Minimum acceptable value, in ``units``.")
    high_limit: Number | None = _f("Maximum acceptable value, in ``units``.")
    result: EnumWord | None = _f("``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    ref_designators: str | None = _f("Reference designators of the components measured (``CRDs``), comma-separated.")
    time_recorded: IsoDateTime | None = _f("When it was measured, ISO 8601 with offset.")


class Defect(_Part):
    """A defect found (CFX/Structures/Defect.cs)."""

    id: str | None = _f("Its unique id.")
    code: str | None = _f("Defect code (``DefectCode``).")
    category: str | None = _f("Defect category.")
    component: str | None = _f("Reference designator of the component of interest.")
    part_number: str | None = _f("Part number of the component of interest.")
    description: str | None = _f("Free text.")
    priority: int | None = _f("Priority, as the sender ranks it.")
    confidence: Number | None = _f("Confidence of the finding, 0..100 (percent) as the SDK documents.")


class InspectionDefect(Defect):
    """A defect of an inspection result, with the name of the inspection that found it."""

    inspection: str | None = _f("Name of the inspection that found it.")


class Symptom(_Part):
    """A symptom found (CFX/Structures/Symptom.cs)."""

    id: str | None = _f("Its unique id.")
    code: str | None = _f("Symptom code (``SymptomCode``).")
    category: str | None = _f("Symptom category.")
    description: str | None = _f("Free text.")
    components: list[str | None] = _list("Reference designators of the components of interest.")


class TestRun(_Part):
    """One test of a unit (CFX/Structures/Test.cs)."""

    __test__ = False  # not a pytest test class, despite the name

    name: str | None = _f("Test name (``TestName``).")
    id: str | None = _f("Its unique id.")
    result: EnumWord | None = _f("``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    start_time: IsoDateTime | None = _f("Start, ISO 8601 with offset.")
    end_time: IsoDateTime | None = _f("End, ISO 8601 with offset.")
    measurements: list[Measurement] = _list("Its measurements, in order.")
    symptoms: list[Symptom] = _list("Symptoms found.")
    defects: list[Defect] = _list("Defects found.")


class InspectionRun(_Part):
    """One inspection of a unit (CFX/Structures/Inspection.cs)."""

    name: str | None = _f("Inspection name (``InspectionName``).")
    id: str | None = _f("Its unique id.")
    result: EnumWord | None = _f("``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    start_time: IsoDateTime | None = _f("Start, ISO 8601 with offset.")
    end_time: IsoDateTime | None = _f("End, ISO 8601 with offset.")
    defects: list[Defect] = _list("Defects found.")
    symptoms: list[Symptom] = _list("Symptoms found.")
    measurements: list[Measurement] = _list("Its measurements, in order.")


class UnitPosition(_Part):
    """A unit in a carrier or panel (CFX/Structures/UnitPosition.cs)."""

    unit_id: str | None = _f("Serial number of the unit.")
    position: int | None = _f("Position number, 1-based.")
    position_name: str | None = _f("Position name.")
    status: EnumWord | None = _f("``active`` or ``disqualified`` (SDK ``UnitStatus``, lower case).")
    x: Number | None = _f("X offset of the unit from the panel origin, in millimetres.")
    y: Number | None = _f("Y offset of the unit from the panel origin, in millimetres.")
    rotation: Number | None = _f("Rotation of the unit, in degrees.")
    flip_x: bool | None = _f("Mirrored about the X axis.")
    flip_y: bool | None = _f("Mirrored about the Y axis.")


class MaterialLocation(_Part):
    """Where a material sits (CFX/Structures/MaterialLocation.cs), with its carrier."""

    location_id: str | None = _f("Location id (``LocationIdentifier``, e.g. a feeder slot).")
    location_name: str | None = _f("Location name.")
    carrier_id: str | None = _f("Carrier (feeder, tray) id.")
    carrier_name: str | None = _f("Carrier name.")


class LoadedMaterial(MaterialLocation):
    """A material package loaded at a location (CFX/Structures/MaterialLocation.cs, MaterialPackage.cs)."""

    material_id: str | None = _f("Material package id (``UniqueIdentifier``).")
    part_number: str | None = _f("Internal part number.")
    lot: str | None = _f("Batch id, or the manufacturer's lot code when no batch is given.")
    quantity: Number | None = _f("Quantity in the package, in the package's own units (pieces, grams).")


class InstalledComponent(_Part):
    """One component placed (CFX/Structures/InstalledComponent.cs)."""

    ref_designator: str | None = _f("Reference designator where it was placed.")
    part_number: str | None = _f("Part number of the material it came from.")
    lot: str | None = _f("Lot of the material it came from.")
    material_id: str | None = _f("Material package it came from.")
    installed_at: IsoDateTime | None = _f("When it was placed, ISO 8601 with offset.")


class ConsumedMaterial(_Part):
    """Material consumed (CFX/Structures/ConsumedMaterial.cs); quantities in the package's own units."""

    material_id: str | None = _f("Material package id.")
    part_number: str | None = _f("Internal part number.")
    lot: str | None = _f("Batch id or manufacturer's lot code.")
    location_id: str | None = _f("Location id it was taken from.")
    location_name: str | None = _f("Location name.")
    quantity_used: Number | None = _f("Quantity used.")
    quantity_spoiled: Number | None = _f("Quantity spoiled (scrapped).")
    remaining_quantity: Number | None = _f("Quantity left in the package.")


class FaultDetails(_Part):
    """The members of one fault (CFX/Structures/Fault.cs); subtype and vendor members under ``details``."""

    fault_id: str | None = _f("Id of this occurrence (``FaultOccurrenceId``); clears and acknowledgements name it.")
    transaction_id: str | None = _f("Transaction during which it occurred.")
    code: str | None = _f("Fault code (``FaultCode``), vendor-specific.")
    cause: EnumWord | None = _f("SDK ``FaultCause`` member name (``MechanicalFailure``).")
    severity: SeverityWord | None = _f("Event severity: ``info``, ``warning``, ``error`` or ``critical``.")
    fault_severity: EnumWord | None = _f("SDK ``FaultSeverity`` member name (``Information`` .. ``Alarm``).")
    description: str | None = _f("Free text.")
    description_translations: dict[str, str | None] = Field(
        default_factory=dict, description="Description by language code (``de``: text)."
    )
    lane: int | None = _f("Lane number, 1-based.")
    stage: str | None = _f("Stage name.")
    side_location: EnumWord | None = _f("SDK ``SideLocation`` member name.")
    access_type: EnumWord | None = _f("SDK ``AccessType`` member name.")
    occurred_at: IsoDateTime | None = _f("When it occurred, ISO 8601 with offset.")
    due_at: IsoDateTime | None = _f("When it must be dealt with, ISO 8601 with offset.")
    fault_type: str | None = _f("The .NET ``$type`` of a Fault subtype, when sent.")
    details: dict[str, JsonValue] = Field(default_factory=dict, description="Subtype and vendor members, as sent.")


class ActiveRecipe(_Part):
    """A recipe active at a station (CFX/Structures/ActiveRecipe.cs)."""

    lane: int | None = _f("Lane number, 1-based.")
    stage: str | None = _f("Stage name.")
    recipe: str | None = _f("Recipe name.")
    recipe_revision: str | None = _f("Recipe revision.")


class Repair(_Part):
    """One repair action (CFX/Structures/Repair.cs)."""

    id: str | None = _f("Its unique id.")
    name: str | None = _f("Repair name.")
    result: EnumWord | None = _f("SDK ``RepairResult`` member name (``RepairSuccessful``).")
    start_time: IsoDateTime | None = _f("Start, ISO 8601 with offset.")
    end_time: IsoDateTime | None = _f("End, ISO 8601 with offset.")
    comments: str | None = _f("Free text.")
    component: str | None = _f("Reference designator of the component repaired.")
    part_number: str | None = _f("Its part number.")
    related_defects: list[str | None] = _list("Ids of the defects it answers.")
    related_symptoms: list[str | None] = _list("Ids of the symptoms it answers.")
    error: str | None = _f("Error text, when the repair failed.")


class ToolUse(_Part):
    """A tool used on a unit (CFX/Structures/ToolUsed.cs)."""

    unit_id: str | None = _f("Serial number of the unit.")
    unit_position: int | None = _f("Position of the unit, 1-based.")
    tool_id: str | None = _f("Tool id.")
    tool_name: str | None = _f("Tool name.")
    tool_type: str | None = _f("The .NET ``$type`` of the tool, when sent.")
    tool: dict[str, JsonValue] | None = _f("The tool's members, as sent.")
    usage_cycles: int | None = _f("Use count for this unit (cycles).")
    components: list[str | None] = _list("Reference designators of the components it installed.")


class Reading(_Part):
    """One reading (CFX/Structures/Reading.cs); values as sent (the SDK carries them as text)."""

    id: str | None = _f("Reading id.")
    time_recorded: IsoDateTime | None = _f("When it was read, ISO 8601 with offset.")
    sequence: int | None = _f("Order among the message's readings.")
    result: EnumWord | None = _f("``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    unit_id: str | None = _f("Serial number of the unit read.")
    unit_position: int | None = _f("Position of the unit, 1-based.")
    components: list[str | None] = _list("Reference designators of the components read.")
    data_type: EnumWord | None = _f("SDK ``DataType`` member name of ``value``.")
    value: JsonValue = _f("The value as sent, in ``units``.")
    units: str | None = _f("Units of ``value``.")
    mime_type: str | None = _f("MIME type of ``binary_value``.")
    binary_value: str | None = _f("Binary content, base64.")
    expected_value: JsonValue = _f("Expected value as sent, in ``expected_value_units``.")
    expected_value_units: str | None = _f("Units of ``expected_value``.")
    low_limit: JsonValue = _f("Minimum acceptable value as sent, in ``units``.")
    high_limit: JsonValue = _f("Maximum acceptable value as sent, in ``units``.")


class MaintenanceTask(_Part):
    """One maintenance task (CFX/Structures/MaintenanceTask.cs)."""

    task: str | None = _f("What was done.")
    task_id: str | None = _f("Task id.")
    operator_id: str | None = _f("Who did it.")
    man_hours: Number | None = _f("Labour consumed, in hours (``ManHoursConsumed``).")


# --- the payloads ------------------------------------------------------------------------------------


class TestResultEvent(_Unit):
    """``test.result``: one unit's test result (IPC-CFX ``UnitsTested``, one event per tested unit)."""

    __test__ = False  # not a pytest test class, despite the name
    EVENT_TYPE: ClassVar[str] = "test.result"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.TestAndInspection.UnitsTested",)

    result: EnumWord | None = _f("Overall result: ``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    method: EnumWord | None = _f("Test method, SDK ``TestMethod`` in lower case (``automated``, ``manual``).")
    recipe: str | None = _f("Test program or recipe name.")
    recipe_revision: str | None = _f("Its revision.")
    operator_id: str | None = _f("Who ran the test.")
    start_time: IsoDateTime | None = _f("Start of the first test, ISO 8601 with offset.")
    end_time: IsoDateTime | None = _f("End of the last test, ISO 8601 with offset.")
    tests: list[TestRun] = _list("The tests, in order.")


class InspectionResultEvent(_Unit):
    """``inspection.result``: one unit's (or the panel's) inspection result (IPC-CFX ``UnitsInspected``)."""

    EVENT_TYPE: ClassVar[str] = "inspection.result"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.TestAndInspection.UnitsInspected",)

    is_panel: bool = _f("True for the panel's own results (CFX ``InspectedPanel``).", False)
    result: EnumWord | None = _f("Overall result: ``pass``, ``fail``, ``error``, ``aborted`` or ``skipped``.")
    method: EnumWord | None = _f("Inspection method, SDK ``InspectionMethod`` in lower case (``machine``).")
    recipe: str | None = _f("Inspection program or recipe name.")
    recipe_revision: str | None = _f("Its revision.")
    operator_id: str | None = _f("Who inspected.")
    inspections: list[InspectionRun] = _list("The inspections, in order.")
    defects: list[InspectionDefect] = _list("Every defect of every inspection, each with its inspection's name.")


class WorkStartedEvent(_Transaction):
    """``production.work_started``: work on units began at a station (IPC-CFX ``WorkStarted``)."""

    EVENT_TYPE: ClassVar[str] = "production.work_started"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.WorkStarted",)

    lane: int | None = _f("Lane number, 1-based.")
    stage: str | None = _f("Stage name.")
    units: list[UnitPosition] = _list("The units worked on.")
    unit_count: int | None = _f("Number of units (count).")
    primary_identifier: str | None = _f("Carrier or panel id.")
    hermes_identifier: str | None = _f("IPC-HERMES-9852 board id.")
    recipe: str | None = _f("Recipe name.")
    recipe_revision: str | None = _f("Recipe revision.")
    work_order_id: str | None = _f("Work order id.")
    batch: str | None = _f("Batch of the work order.")


class WorkCompletedEvent(WorkStartedEvent):
    """``production.work_completed``: work on units ended (IPC-CFX ``WorkCompleted``)."""

    EVENT_TYPE: ClassVar[str] = "production.work_completed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.WorkCompleted",)

    result: EnumWord | None = _f("SDK ``WorkResult`` in lower case (``completed``, ``aborted``, ``failed``).")


class _UnitsMoved(DomainPayload):
    units: list[UnitPosition] = _list("The units.")
    unit_count: int | None = _f("Number of units (count).")
    lane: int | None = _f("Lane number, 1-based.")
    primary_identifier: str | None = _f("Carrier or panel id.")
    hermes_identifier: str | None = _f("IPC-HERMES-9852 board id.")


class UnitArrivedEvent(_UnitsMoved):
    """``production.unit_arrived``: units entered a station (IPC-CFX ``UnitsArrived``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_arrived"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.UnitsArrived",)


class UnitDepartedEvent(_UnitsMoved):
    """``production.unit_departed``: units left a station (IPC-CFX ``UnitsDeparted``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_departed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.UnitsDeparted",)


class UnitDisqualifiedEvent(DomainPayload):
    """``production.unit_disqualified``: units taken out of production (IPC-CFX ``UnitsDisqualified``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_disqualified"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.UnitsDisqualified",)

    units: list[UnitPosition] = _list("The units.")
    unit_count: int | None = _f("Number of units (count).")
    reason: EnumWord | None = _f("SDK ``DisqualificationReason`` member name.")
    comments: str | None = _f("Free text.")


class UnitInitializedEvent(_Transaction):
    """``production.unit_initialized``: units given their identity (IPC-CFX ``UnitsInitialized``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_initialized"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.UnitsInitialized",)

    primary_identifier: str | None = _f("Carrier or panel id.")
    hermes_identifier: str | None = _f("IPC-HERMES-9852 board id.")
    work_order_id: str | None = _f("Work order id.")
    batch: str | None = _f("Batch of the work order.")
    unit_count: int | None = _f("Number of units (count).")
    units: list[UnitPosition] = _list("The units.")


class UnitProcessedEvent(_Unit):
    """``production.unit_processed``: process data of one unit (IPC-CFX ``UnitsProcessed``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_processed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.Processing.UnitsProcessed",)

    result: EnumWord | None = _f("The unit's SDK ``ProcessingResult`` in lower case (``succeeded``).")
    overall_result: EnumWord | None = _f("The message's overall ``ProcessingResult`` in lower case.")
    process_data_type: str | None = _f("The .NET ``$type`` of the common process data.")
    process_data: dict[str, JsonValue] | None = _f("Process data common to all units, as sent.")
    unit_process_data_type: str | None = _f("The .NET ``$type`` of this unit's process data.")
    unit_process_data: dict[str, JsonValue] | None = _f("This unit's process data, as sent.")


class RepairResultEvent(_Unit):
    """``repair.result``: one unit's repairs (IPC-CFX ``UnitsRepaired``, one event per repaired unit)."""

    EVENT_TYPE: ClassVar[str] = "repair.result"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.ReworkAndRepair.UnitsRepaired",)

    result: EnumWord | None = _f("SDK ``RepairResult`` member name (``RepairSuccessful``).")
    operator_id: str | None = _f("Who repaired.")
    repairs: list[Repair] = _list("The repairs, in order.")


class _Stage(_Transaction):
    stage: str | None = _f("Stage name.")
    stage_sequence: int | None = _f("Stage number, 1-based.")
    stage_type: str | None = _f("Stage type (``Work``, ``Buffer``, ``Inspection``).")


class StageStartedEvent(_Stage):
    """``production.stage_started``: work began in one stage (IPC-CFX ``WorkStageStarted``)."""

    EVENT_TYPE: ClassVar[str] = "production.stage_started"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.WorkStageStarted",)


class StageCompletedEvent(_Stage):
    """``production.stage_completed``: work ended in one stage (IPC-CFX ``WorkStageCompleted``)."""

    EVENT_TYPE: ClassVar[str] = "production.stage_completed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.WorkStageCompleted",)

    result: EnumWord | None = _f("SDK ``WorkResult`` in lower case (``completed``).")
    performance_impacts: list[EnumWord | None] = _list("SDK ``PerformanceImpactCause`` member names.")


class _Loading(DomainPayload):
    carrier_id: str | None = _f("Carrier id (``UniqueIdentifier``).")
    unit_count: int | None = _f("Number of units (count).")
    units: list[UnitPosition] = _list("The units.")


class UnitLoadedEvent(_Loading):
    """``production.unit_loaded``: units loaded into a carrier (IPC-CFX ``UnitsLoaded``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_loaded"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.LoadingAndUnloading.UnitsLoaded",)


class UnitUnloadedEvent(_Loading):
    """``production.unit_unloaded``: units taken out of a carrier (IPC-CFX ``UnitsUnloaded``)."""

    EVENT_TYPE: ClassVar[str] = "production.unit_unloaded"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.LoadingAndUnloading.UnitsUnloaded",)


class RecipeActivatedEvent(DomainPayload):
    """``production.recipe_activated``: a station switched recipe (IPC-CFX ``RecipeActivated``)."""

    EVENT_TYPE: ClassVar[str] = "production.recipe_activated"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.RecipeActivated",)

    recipe: str | None = _f("Recipe name.")
    recipe_revision: str | None = _f("Recipe revision.")
    lane: int | None = _f("Lane number, 1-based.")
    stage: str | None = _f("Stage name.")
    expected_cycle_time_ms: Number | None = _f("Expected cycle time, in milliseconds.")
    expected_work_time_ms: Number | None = _f("Expected work time, in milliseconds.")
    expected_units_per_work_transaction: Number | None = _f("Expected units per work transaction (count).")
    components_per_unit: Number | None = _f("Components per unit (count).")
    work_order_id: str | None = _f("Work order id.")
    batch: str | None = _f("Batch of the work order.")
    target_quantity: Number | None = _f("Units to build (count).")
    relevant_surface: EnumWord | None = _f("SDK ``Surface`` value, as sent.")


class _Operator(_Asset):
    operator_id: str | None = _f("Operator id (``OperatorIdentifier``).")
    actor_type: EnumWord | None = _f("SDK ``ActorType`` member name (``Human``, ``Robot``).")
    login_name: str | None = _f("Login name.")
    first_name: str | None = _f("First name.")
    last_name: str | None = _f("Last name.")


class OperatorActivatedEvent(_Operator):
    """``production.operator_activated``: an operator logged on (IPC-CFX ``OperatorActivated``)."""

    EVENT_TYPE: ClassVar[str] = "production.operator_activated"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.OperatorActivated",)


class OperatorDeactivatedEvent(_Operator):
    """``production.operator_deactivated``: an operator logged off (IPC-CFX ``OperatorDeactivated``)."""

    EVENT_TYPE: ClassVar[str] = "production.operator_deactivated"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.OperatorDeactivated",)


class MaterialInstalledEvent(_Unit):
    """``material.installed``: material placed on one unit (IPC-CFX ``MaterialsInstalled``, one per unit)."""

    EVENT_TYPE: ClassVar[str] = "material.installed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.Assembly.MaterialsInstalled",)

    material_id: str | None = _f("Material package id.")
    part_number: str | None = _f("Internal part number.")
    lot: str | None = _f("Batch id or manufacturer's lot code.")
    quantity_installed: Number | None = _f("Quantity installed, in the package's own units (pieces, grams).")
    quantity_non_installed: Number | None = _f("Quantity picked but not installed (lost, dropped).")
    location: MaterialLocation | None = _f("Where the material was taken from.")
    components: list[InstalledComponent] = _list("The components placed.")


class MaterialUninstalledEvent(_Unit):
    """``material.uninstalled``: material removed from one unit (IPC-CFX ``MaterialsUninstalled``)."""

    EVENT_TYPE: ClassVar[str] = "material.uninstalled"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.Assembly.MaterialsUninstalled",)

    material_id: str | None = _f("Material package id.")
    part_number: str | None = _f("Internal part number.")
    lot: str | None = _f("Batch id or manufacturer's lot code.")
    quantity_uninstalled: Number | None = _f("Quantity removed, in the package's own units.")
    reason: EnumWord | None = _f("SDK ``UninstalledReason`` member name.")
    components: list[str | None] = _list("Reference designators of the components removed.")


class MaterialLoadedEvent(DomainPayload):
    """``material.loaded``: material packages loaded at a station (IPC-CFX ``MaterialsLoaded``)."""

    EVENT_TYPE: ClassVar[str] = "material.loaded"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Materials.Storage.MaterialsLoaded",)

    materials: list[LoadedMaterial] = _list("The packages and where they were loaded.")


class MaterialUnloadedEvent(DomainPayload):
    """``material.unloaded``: material packages taken off a station (IPC-CFX ``MaterialsUnloaded``)."""

    EVENT_TYPE: ClassVar[str] = "material.unloaded"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Materials.Storage.MaterialsUnloaded",)

    material_ids: list[str | None] = _list("Ids of the packages unloaded.")


class MaterialConsumedEvent(DomainPayload):
    """``material.consumed``: material used up (IPC-CFX ``MaterialsConsumed``)."""

    EVENT_TYPE: ClassVar[str] = "material.consumed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Materials.Management.MaterialsConsumed",)

    materials: list[ConsumedMaterial] = _list("The materials and quantities.")


class AssetFaultEvent(_Asset, FaultDetails):
    """``asset.fault``: a fault occurred at a station (IPC-CFX ``FaultOccurred``); the fault's members at
    the top level."""

    EVENT_TYPE: ClassVar[str] = "asset.fault"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.FaultOccurred",)

    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)


class _FaultFollowUp(_Asset):
    fault_id: str | None = _f("Id of the fault occurrence (``FaultOccurrenceId`` of its ``asset.fault``).")
    operator_id: str | None = _f("Who cleared or acknowledged it.")


class AssetFaultClearedEvent(_FaultFollowUp):
    """``asset.fault_cleared``: a fault was cleared (IPC-CFX ``FaultCleared``)."""

    EVENT_TYPE: ClassVar[str] = "asset.fault_cleared"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.FaultCleared",)


class AssetFaultAcknowledgedEvent(_FaultFollowUp):
    """``asset.fault_acknowledged``: a fault was acknowledged (IPC-CFX ``FaultAcknowledged``)."""

    EVENT_TYPE: ClassVar[str] = "asset.fault_acknowledged"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.FaultAcknowledged",)


class AssetStateChangedEvent(_Asset):
    """``asset.state_changed``: a station changed its SEMI E10 state (IPC-CFX ``StationStateChanged``).

    ``new_state`` is required: a state change without the new state says nothing.
    """

    EVENT_TYPE: ClassVar[str] = "asset.state_changed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.StationStateChanged",)

    old_state: int | None = _f("Previous state, SEMI E10 code as the CFX ``ResourceState`` number (1000..6000).")
    old_state_name: str | None = _f("Its SDK ``ResourceState`` member name.")
    old_category: str | None = _f("Its SEMI E10 category (``PRD``, ``SBY``, ``ENG``, ``SDT``, ``UDT``, ``NST``).")
    new_state: int = Field(description="New state, SEMI E10 code as the CFX ``ResourceState`` number (1000..6000).")
    new_state_name: str | None = _f("Its SDK ``ResourceState`` member name.")
    new_category: str | None = _f("Its SEMI E10 category (``PRD``, ``SBY``, ``ENG``, ``SDT``, ``UDT``, ``NST``).")
    old_state_duration_s: float | None = _f("Time spent in the previous state, in seconds.")
    related_fault_id: str | None = _f("Id of the fault that caused the change.")
    related_fault: FaultDetails | None = _f("That fault's members.")


class AssetMaintenanceEvent(_Asset):
    """``asset.maintenance``: maintenance was performed (IPC-CFX ``MaintenancePerformed``)."""

    EVENT_TYPE: ClassVar[str] = "asset.maintenance"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.MaintenancePerformed",)

    maintenance_type: EnumWord | None = _f("SDK ``MaintenanceType`` member name (``Preventive``).")
    order_number: str | None = _f("Maintenance order number.")
    job_code: str | None = _f("Maintenance job code.")
    tasks: list[MaintenanceTask] = _list("The tasks done.")
    consumed_materials: list[ConsumedMaterial] = _list("Material used by the maintenance.")


class AssetCalibrationEvent(_AssetTransaction):
    """``asset.calibration``: a calibration was performed (IPC-CFX ``CalibrationPerformed``)."""

    EVENT_TYPE: ClassVar[str] = "asset.calibration"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.CalibrationPerformed",)

    code: str | None = _f("Calibration code.")
    calibration_type: EnumWord | None = _f("SDK ``CalibrationType`` member name.")
    status: EnumWord | None = _f("SDK ``OperationStatus`` member name (``Completed``, ``Failed``).")
    comments: str | None = _f("Free text.")
    calibration_time: IsoDateTime | None = _f("When it was calibrated, ISO 8601 with offset.")
    measurements: list[dict[str, JsonValue]] = _list("The calibration's measurements, as sent.")


class AssetOfflineEvent(_Asset):
    """``asset.offline``: a station went offline (IPC-CFX ``StationOffline``)."""

    EVENT_TYPE: ClassVar[str] = "asset.offline"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.StationOffline",)


class AssetOnlineEvent(_Asset):
    """``asset.online``: a station came back online (IPC-CFX ``StationOnline``)."""

    EVENT_TYPE: ClassVar[str] = "asset.online"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.StationOnline",)

    offline_duration_s: float | None = _f("How long it was offline, in seconds.")


class ToolUsedEvent(_Transaction):
    """``asset.tool_used``: tools used on units (IPC-CFX ``ToolsUsed``)."""

    EVENT_TYPE: ClassVar[str] = "asset.tool_used"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Production.ToolsUsed",)

    tools: list[ToolUse] = _list("The tools and the units they were used on.")


_PHASES = "one value per phase (red, yellow, blue)"


class EnergyConsumedEvent(_Asset):
    """``asset.energy_consumed``: energy use over a period (IPC-CFX ``EnergyConsumed``; units as the SDK
    documents: energy in kWh, power in W, current in A, voltage in V, frequency in Hz)."""

    EVENT_TYPE: ClassVar[str] = "asset.energy_consumed"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.ResourcePerformance.EnergyConsumed",)

    start_time: IsoDateTime | None = _f("Start of the period, ISO 8601 with offset.")
    end_time: IsoDateTime | None = _f("End of the period, ISO 8601 with offset.")
    energy_used: Number | None = _f("Energy used in the period, in kWh.")
    peak_power: Number | None = _f("Peak power, in W.")
    minimum_power: Number | None = _f("Minimum power, in W.")
    mean_power: Number | None = _f("Mean power, in W.")
    power_now: Number | None = _f("Power at the end of the period, in W.")
    power_factor_now: Number | None = _f("Power factor at the end of the period, 0..1.")
    peak_current: Number | None = _f("Peak current, in A.")
    minimum_current: Number | None = _f("Minimum current, in A.")
    mean_current: Number | None = _f("Mean current, in A.")
    current_now: Number | None = _f("Current at the end of the period, in A.")
    peak_voltage: Number | None = _f("Peak voltage, in V.")
    minimum_voltage: Number | None = _f("Minimum voltage, in V.")
    mean_voltage: Number | None = _f("Mean voltage, in V.")
    voltage_now: Number | None = _f("Voltage at the end of the period, in V.")
    peak_frequency: Number | None = _f("Peak frequency, in Hz.")
    minimum_frequency: Number | None = _f("Minimum frequency, in Hz.")
    mean_frequency: Number | None = _f("Mean frequency, in Hz.")
    frequency_now: Number | None = _f("Frequency at the end of the period, in Hz.")
    three_phase_neutral_current_now: Number | None = _f("Neutral current of a three-phase supply now, in A.")
    peak_power_ryb: list[Number | None] = _list(f"Peak power, in W, {_PHASES}.")
    minimum_power_ryb: list[Number | None] = _list(f"Minimum power, in W, {_PHASES}.")
    mean_power_ryb: list[Number | None] = _list(f"Mean power, in W, {_PHASES}.")
    power_now_ryb: list[Number | None] = _list(f"Power now, in W, {_PHASES}.")
    power_factor_now_ryb: list[Number | None] = _list(f"Power factor now, 0..1, {_PHASES}.")
    peak_current_ryb: list[Number | None] = _list(f"Peak current, in A, {_PHASES}.")
    minimum_current_ryb: list[Number | None] = _list(f"Minimum current, in A, {_PHASES}.")
    mean_current_ryb: list[Number | None] = _list(f"Mean current, in A, {_PHASES}.")
    current_now_ryb: list[Number | None] = _list(f"Current now, in A, {_PHASES}.")
    peak_voltage_ryb: list[Number | None] = _list(f"Peak voltage, in V, {_PHASES}.")
    minimum_voltage_ryb: list[Number | None] = _list(f"Minimum voltage, in V, {_PHASES}.")
    mean_voltage_ryb: list[Number | None] = _list(f"Mean voltage, in V, {_PHASES}.")
    voltage_now_ryb: list[Number | None] = _list(f"Voltage now, in V, {_PHASES}.")
    subsystem_name: str | None = _f("The subsystem measured, when not the whole station.")
    consumption_details: list[dict[str, JsonValue]] = _list("Per-consumer details, as sent.")


class SensorReadingEvent(_Transaction):
    """``sensor.reading``: readings or process data recorded (IPC-CFX ``ReadingsRecorded``,
    ``ProcessDataRecorded``)."""

    EVENT_TYPE: ClassVar[str] = "sensor.reading"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = (
        "CFX.Production.ReadingsRecorded",
        "CFX.ResourcePerformance.ProcessDataRecorded",
    )

    readings: list[Reading] = _list("The readings (empty for station-level process data).")
    process_data_type: str | None = _f("The .NET ``$type`` of ``process_data``.")
    process_data: dict[str, JsonValue] | None = _f("Station-level process data, as sent.")


class EndpointConnectedEvent(DomainPayload):
    """``system.endpoint_connected``: a CFX endpoint came up (IPC-CFX ``EndpointConnected``)."""

    EVENT_TYPE: ClassVar[str] = "system.endpoint_connected"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.EndpointConnected",)

    request_uri: str | None = _f("URI where the endpoint takes requests (``RequestNetworkUri``).")
    request_target: str | None = _f("Its request target address (AMQP queue).")


class EndpointShuttingDownEvent(DomainPayload):
    """``system.endpoint_shutting_down``: a CFX endpoint is going down (IPC-CFX ``EndpointShuttingDown``)."""

    EVENT_TYPE: ClassVar[str] = "system.endpoint_shutting_down"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.EndpointShuttingDown",)


class HeartbeatEvent(DomainPayload):
    """``system.heartbeat``: a CFX endpoint is alive (IPC-CFX ``Heartbeat``)."""

    EVENT_TYPE: ClassVar[str] = "system.heartbeat"
    CFX_MESSAGES: ClassVar[tuple[str, ...]] = ("CFX.Heartbeat",)

    heartbeat_frequency_s: float | None = _f("Interval between heartbeats, in seconds.")
    active_faults: list[FaultDetails] = _list("Faults active at the sender (CFX 1.7).")
    active_recipes: list[ActiveRecipe] = _list("Recipes active at the sender (CFX 1.7).")


P = TypeVar("P", bound=DomainPayload)

#: Every typed payload model, by event type.
DOMAIN_EVENTS: dict[str, type[DomainPayload]] = {
    m.EVENT_TYPE: m
    for m in (
        TestResultEvent,
        InspectionResultEvent,
        RepairResultEvent,
        WorkStartedEvent,
        WorkCompletedEvent,
        UnitArrivedEvent,
        UnitDepartedEvent,
        UnitDisqualifiedEvent,
        UnitInitializedEvent,
        UnitProcessedEvent,
        UnitLoadedEvent,
        UnitUnloadedEvent,
        StageStartedEvent,
        StageCompletedEvent,
        RecipeActivatedEvent,
        OperatorActivatedEvent,
        OperatorDeactivatedEvent,
        MaterialInstalledEvent,
        MaterialUninstalledEvent,
        MaterialLoadedEvent,
        MaterialUnloadedEvent,
        MaterialConsumedEvent,
        AssetFaultEvent,
        AssetFaultClearedEvent,
        AssetFaultAcknowledgedEvent,
        AssetStateChangedEvent,
        AssetMaintenanceEvent,
        AssetCalibrationEvent,
        AssetOfflineEvent,
        AssetOnlineEvent,
        ToolUsedEvent,
        EnergyConsumedEvent,
        SensorReadingEvent,
        EndpointConnectedEvent,
        EndpointShuttingDownEvent,
        HeartbeatEvent,
    )
}


def payload_model(event_type: str) -> type[DomainPayload]:
    """The payload model of ``event_type`` (``"test.result"`` or an ``EventType`` member).

    Raises:
        NoPayloadModelError: no model is registered for that type (the message lists the known ones).
    """
    try:
        return DOMAIN_EVENTS[str(event_type)]
    except KeyError:
        raise NoPayloadModelError(str(event_type), sorted(DOMAIN_EVENTS)) from None


@overload
def typed_payload(event: Event) -> DomainPayload: ...
@overload
def typed_payload(event: Event, model: type[P]) -> P: ...


def typed_payload(event: Event, model: type[DomainPayload] | None = None) -> DomainPayload:
    """Validate ``event.payload`` against the model of ``event.type`` and return the model instance.

    Args:
        event: the event.
        model: the model to validate against instead of the registered one (``typed_payload(event,
            TestResultEvent)`` is typed as ``TestResultEvent`` for type checkers; also the way to type an
            event type of your own).

    Raising its error from a handler sends the delivery straight to the dead-letter queue (reason
    ``unrecoverable``): retrying cannot make a payload fit.

    Raises:
        NoPayloadModelError: no ``model`` given and ``event.type`` has no payload model.
        PayloadValidationError: the payload does not fit; ``event_type``, ``event_id``, ``field`` (the
            dotted path, e.g. ``tests.0.result``) and ``reason`` say where and why.
    """
    target = model if model is not None else payload_model(event.type)
    try:
        return target.model_validate(event.payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(payload)"
        raise PayloadValidationError(
            event.type, field, first["msg"], event_id=event.id, problems=exc.error_count()
        ) from None


#: The JSON Schema dialect the exported schemas declare (pydantic v2 writes draft 2020-12).
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def domain_event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the payload of ``event_type``, for producers to target.

    The schema's ``$id`` is ``urn:pywats-events:payload:<event type>``, ``title`` the model's name and
    ``x-event-type`` the event type.

    Raises:
        NoPayloadModelError: ``event_type`` has no payload model.
    """
    model = payload_model(event_type)
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:pywats-events:payload:{model.EVENT_TYPE}",
        "x-event-type": model.EVENT_TYPE,
        **schema,
    }
