"""CFX enumerations in every form the SDK's reader accepts (issue 11, point 1 and 2).

Reference: IPCConnectedFactoryExchange/CFX, ``CFX/Structures/<Enum>.cs`` (each declared with
``[JsonConverter(typeof(StringEnumConverter))]``, so Newtonsoft reads member names case-insensitively,
``EnumMember`` texts, numeric strings and JSON integers in declaration order), ``CFX/Structures/ResourceState.cs``
(``StateJsonConverter``: 22A0/22B0 plus the StringEnumConverter forms) and CFX-Java
``sdk/generated_src/main/java/org/ipc/cfx/structures/ResourceState.java`` (writes the member names as text).
"""

from __future__ import annotations

from typing import Any

import pytest

from pywats_cfx import (
    InvalidMessageBodyError,
    decode_cfx,
    encode_envelope,
    envelope_to_bytes,
    parse_envelopes,
    parse_message,
    state_code,
)
from pywats_cfx.adapters import UNKNOWN_ENUM_TAG
from pywats_cfx.enums import ENUMS, FAULT_CAUSE, TEST_METHOD, TEST_RESULT, CFXEnum, InvalidEnumValue
from pywats_cfx.errors import InvalidResourceStateError
from pywats_events.codec import DecodeContext
from pywats_events.event import Event

TESTED = "CFX.Production.TestAndInspection.UnitsTested"


def wire(message_name: str, body: dict[str, Any]) -> bytes:
    return envelope_to_bytes(encode_envelope(message_name, body, source="Vendor.Model.SN1", unique_id="u-1"))


def decode(message_name: str, body: dict[str, Any], origin: str = "queue:cfx") -> list[Event]:
    return decode_cfx(wire(message_name, body), DecodeContext(origin=origin))


def typed(message_name: str, body: dict[str, Any]) -> Any:
    return parse_message(parse_envelopes(wire(message_name, body))[0])


def forms(table: CFXEnum, member: str) -> list[Any]:
    """The four spellings Newtonsoft's StringEnumConverter reads as ``member`` (plus case variants)."""
    number = table.number_of(member)
    return [member, member.lower(), member.upper(), str(number), f" {number} ", number]


# --- the tables ---------------------------------------------------------------------------------------


def test_tables_cover_every_enum_the_project_reads() -> None:
    assert set(ENUMS) == {
        "TestResult",
        "TestMethod",
        "InspectionMethod",
        "WorkResult",
        "FaultSeverity",
        "FaultCause",
        "SideLocation",
        "AccessType",
        "UnitStatus",
        "DisqualificationReason",
        "ActorType",
        # read by the messages mapped for point 7
        "ProcessingResult",
        "RepairResult",
        "MaintenanceType",
        "UninstalledReason",
        "CalibrationType",
        "OperationStatus",
        "DataType",
        "PerformanceImpactCause",
    }
    for table in ENUMS.values():
        assert table.source == f"CFX/Structures/{table.name}.cs"


def test_integers_follow_the_sdk_declaration_order() -> None:
    # CFX/Structures/TestResult.cs: Passed, Failed, Error, Aborted, Skipped (no initialisers).
    assert [TEST_RESULT.member_of(i) for i in range(5)] == ["Passed", "Failed", "Error", "Aborted", "Skipped"]
    # CFX/Structures/TestMethod.cs: Human, Automated, ICT, FPT, FCT, BST.
    assert TEST_METHOD.member_of(3) == "FPT"
    # CFX/Structures/FaultCause.cs: ElectricalFailure is the 15th member, RejectedComponent the last.
    assert FAULT_CAUSE.member_of(14) == "ElectricalFailure" and FAULT_CAUSE.member_of(17) == "RejectedComponent"
    assert FAULT_CAUSE.member_of(18) is None
    # CFX/Structures/CalibrationType.cs spells member 0 "Unkwnown"; the correct spelling reads as it too.
    cal = ENUMS["CalibrationType"]
    assert cal.read(0).name == cal.read("unknown").name == "Unkwnown"  # type: ignore[union-attr]


@pytest.mark.parametrize("table", list(ENUMS.values()), ids=lambda t: t.name)
def test_every_member_reads_from_all_four_forms(table: CFXEnum) -> None:
    for member in table.members:
        for form in forms(table, member):
            value = table.read(form)
            assert value is not None and value.known, (table.name, form)
            assert (value.name, value.number) == (member, table.number_of(member)), (table.name, form)


def test_integer_outside_the_table_is_kept_and_marked_unknown() -> None:
    for form in (9, "9", "+9", -1):
        value = TEST_RESULT.read(form)
        assert value is not None and not value.known
        assert value.wire == int(form) and value.name is None
    novel = TEST_RESULT.read("Inconclusive")
    assert novel is not None and not novel.known and novel.wire == "Inconclusive"
    assert TEST_RESULT.read(None) is None and TEST_RESULT.read("  ") is None


