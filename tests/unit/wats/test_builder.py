"""Builder: the real CFX samples' test and inspection results become reports the strict fake accepts,
mapped as WATS.md §6 says; bad input is a ReportBuildError naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pywats_events.event import Event
from pywats_wats.builder import ReportBuilder, input_schema
from pywats_wats.errors import ReportBuildError, WatsConfigError
from pywats_wats.testing import validate_report
from tests.unit.wats.conftest import RESULT_TYPES, report_settings, sample_events

PROCESSES = {10, 20, 30}
SCHEMA = Path(__file__).resolve().parents[3] / "samples" / "wats" / "test-result.schema.json"


def station_event(payload: dict[str, Any], type_: str = "test.result", source: str = "ICT-01") -> Event:
    return Event(type=type_, source=source, payload=payload, timestamp=datetime(2024, 5, 2, 8, 15, 30, tzinfo=UTC))


def mqtt_payload(**extra: Any) -> dict[str, Any]:
    """A station's own JSON, written to the documented input contract (as an MQTT rule delivers it)."""
    return {
        "unit_id": "SN-000123",
        "result": "pass",
        "operator_id": "op7",
        "tests": [
            {
                "name": "Rails",
                "result": "pass",
                "start_time": "2024-05-02T10:15:30+02:00",
                "end_time": "2024-05-02T10:15:42.5+02:00",
                "measurements": [
                    {"name": "3V3", "value": 3.31, "units": "V", "low_limit": 3.2, "high_limit": 3.4},
                    {"name": "5V", "value": 5.02, "units": "V", "low_limit": 4.9, "high_limit": 5.1},
                ],
            },
            {"name": "Firmware", "measurements": [{"value": "1.4.2"}]},
            {"name": "Supply current", "measurements": [{"value": 0.41, "units": "A", "high_limit": 0.5}]},
        ],
        **extra,
    }


@pytest.mark.parametrize(("name", "event"), sample_events(*RESULT_TYPES), ids=lambda v: getattr(v, "id", v))
def test_every_sample_result_becomes_a_report_the_strict_fake_accepts(name: str, event: Event) -> None:
    report = ReportBuilder(report_settings()).build(event)
    assert report is not None
    body = report.to_wsjf()
    assert validate_report(body, PROCESSES, strict=True) == []
    assert body["id"] == event.id and body["sn"] == event.payload["unit_id"]
    misc = {m["description"]: m.get("text") for m in body.get("miscInfos", [])}
    assert misc["cfx.unique_id"] == event.payload["unique_id"]
    if event.payload.get("transaction_id"):
        assert misc["cfx.transaction_id"] == event.payload["transaction_id"]
    steps = body["root"]["steps"]
    assert len(steps) == len(event.payload.get("tests") or event.payload.get("inspections"))


def test_units_tested_failure_is_marked_with_its_symptom_and_fails_the_report() -> None:
    event = next(e for n, e in sample_events("test.result") if n.endswith("UnitsTested__1.json"))
    body = ReportBuilder(report_settings()).build(event).to_wsjf()  # type: ignore[union-attr]
    r22 = next(s for s in body["root"]["steps"] if s["name"] == "RESISTANCE_CHECK_R22")
    assert r22["status"] == "F" and r22["causedUUTFailure"] is True
    assert r22["errorMessage"] == "RESFAIL2: Resistance Value Out of Tolerance"
    assert "R22.1 R22.2" in r22["reportText"]
    assert r22["booleanMeas"] == [{"status": "F"}]
    assert body["root"]["status"] == "F" and body["result"] == "F"
    assert body["root"]["seqCall"] == {
        "path": "cfx://SMTPlus.Model_21232.SN23123",
        "name": "UnitsTested",
        "version": "1.0.0",
    }
    assert body["uut"]["user"] == "BADGE489499" and body["uut"]["testSocketIndex"] == 1


