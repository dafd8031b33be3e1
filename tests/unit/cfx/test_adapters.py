"""CFX messages -> events: the mapping table, ids, severities, and bodies that do not fit."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pywats_cfx import (
    CFXEnvelope,
    InvalidMessageBodyError,
    decode_cfx,
    encode_envelope,
    envelope_to_bytes,
    envelope_to_events,
    generate_envelope,
    parse_envelopes,
    parse_message,
    strip_type_members,
)
from pywats_cfx.errors import InvalidResourceStateError
from pywats_events.codec import DecodeContext
from pywats_events.event import Event, derive_event_id

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "cfx"


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def events_of(name: str, **ctx: Any) -> tuple[CFXEnvelope, list[Event]]:
    data = sample(name)
    return parse_envelopes(data)[0], decode_cfx(data, DecodeContext(**ctx))


def with_body(message_name: str, body: dict[str, Any]) -> bytes:
    return envelope_to_bytes(encode_envelope(message_name, body, source="A.B.C", unique_id="u-1"))


def test_units_tested_one_event_per_unit_with_the_sdk_values() -> None:
    env, events = events_of("CFX.Production.TestAndInspection.UnitsTested__1")
    assert len(events) == 2
    first = events[0]
    p = first.payload
    assert first.type == "test.result" and first.source == "SMTPlus.Model_21232.SN23123"
    assert (p["unit_id"], p["result"], p["method"], p["operator_id"]) == (
        "PANEL34543535",
        "pass",
        "automated",
        "BADGE489499",
    )
    assert p["recipe"] is None and p["unit_position"] == 1
    assert p["cfx_message"] == env.message_name and p["unique_id"] == env.unique_id
    assert p["handle"] == "SMTPlus.Model_21232.SN23123"
    assert [t["name"] for t in p["tests"]] == ["RESISTANCE_CHECK_R21", "RESISTANCE_CHECK_R22"]
    assert [t["result"] for t in p["tests"]] == ["pass", "fail"]
    m = p["tests"][0]["measurements"][0]
    assert m == {
        "name": "RESISTANCE_MEASUREMENT_R21",
        "id": "e7398b02-e649-4918-96b8-c426629b6762",
        "sequence": 0,
        "value": 28300.0,
        "units": "Ohm",
        "expected_value": 28.2,
        "expected_value_units": "kOhm",  # Value in Ohm, ExpectedValue in kOhm: both units matter
        "low_limit": 28.0,
        "high_limit": 28.4,
        "result": "pass",
        "ref_designators": "R21",
        "time_recorded": None,
    }
    assert p["tests"][1]["symptoms"][0]["code"] == "RESFAIL2"
    assert first.correlation_id == "c16bb3f4-8088-4697-b789-80faec48ac5a" == p["transaction_id"]
    assert first.subjects == ("PANEL34543535",)
    assert first.timestamp == env.time_stamp
    assert [e.id for e in events] == [derive_event_id(env.unique_id or "", i) for i in range(2)]


def test_units_tested_start_and_end_times() -> None:
    _, (ev,) = events_of("CFX.Production.TestAndInspection.UnitsTested__2")
    assert ev.payload["start_time"] == "2018-10-03T16:02:33.2831984-04:00"
    assert ev.payload["end_time"] == "2018-10-03T16:03:05.2842009-04:00"


def test_units_inspected_defects_and_failed_severity() -> None:
    _, events = events_of("CFX.Production.TestAndInspection.UnitsInspected__1")
    ok, bad = events
    assert (ok.type, ok.payload["result"], ok.severity.value) == ("inspection.result", "pass", "info")
    assert (bad.payload["result"], bad.severity.value, bad.payload["method"]) == ("fail", "warning", "aoi")
    assert [(d["code"], d["category"], d["component"]) for d in bad.payload["defects"]] == [
        ("ISFSLD112", "Solder Problems", "R22.1"),
        ("TMBSTN211", "Solder Problems", "R22"),
        ("SCR23443", "Cosmetic Problems", None),
    ]
    assert bad.payload["unit_position"] == 2


def test_units_inspected_panel_only_report_gives_one_panel_event() -> None:
    _, (ev,) = events_of("CFX.Production.TestAndInspection.UnitsInspected__5")
    assert ev.payload["unit_id"] == "PN123456789" and ev.payload["is_panel"] is True


def test_zero_guid_transaction_is_no_correlation() -> None:
    _, (ev,) = events_of("CFX.Production.TestAndInspection.UnitsInspected__4")
    assert ev.correlation_id is None and ev.payload["recipe"] == "SolderRecipeXYZ_TextBoard1"


def test_work_started_and_completed() -> None:
    env, (ev,) = events_of("CFX.Production.WorkStarted__1")
    assert ev.type == "production.work_started" and ev.id == env.unique_id
    assert ev.payload["transaction_id"] == "2c24590d-39c5-4039-96a5-91900cecedfa" == ev.correlation_id
    assert ev.payload["lane"] == 1
    assert [(u["unit_id"], u["position"]) for u in ev.payload["units"]] == [("CARRIER5566", 1), ("CARRIER5566", 2)]
    assert ev.subjects == ("CARRIER5566",)
    _, (done,) = events_of("CFX.Production.WorkCompleted__1")
    assert done.type == "production.work_completed" and done.payload["result"] == "completed"


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("CFX.Production.UnitsArrived__1", "production.unit_arrived"),
        ("CFX.Production.UnitsDeparted__1", "production.unit_departed"),
        ("CFX.Production.UnitsDisqualified__1", "production.unit_disqualified"),
    ],
)
def test_unit_movements(name: str, type_: str) -> None:
    _, (ev,) = events_of(name)
    assert ev.type == type_ and len(ev.payload["units"]) == 2
    if type_ == "production.unit_disqualified":
        assert ev.payload["reason"] == "DefectiveRepairNotPossible"


def test_materials_installed_from_the_sdk_example_text() -> None:
    # The SDK's only MaterialsInstalled example is broken JSON; its valid first item is used as is.
    text = (SAMPLES / "invalid" / "CFX.Production.Assembly.MaterialsInstalled__1.json").read_text()
    start = text.index("{", text.index('"InstalledMaterials"'))
    end = text.index("    },\n    {", start) + 5
    body = {
        "TransactionId": "ce1cf002-50fe-4cd4-af27-5e46fdae5608",
        "InstalledMaterials": [json.loads(text[start:end])],
    }
    (ev,) = decode_cfx(with_body("CFX.Production.Assembly.MaterialsInstalled", body), DecodeContext())
    assert ev.type == "material.installed" and ev.payload["unit_id"] == "PANEL23423432"
    assert [c["ref_designator"] for c in ev.payload["components"]] == ["R1", "R2", "R3"]
    assert ev.payload["components"][0]["part_number"] == "IPN47788"
    assert ev.payload["components"][0]["lot"] is None
    assert ev.payload["material_id"] == "MAT4566556456"
    assert ev.id == derive_event_id("u-1", 0)


def test_materials_loaded() -> None:
    _, (ev,) = events_of("CFX.Materials.Storage.MaterialsLoaded__1")
    assert ev.type == "material.loaded" and len(ev.payload["materials"]) == 6
    assert ev.payload["materials"][1]["material_id"] == "MAT4566554543"
    assert ev.payload["materials"][1]["carrier_id"] == "1233334"


def test_fault_occurred() -> None:
    _, (ev,) = events_of("CFX.ResourcePerformance.FaultOccurred__1")
    p = ev.payload
    assert ev.type == "asset.fault" and ev.severity.value == "error"
    assert (p["asset_id"], p["fault_id"], p["code"], p["cause"], p["severity"], p["description"]) == (
        "SMTPlus.Model_21232.SN23123",
        "ea170e0a-43fb-4b02-af2c-928a8401dd51",
        "ERROR 3943480",
        "MechanicalFailure",
        "error",
        None,
    )
    assert ev.subjects == ("SMTPlus.Model_21232.SN23123",)


@pytest.mark.parametrize(
    ("cfx", "severity"), [("Information", "info"), ("Warning", "warning"), ("Error", "error"), ("Alarm", "critical")]
)
def test_fault_severity_mapping(cfx: str, severity: str) -> None:
    (ev,) = decode_cfx(
        with_body("CFX.ResourcePerformance.FaultOccurred", {"Fault": {"Severity": cfx}}), DecodeContext()
    )
    assert ev.severity.value == severity == ev.payload["severity"]


@pytest.mark.parametrize(
    ("name", "type_", "fault_id"),
    [
        ("CFX.ResourcePerformance.FaultCleared__1", "asset.fault_cleared", "22ac3c8a-9e6d-42f8-85b2-f51bf2224ecc"),
        (
            "CFX.ResourcePerformance.FaultAcknowledged__1",
            "asset.fault_acknowledged",
            "5af7e56c-cfbf-4f1f-aa4c-79d94a7442bc",
        ),
    ],
)
def test_fault_follow_ups(name: str, type_: str, fault_id: str) -> None:
    _, (ev,) = events_of(name)
    assert ev.type == type_
    assert (ev.payload["fault_id"], ev.payload["operator_id"]) == (fault_id, "BADGE4486")
    assert ev.payload["asset_id"] == "SMTPlus.Model_21232.SN23123"


def test_station_state_changed() -> None:
    _, (ev,) = events_of("CFX.ResourcePerformance.StationStateChanged__1")
    p = ev.payload
    assert (p["old_state"], p["new_state"], p["old_state_name"], p["new_state_name"]) == (
        2200,
        1100,
        "SBY_NoProduct",
        "PRD_RegularWork",
    )
    assert (p["new_category"], p["old_state_duration_s"], ev.severity.value) == ("PRD", 85.0, "info")
    _, (down,) = events_of("CFX.ResourcePerformance.StationStateChanged__2")
    assert (down.payload["new_category"], down.severity.value) == ("USD", "warning")


@pytest.mark.parametrize(("wire", "code"), [(2200, 2200), ("1100", 1100), ("22A0", 2201), ("22B0", 2202)])
def test_resource_state_forms(wire: object, code: int) -> None:
    body = {"OldState": wire, "NewState": wire, "OldStateDuration": "1.00:00:01.5"}
    (ev,) = decode_cfx(with_body("CFX.ResourcePerformance.StationStateChanged", body), DecodeContext())
    assert ev.payload["new_state"] == code == ev.payload["old_state"]
    assert ev.payload["old_state_duration_s"] == 86401.5


def test_bad_resource_state_names_the_field() -> None:
    with pytest.raises(InvalidResourceStateError, match="NewState"):
        decode_cfx(with_body("CFX.ResourcePerformance.StationStateChanged", {"NewState": "busy"}), DecodeContext())


@pytest.mark.parametrize(
    ("name", "type_"),
    [
        ("CFX.EndpointConnected__1", "system.endpoint_connected"),
        ("CFX.EndpointShuttingDown__1", "system.endpoint_shutting_down"),
        ("CFX.Heartbeat__1", "system.heartbeat"),
    ],
)
def test_endpoint_messages(name: str, type_: str) -> None:
    _, (ev,) = events_of(name)
    assert ev.type == type_ and ev.payload["handle"] == "SMTPlus.Model_21232.SN23123"


def test_other_messages_carry_the_body_without_type_members() -> None:
    env, (ev,) = events_of("CFX.Maintenance.GetResourceInformationResponse__1")
    assert ev.type == env.message_name and ev.id == env.unique_id
    assert "$type" not in json.dumps(ev.payload)
    assert ev.payload.keys() == {k for k in env.message_body if k != "$type"}
    assert "$type" in json.dumps(env.message_body)


def test_source_falls_back_to_transport_then_unknown() -> None:
    data = sample("envelope-EndpointConnected")  # the SDK's own envelope has "Source": null
    assert decode_cfx(data, DecodeContext(source="Line1.Station2"))[0].source == "Line1.Station2"
    assert decode_cfx(data, DecodeContext())[0].source == "unknown"


def test_headers_are_copied_into_each_event() -> None:
    headers = {"routing_key": "cfx.line1"}
    events = decode_cfx(sample("CFX.Production.TestAndInspection.UnitsTested__1"), DecodeContext(headers=headers))
    assert all(e.headers == headers for e in events)
    assert events[0].headers is not events[1].headers


def test_ids_are_stable_across_redelivery_and_per_item() -> None:
    data = sample("CFX.Production.TestAndInspection.UnitsInspected__1")
    first = [e.id for e in decode_cfx(data, DecodeContext())]
    again = [e.id for e in decode_cfx(data, DecodeContext(origin="redelivered"))]
    assert first == again and len(set(first)) == 2


def test_envelope_without_unique_id_gets_a_content_derived_stable_id() -> None:
    wire = json.loads(sample("CFX.Heartbeat__1"))
    wire["UniqueID"] = None
    data = json.dumps(wire).encode()
    ids = {decode_cfx(data, DecodeContext())[0].id for _ in range(2)}
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f-]{36}", ids.pop())


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("CFX.Production.TestAndInspection.UnitsTested", {"TestedUnits": {"a": 1}}, "TestedUnits"),
        ("CFX.Production.TestAndInspection.UnitsTested", {"TestedUnits": [5]}, "TestedUnits[0]"),
        (
            "CFX.Production.TestAndInspection.UnitsTested",
            {"TestedUnits": [{"UnitIdentifier": 12}]},
            "TestedUnits[0].UnitIdentifier",
        ),
        (
            "CFX.Production.TestAndInspection.UnitsTested",
            {"testedunits": [{"Tests": [{"TestStartTime": "soon"}]}]},
            "testedunits[0].Tests[0].TestStartTime",
        ),
        (
            "CFX.Production.TestAndInspection.UnitsTested",
            {"TestedUnits": [{"Tests": [{"Measurements": [{"MeasuredValue": {"Value": "high"}}]}]}]},
            "TestedUnits[0].Tests[0].Measurements[0].MeasuredValue.Value",
        ),
        ("CFX.Production.TestAndInspection.UnitsInspected", {"InspectedUnits": "x"}, "InspectedUnits"),
        ("CFX.Production.WorkStarted", {"Lane": "left"}, "Lane"),
        ("CFX.Production.WorkStarted", {"Units": [{"UnitIdentifier": ["a"]}]}, "Units[0].UnitIdentifier"),
        (
            "CFX.Production.Assembly.MaterialsInstalled",
            {"InstalledMaterials": [{"Material": 3}]},
            "InstalledMaterials[0].Material",
        ),
        (
            "CFX.Materials.Storage.MaterialsLoaded",
            {"Materials": [{"MaterialPackage": []}]},
            "Materials[0].MaterialPackage",
        ),
        ("CFX.ResourcePerformance.FaultOccurred", {"Fault": "bad"}, "Fault"),
        ("CFX.ResourcePerformance.FaultCleared", {"Operator": 1}, "Operator"),
        ("CFX.ResourcePerformance.StationStateChanged", {"OldState": 1100}, "NewState"),
        ("CFX.Heartbeat", {"CFXHandle": False}, "CFXHandle"),
    ],
)
def test_body_that_does_not_fit_names_the_field_in_both_routes(name: str, body: dict[str, Any], field: str) -> None:
    data = with_body(name, body)
    with pytest.raises(InvalidMessageBodyError) as fast:
        decode_cfx(data, DecodeContext(origin="q"))
    assert fast.value.field == field
    assert f"MessageBody.{field}" in str(fast.value) and fast.value.where == "q"
    # The typed model refuses the same body, naming the same field (up to letter case).
    with pytest.raises(InvalidMessageBodyError) as typed:
        parse_message(parse_envelopes(data)[0])
    assert typed.value.field.lower().startswith(field.lower()) or field.lower().startswith(typed.value.field.lower())


def _typed_view(env: CFXEnvelope) -> list[dict[str, Any]]:
    """What the typed models say about the fields the adapters read, event by event."""
    model: Any = parse_message(env)
    results = {"Passed": "pass", "Failed": "fail"}
    name = env.message_name.rsplit(".", 1)[-1]
    if name == "UnitsTested":
        return [
            {
                "unit_id": u.unit_identifier,
                "result": results.get(u.overall_result, u.overall_result),
                "method": model.test_method.lower(),
                "operator_id": model.tester.operator_identifier if model.tester else None,
                "tests": [(t.test_name, results[t.result], len(t.measurements)) for t in u.tests],
            }
            for u in model.tested_units
        ]
    if name == "UnitsInspected":
        units = model.inspected_units + ([model.inspected_panel] if model.inspected_panel else [])
        return [
            {
                "unit_id": u.unit_identifier,
                "result": results.get(u.overall_result, u.overall_result),
                "defects": [d.defect_code for i in u.inspections for d in i.defects_found],
            }
            for u in units
        ]
    if name in ("WorkStarted", "WorkCompleted", "UnitsArrived", "UnitsDeparted", "UnitsDisqualified"):
        return [{"units": [(u.unit_identifier, u.position_number) for u in model.units]}]
    if name == "FaultOccurred":
        return [{"fault_id": model.fault.fault_occurrence_id, "code": model.fault.fault_code}]
    if name in ("FaultCleared", "FaultAcknowledged"):
        return [{"fault_id": model.fault_occurrence_id, "operator_id": model.operator.operator_identifier}]
    if name == "StationStateChanged":
        return [{"old_state": model.old_state, "new_state": model.new_state}]
    if name == "MaterialsLoaded":
        return [{"materials": [m.material_package.unique_identifier for m in model.materials]}]
    if name == "UnitsProcessed":
        units = model.unit_process_data or [None]
        return [{"unit_id": u.unit_identifier if u else None} for u in units]
    if name == "UnitsRepaired":
        return [
            {"unit_id": u.unit_identifier, "result": u.overall_result, "repairs": [r.repair_name for r in u.repairs]}
            for u in model.repaired_units
        ]
    if name == "MaterialsUninstalled":
        return [{"unit_id": u.unit_identifier, "reason": u.reason} for u in model.uninstalled_materials]
    if name in ("UnitsInitialized", "UnitsLoaded", "UnitsUnloaded"):
        return [{"units": [(u.unit_identifier, u.position_number) for u in model.units]}]
    if name in ("WorkStageStarted", "WorkStageCompleted"):
        return [{"stage": model.stage.stage_name if model.stage else None}]
    if name == "ToolsUsed":
        return [{"tools": [t.tool.unique_identifier for t in model.used_tools]}]
    if name in ("OperatorActivated", "OperatorDeactivated"):
        return [{"operator_id": model.operator.operator_identifier}]
    if name == "MaintenancePerformed":
        return [{"maintenance_type": model.maintenance_type, "order_number": model.maintenance_order_number}]
    if name == "CalibrationPerformed":
        return [{"code": model.calibration.calibration_code, "calibration_type": model.calibration.calibration_type}]
    if name == "MaterialsConsumed":
        return [
            {"materials": [c.material_location.material_package.unique_identifier for c in model.consumed_materials]}
        ]
    if name == "MaterialsUnloaded":
        return [{"material_ids": model.material_package_identifiers}]
    if name == "ProcessDataRecorded":
        return [{"process_data": strip_type_members(model.process_data)}]
    if name == "StationOnline":
        return [{"offline_duration_s": model.offline_duration.total_seconds()}]
    if name == "StationOffline":
        return [{}]
    return [{"handle": model.cfx_handle}]


def _adapter_view(ev: Event, like: dict[str, Any]) -> dict[str, Any]:
    p = ev.payload
    out: dict[str, Any] = {}
    for key in like:
        if key == "tests":
            out[key] = [(t["name"], t["result"], len(t["measurements"])) for t in p["tests"]]
        elif key == "defects":
            out[key] = [d["code"] for d in p["defects"]]
        elif key == "units":
            out[key] = [(u["unit_id"], u["position"]) for u in p["units"]]
        elif key == "materials":
            out[key] = [m["material_id"] for m in p["materials"]]
        elif key == "repairs":
            out[key] = [r["name"] for r in p["repairs"]]
        elif key == "tools":
            out[key] = [t["tool_id"] for t in p["tools"]]
        else:
            out[key] = p[key]
    return out


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(SAMPLES.glob("CFX.*.json")) if parse_message(parse_envelopes(p.read_bytes())[0]) is not None],
    ids=lambda p: p.stem,
)
def test_fast_adapter_agrees_with_the_typed_models(path: Path) -> None:
    env = parse_envelopes(path.read_bytes())[0]
    typed = _typed_view(env)
    events = envelope_to_events(env)
    assert len(events) == len(typed)
    for ev, expected in zip(events, typed, strict=True):
        assert _adapter_view(ev, expected) == expected


def test_generated_envelopes_decode_for_every_kind() -> None:
    from pywats_cfx import GENERATOR_KINDS

    for kind in GENERATOR_KINDS:
        for failed in (False, True):
            env = generate_envelope(kind, seq=7, failed=failed)
            assert env == generate_envelope(kind, seq=7, failed=failed)
            events = decode_cfx(envelope_to_bytes(env), DecodeContext())
            assert events and parse_message(parse_envelopes(envelope_to_bytes(env))[0]) is not None
            if kind == "units-tested":
                assert events[0].severity.value == ("warning" if failed else "info")
    assert 900 <= len(envelope_to_bytes(generate_envelope("units-tested"))) <= 1300