@pytest.mark.parametrize("value", [True, 1.5, [1], {"a": 1}])
def test_values_the_sdk_refuses_are_refused(value: Any) -> None:
    with pytest.raises(InvalidEnumValue, match="TestResult"):
        TEST_RESULT.read(value)


# --- through the adapters and the typed models ----------------------------------------------------------


def units_tested(result: Any, overall: Any = "Passed", method: Any = "ICT") -> dict[str, Any]:
    return {
        "TransactionId": "c16bb3f4-8088-4697-b789-80faec48ac5a",
        "TestMethod": method,
        "Tester": {"OperatorIdentifier": "B1", "ActorType": 0},
        "TestedUnits": [
            {
                "UnitIdentifier": "U1",
                "OverallResult": overall,
                "Tests": [{"TestName": "T1", "Result": result, "Measurements": [{"Result": result}]}],
            },
            {"UnitIdentifier": "U2", "OverallResult": "Passed", "Tests": []},
        ],
    }


@pytest.mark.parametrize("form", forms(TEST_RESULT, "Failed"))
def test_units_tested_reads_every_form_of_test_result_and_method(form: Any) -> None:
    method = forms(TEST_METHOD, "FCT")[forms(TEST_RESULT, "Failed").index(form)]
    events = decode(TESTED, units_tested(form, overall=form, method=method))
    p = events[0].payload
    assert (p["result"], p["method"]) == ("fail", "fct")
    assert p["tests"][0]["result"] == "fail" and p["tests"][0]["measurements"][0]["result"] == "fail"
    assert "unknown_enum_values" not in p and events[0].tags == ()
    model = typed(TESTED, units_tested(form, overall=form, method=method))
    unit = model.tested_units[0]
    assert (unit.overall_result, unit.tests[0].result, model.test_method) == ("Failed", "Failed", "FCT")
    assert model.tester.actor_type == "Human"


def test_unknown_integer_reaches_only_its_own_units_event_marked_unknown() -> None:
    first, second = decode(TESTED, units_tested(7))
    p = first.payload
    assert p["tests"][0]["result"] == 7 and p["tests"][0]["measurements"][0]["result"] == 7
    assert p["unknown_enum_values"] == [
        {"field": "TestedUnits[0].Tests[0].Result", "enum": "TestResult", "value": 7},
        {"field": "TestedUnits[0].Tests[0].Measurements[0].Result", "enum": "TestResult", "value": 7},
    ]
    assert first.tags == (UNKNOWN_ENUM_TAG,)
    assert "unknown_enum_values" not in second.payload and second.tags == ()
    # A message-level value outside the table is reported on every unit's event.
    both = decode(TESTED, units_tested("Passed", method=42))
    assert [e.payload["method"] for e in both] == [42, 42]
    assert all(e.payload["unknown_enum_values"][0]["field"] == "TestMethod" for e in both)
    assert typed(TESTED, units_tested(7)).tested_units[0].tests[0].result == 7


def test_boolean_enum_is_refused_in_both_routes_naming_the_field_and_origin() -> None:
    with pytest.raises(InvalidMessageBodyError) as fast:
        decode(TESTED, units_tested(True), origin="queue:line1")
    assert fast.value.field == "TestedUnits[0].Tests[0].Result" and fast.value.where == "queue:line1"
    assert "TestResult" in str(fast.value)
    with pytest.raises(InvalidMessageBodyError) as model:
        typed(TESTED, units_tested(True))
    assert model.value.field.startswith("TestedUnits[0].Tests[0].Result")


def test_inspection_method_and_results_as_integers() -> None:
    body = {
        "InspectionMethod": 1,
        "InspectedUnits": [{"UnitIdentifier": "U1", "OverallResult": 1, "Inspections": [{"Result": "1"}]}],
    }
    (ev,) = decode("CFX.Production.TestAndInspection.UnitsInspected", body)
    assert (ev.payload["method"], ev.payload["result"], ev.payload["inspections"][0]["result"]) == (
        "aoi",
        "fail",
        "fail",
    )
    model = typed("CFX.Production.TestAndInspection.UnitsInspected", body)
    assert (model.inspection_method, model.inspected_units[0].overall_result) == ("AOI", "Failed")


def test_work_result_and_unit_status_as_integers() -> None:
    body = {"Result": 2, "Units": [{"UnitIdentifier": "U1", "PositionNumber": 1, "Status": 2}]}
    (ev,) = decode("CFX.Production.WorkCompleted", body)
    # CFX/Structures/WorkResult.cs: Completed, Failed, Aborted; UnitStatus.cs: Pass, Fail, Scrap, Skip.
    assert ev.payload["result"] == "aborted" and ev.payload["units"][0]["status"] == "scrap"
    model = typed("CFX.Production.WorkCompleted", body)
    assert (model.result, model.units[0].status) == ("Aborted", "Scrap")