def test_limits_verdict_overrules_a_tester_pass_that_contradicts_its_limits_and_says_so() -> None:
    # Sample unit 2 passes by the tester's word with 28300 Ohm against 28.0..28.4.
    event = [e for n, e in sample_events("test.result") if n.endswith("UnitsTested__1.json")][1]
    assert event.payload["result"] == "pass"
    body = ReportBuilder(report_settings()).build(event).to_wsjf()  # type: ignore[union-attr]
    assert body["result"] == "F"
    meas = body["root"]["steps"][0]["numericMeas"][0]
    assert meas == {
        "status": "F",
        "value": 28300.0,
        "unit": "Ohm",
        "compOp": "GELE",
        "lowLimit": 28.0,
        "highLimit": 28.4,
    }
    assert {"description": "tester_result", "text": "pass"} in body["miscInfos"]
    assert body["root"]["steps"][0]["errorMessage"] == "RESISTANCE_MEASUREMENT_R21: 28300 Ohm outside GELE 28..28.4"
    kept = ReportBuilder(report_settings(verdict="tester")).build(event).to_wsjf()  # type: ignore[union-attr]
    assert kept["result"] == "P"
    assert validate_report(kept, PROCESSES, strict=False) == []
    assert any("fails GELE" in p for p in validate_report(kept, PROCESSES, strict=True))


def test_inspection_defects_become_failing_steps_with_their_text() -> None:
    event = [e for n, e in sample_events("inspection.result") if n.endswith("UnitsInspected__1.json")][1]
    body = ReportBuilder(report_settings(process_codes={"aoi": 30})).build(event).to_wsjf()  # type: ignore[union-attr]
    assert body["processCode"] == 30 and body["result"] == "F"
    r22 = next(s for s in body["root"]["steps"] if s["name"] == "INSPECT_R22")
    assert r22["stepType"] == "ET_PFT" and r22["status"] == "F" and r22["causedUUTFailure"] is True
    assert r22["errorMessage"] == ("ISFSLD112: Insuffiecient Solder on R22, Lead 1; TMBSTN211: Tombston on R22")


def test_contract_payload_maps_multi_string_and_single_limit_measurements() -> None:
    body = ReportBuilder(report_settings(timezone="+02:00")).build(station_event(mqtt_payload())).to_wsjf()  # type: ignore[union-attr]
    assert validate_report(body, PROCESSES, strict=True) == []
    rails, firmware, current = body["root"]["steps"]
    assert rails["stepType"] == "SequenceCall" and [s["name"] for s in rails["steps"]] == ["3V3", "5V"]
    assert rails["steps"][0]["numericMeas"][0]["compOp"] == "GELE"
    assert firmware["stepType"] == "ET_SVT" and firmware["stringMeas"] == [
        {"status": "P", "value": "1.4.2", "compOp": "LOG"}
    ]
    assert current["numericMeas"][0] == {"status": "P", "value": 0.41, "unit": "A", "compOp": "LE", "lowLimit": 0.5}
    assert body["start"] == "2024-05-02T10:15:30.000+02:00" and body["startUTC"] == "2024-05-02T08:15:30.000Z"
    assert body["uut"]["execTime"] == 12.5 and body["machineName"] == "ICT-01"


def test_product_fields_layer_defaults_method_station_recipe_resolver_payload() -> None:
    settings = report_settings(
        process_codes={"fct": 20},
        stations={"ICT-01": {"part_number": "PN-STATION", "machine_name": "Tester 1"}},
        recipes={"R-7": {"part_number": "PN-RECIPE", "revision": "C"}},
    )
    b = ReportBuilder(settings)
    base = b.build(station_event(mqtt_payload(method="FCT"))).to_wsjf()  # type: ignore[union-attr]
    assert (base["pn"], base["rev"], base["processCode"], base["machineName"]) == ("PN-STATION", "A", 20, "Tester 1")
    recipe = b.build(station_event(mqtt_payload(method="fct", recipe="R-7"))).to_wsjf()  # type: ignore[union-attr]
    assert (recipe["pn"], recipe["rev"]) == ("PN-RECIPE", "C")
    own = b.build(station_event(mqtt_payload(recipe="R-7", part_number="PN-OWN", process_code=30))).to_wsjf()  # type: ignore[union-attr]
    assert (own["pn"], own["processCode"]) == ("PN-OWN", 30)
    resolved = ReportBuilder(report_settings(resolver="tests.unit.wats.resolver:product")).build(
        station_event(mqtt_payload(recipe="R-7"))
    )
    assert resolved is not None and (resolved.pn, resolved.rev) == ("PN-RESOLVED-R-7", "Z")


@pytest.mark.parametrize(
    ("payload", "settings", "needle"),
    [
        (mqtt_payload(unit_id=None), {}, "payload.unit_id is missing"),
        (mqtt_payload(unit_id="SN*1"), {}, "contains '\\*'"),
        (mqtt_payload(result="maybe"), {}, "payload.result"),
        (mqtt_payload(tests=[{"name": "x", "measurements": "none"}]), {}, "payload.tests.0.measurements"),
        (mqtt_payload(), {"part_number": None}, "no part_number"),
        (mqtt_payload(), {"process_code": None}, "no process_code"),
        ({"wsjf": {"type": "T", "sn": "x"}}, {}, "payload.wsjf"),
    ],
)
def test_bad_input_is_a_report_build_error_naming_the_field(
    payload: dict[str, Any], settings: dict[str, Any], needle: str
) -> None:
    event = station_event(payload)
    with pytest.raises(ReportBuildError, match=needle) as info:
        ReportBuilder(report_settings(**settings)).build(event)
    assert event.id in str(info.value)


def test_ready_made_wsjf_passes_through_after_validation_with_the_event_id() -> None:
    first = ReportBuilder(report_settings()).build(station_event(mqtt_payload()))
    assert first is not None
    wsjf = first.to_wsjf()
    del wsjf["id"]
    event = station_event({"wsjf": wsjf})
    passed = ReportBuilder(report_settings(part_number=None)).build(event)
    assert passed is not None and passed.to_wsjf() == {**wsjf, "id": event.id}


def test_skipped_unit_is_terminated_or_dropped_as_configured() -> None:
    event = station_event(mqtt_payload(result="skipped"))
    assert ReportBuilder(report_settings()).build(event).result == "T"  # type: ignore[union-attr]
    assert ReportBuilder(report_settings(skipped="drop")).build(event) is None


def test_bad_timezone_and_resolver_are_configuration_errors() -> None:
    with pytest.raises(WatsConfigError, match="timezone"):
        ReportBuilder(report_settings(timezone="Mars/Olympus"))
    with pytest.raises(WatsConfigError, match="resolver"):
        ReportBuilder(report_settings(resolver="tests.unit.wats.resolver:missing"))


def test_published_input_schema_matches_the_contract_model() -> None:
    assert json.loads(SCHEMA.read_text()) == input_schema()


def repair_event(**extra: Any) -> Event:
    payload = {
        "unit_id": "FFSHkkskamJDHS",
        "result": "pass",
        "operator_id": "BADGE489499",
        "start_time": "2021-06-23T15:39:23-04:00",
        "end_time": "2021-06-23T15:40:03-04:00",
        "failed_report_id": "2c83bbc7-e07d-5913-8f2b-e8a7352b94bb",
        "test_process_code": 10,
        "repairs": [
            {"name": "Joint Repair", "comments": "Repaired cold solder joint at U34, Pin 5", "component": "U34.5"},
            {"name": "Joint Repair", "code": "Bridge", "category": "Solder", "component": "U24.4-5"},
        ],
        **extra,
    }
    return station_event(payload, type_="repair.result", source="REPAIR-1")


def test_repair_result_becomes_a_repair_report_the_strict_fake_accepts() -> None:
    body = ReportBuilder(report_settings(repair_process_code=500)).build(repair_event()).to_wsjf()  # type: ignore[union-attr]
    assert validate_report(body, {500}, strict=True) == []
    assert (body["type"], body["processCode"], body["result"], body["sn"]) == ("R", 500, "P", "FFSHkkskamJDHS")
    assert body["uur"] == {
        "user": "BADGE489499",
        "execTime": 40.0,
        "processCode": 10,
        "refUUT": "2c83bbc7-e07d-5913-8f2b-e8a7352b94bb",
    }
    (main,) = body["subUnits"]
    assert (main["idx"], main["partType"], main["pn"]) == (0, "Main", "PCBA-1000")
    assert main["failures"] == [
        {
            "category": "Component",
            "code": "Joint Repair",
            "comment": "Repaired cold solder joint at U34, Pin 5",
            "comRef": "U34.5",
        },
        {"category": "Solder", "code": "Bridge", "comRef": "U24.4-5"},
    ]
    broken = {**body, "subUnits": [{**main, "failures": [{"category": "Solder"}]}]}
    assert any("failures[0].code" in p for p in validate_report(broken, {500}))


def test_repair_without_a_repair_operation_is_a_build_error() -> None:
    with pytest.raises(ReportBuildError, match="repair_process_code"):
        ReportBuilder(report_settings()).build(repair_event())