def test_disqualification_reason_as_number_and_lower_case() -> None:
    for form in (1, "1", "defectiverepairnotfeasible"):
        (ev,) = decode("CFX.Production.UnitsDisqualified", {"Reason": form, "Units": []})
        assert ev.payload["reason"] == "DefectiveRepairNotFeasible"
        assert typed("CFX.Production.UnitsDisqualified", {"Reason": form}).reason == "DefectiveRepairNotFeasible"


def test_fault_severity_cause_side_and_access_in_every_form() -> None:
    fault = {"Cause": 6, "Severity": "3", "SideLocation": "left", "AccessType": 3, "FaultOccurrenceId": "f1"}
    (ev,) = decode("CFX.ResourcePerformance.FaultOccurred", {"Fault": fault})
    p = ev.payload
    assert (p["cause"], p["fault_severity"], p["severity"]) == ("MechanicalFailure", "Alarm", "critical")
    assert (p["side_location"], p["access_type"]) == ("Left", "Remote")
    model = typed("CFX.ResourcePerformance.FaultOccurred", {"Fault": fault})
    f = model.fault
    assert (f.cause, f.severity, f.side_location, f.access_type) == ("MechanicalFailure", "Alarm", "Left", "Remote")
    # A severity outside the table keeps its number, maps to INFO and says so.
    (odd,) = decode("CFX.ResourcePerformance.FaultOccurred", {"Fault": {**fault, "Severity": 9}})
    assert odd.payload["fault_severity"] == 9 and odd.payload["severity"] == "info"
    assert odd.payload["unknown_enum_values"] == [{"field": "Fault.Severity", "enum": "FaultSeverity", "value": 9}]


# --- ResourceState (CFX/Structures/ResourceState.cs, CFX-Java ResourceState.java) ------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("SBY_NoProduct", 2200),
        ("sby_noproduct", 2200),
        ("PRD", 1000),
        ("NST_ShutdownAndStartup", 6500),
        ("USD_UserMaintentanceDelay", 5100),  # the SDK's own spelling, which CFX-Java copies
        ("USD_USERMAINTENTANCEDELAY", 5100),  # CFX-Java's constant name
        ("USD_UserMaintenanceDelay", 5100),  # the corrected spelling
        ("SBY_NOPRODUCTSTARVED", 2202),
        ("22A0", 2201),
        ("2200", 2200),
        (2200, 2200),
    ],
)
def test_resource_state_reads_sdk_and_java_spellings(value: Any, code: int) -> None:
    assert state_code(value) == code
    (ev,) = decode("CFX.ResourcePerformance.StationStateChanged", {"OldState": value, "NewState": value})
    assert ev.payload["new_state"] == code == ev.payload["old_state"]
    assert typed("CFX.ResourcePerformance.StationStateChanged", {"NewState": value}).new_state == code


def test_bad_resource_state_names_field_path_and_origin() -> None:
    with pytest.raises(InvalidResourceStateError) as info:
        decode("CFX.ResourcePerformance.StationStateChanged", {"NewState": "SBY_Napping"}, origin="file:a.json")
    assert info.value.field == "NewState" and info.value.where == "file:a.json"
    assert "file:a.json" in str(info.value) and "SBY_Napping" in str(info.value)


def test_station_state_changed_as_cfx_java_writes_it() -> None:
    # CFX-Java sdk/src/main/java/org/ipc/cfx/CFXEnvelope.java (Jackson, dates as text with +0000) and
    # resourceperformance/StationStateChanged.java (states as ResourceState text, duration a Long).
    text = (
        '{"MessageName":"CFX.ResourcePerformance.StationStateChanged","Version":"1.1",'
        '"TimeStamp":"2019-11-22T09:40:17.000+0000","UniqueID":"5d3b6e2a-4a55-4b8e-9a3c-0c8f0f6a1b2c",'
        '"Source":"Java.Station.SN1","Target":null,"RequestID":null,"MessageBody":{'
        '"OldState":"SBY_NoProduct","OldStateDuration":85,"NewState":"USD_UserMaintentanceDelay",'
        '"RelatedFault":{"Cause":"MechanicalFailure","Severity":"Error","FaultCode":"","FaultOccurrenceId":"f-9"}}}'
    )
    (ev,) = decode_cfx(text.encode(), DecodeContext(origin="queue:java"))
    p = ev.payload
    assert (p["old_state"], p["new_state"], p["new_category"]) == (2200, 5100, "USD")
    assert p["old_state_duration_s"] == 85.0 and p["related_fault"]["cause"] == "MechanicalFailure"
    assert ev.timestamp.isoformat() == "2019-11-22T09:40:17+00:00" and ev.severity.value == "warning"
