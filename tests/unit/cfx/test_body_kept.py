"""What the sender wrote reaches the event (issue 11, point 5).

Bodies are built the way the .NET SDK serializes its classes (PascalCase members, nulls written out,
``$type`` on polymorphic members); each test names the SDK file of the structure it exercises
(IPCConnectedFactoryExchange/CFX, ``CFX/Structures/*.cs`` and ``CFX/<Message>.cs``).
"""

from __future__ import annotations

from typing import Any

from pywats_cfx import decode_cfx, encode_envelope, envelope_to_bytes, parse_envelopes, parse_message
from pywats_events.codec import DecodeContext, get_decoder
from pywats_events.event import Event


def wire(name: str, body: dict[str, Any], **env: Any) -> bytes:
    return envelope_to_bytes(encode_envelope(name, body, source="Vendor.Model.SN1", unique_id="u-1", **env))


def decode(name: str, body: dict[str, Any], **env: Any) -> list[Event]:
    return decode_cfx(wire(name, body, **env), DecodeContext(origin="q"))


def typed(name: str, body: dict[str, Any]) -> Any:
    return parse_message(parse_envelopes(wire(name, body))[0])


TESTED = "CFX.Production.TestAndInspection.UnitsTested"
INSPECTED = "CFX.Production.TestAndInspection.UnitsInspected"


def test_boolean_and_text_measurements_keep_their_expected_value() -> None:
    # CFX/Structures/BooleanMeasurement.cs and TextMeasurement.cs: Value and ExpectedValue.
    measurements = [
        {
            "$type": "CFX.Structures.BooleanMeasurement, CFX",
            "MeasurementName": "LED",
            "Result": "Failed",
            "Value": False,
            "ExpectedValue": True,
        },
        {
            "$type": "CFX.Structures.TextMeasurement, CFX",
            "MeasurementName": "FW",
            "Result": "Passed",
            "Value": "1.2.3",
            "ExpectedValue": "1.2.3",
        },
    ]
    body = {"TestedUnits": [{"UnitIdentifier": "U1", "Tests": [{"TestName": "T", "Measurements": measurements}]}]}
    (ev,) = decode(TESTED, body)
    got = [(m["name"], m["value"], m["expected_value"]) for m in ev.payload["tests"][0]["measurements"]]
    assert got == [("LED", False, True), ("FW", "1.2.3", "1.2.3")]
    model = typed(TESTED, body).tested_units[0].tests[0].measurements
    assert [(m.value, m.expected_value) for m in model] == [(False, True), ("1.2.3", "1.2.3")]


def test_material_lot_comes_from_batch_id() -> None:
    # CFX/Structures/MaterialPackage.cs: BatchId; there is no lot code member.
    package = {"UniqueIdentifier": "REEL1", "InternalPartNumber": "PN-1", "Quantity": 100, "BatchId": "LOT-7"}
    body = {
        "InstalledMaterials": [
            {"UnitIdentifier": "U1", "Material": package, "InstalledComponents": [{"ReferenceDesignator": "R1"}]}
        ]
    }
    (ev,) = decode("CFX.Production.Assembly.MaterialsInstalled", body)
    assert ev.payload["lot"] == "LOT-7" and ev.payload["components"][0]["lot"] == "LOT-7"
    (loaded,) = decode("CFX.Materials.Storage.MaterialsLoaded", {"Materials": [{"MaterialPackage": package}]})
    assert loaded.payload["materials"][0]["lot"] == "LOT-7"
    model = typed("CFX.Materials.Storage.MaterialsLoaded", {"Materials": [{"MaterialPackage": package}]})
    assert model.materials[0].material_package.batch_id == "LOT-7"


def test_inspected_panel_beside_units_gets_its_own_event() -> None:
    # CFX/Production/TestAndInspection/UnitsInspected.cs: InspectedUnits and InspectedPanel (CFX 1.6).
    body = {
        "InspectionMethod": "AOI",
        "InspectedUnits": [
            {"UnitIdentifier": "U1", "OverallResult": "Passed", "Inspections": []},
            {"UnitIdentifier": "U2", "OverallResult": "Passed", "Inspections": []},
        ],
        "InspectedPanel": {
            "UnitIdentifier": "PANEL1",
            "OverallResult": "Failed",
            "Inspections": [
                {"InspectionName": "FIDUCIAL", "Result": "Failed", "DefectsFound": [{"DefectCode": "FID_MISSING"}]}
            ],
        },
    }
    events = decode(INSPECTED, body)
    assert [(e.payload["unit_id"], e.payload["is_panel"], e.payload["result"]) for e in events] == [
        ("U1", False, "pass"),
        ("U2", False, "pass"),
        ("PANEL1", True, "fail"),
    ]
    assert events[2].payload["defects"][0]["code"] == "FID_MISSING"
    assert len({e.id for e in events}) == 3


def test_inspection_measurements_and_symptoms_reach_the_event() -> None:
    # CFX/Structures/Inspection.cs: Symptoms and Measurements beside DefectsFound.
    inspection = {
        "InspectionName": "HEIGHT",
        "Result": "Passed",
        "Measurements": [
            {
                "$type": "CFX.Structures.NumericMeasurement, CFX",
                "MeasurementName": "H1",
                "MeasuredValue": {"Value": 0.12, "ValueUnits": "mm", "ExpectedValue": 0.1},
            }
        ],
        "Symptoms": [{"SymptomCode": "LOW"}],
    }
    body = {"InspectedUnits": [{"UnitIdentifier": "U1", "Inspections": [inspection]}]}
    (ev,) = decode(INSPECTED, body)
    insp = ev.payload["inspections"][0]
    assert (insp["measurements"][0]["name"], insp["measurements"][0]["value"]) == ("H1", 0.12)
    assert insp["measurements"][0]["expected_value"] == 0.1 and insp["symptoms"][0]["code"] == "LOW"


def test_fault_keeps_side_access_translations_and_subtype_members() -> None:
    # CFX/Structures/Fault.cs; CFX/Structures/SMTPlacement/SMTPlacementFault.cs adds ProgramStep etc.
    fault = {
        "$type": "CFX.Structures.SMTPlacement.SMTPlacementFault, CFX",
        "Cause": "MechanicalFailure",
        "Severity": "Error",
        "FaultCode": "ERROR 3943480",
        "FaultOccurrenceId": "f1",
        "SideLocation": "Right",
        "AccessType": "Local",
        "Description": "Nozzle blocked",
        "DescriptionTranslations": {"de": "Düse verstopft"},
        "ProgramStep": 12,
        "ReferencePartNumber": "PN-9",
    }
    (ev,) = decode("CFX.ResourcePerformance.FaultOccurred", {"Fault": fault})
    p = ev.payload
    assert (p["side_location"], p["access_type"]) == ("Right", "Local")
    assert p["description_translations"] == {"de": "Düse verstopft"}
    assert p["fault_type"] == "CFX.Structures.SMTPlacement.SMTPlacementFault, CFX"
    assert p["details"] == {"ProgramStep": 12, "ReferencePartNumber": "PN-9"}
    (null,) = decode("CFX.ResourcePerformance.FaultOccurred", {"Fault": {**fault, "DescriptionTranslations": None}})
    assert null.payload["description_translations"] == {}
    model = typed("CFX.ResourcePerformance.FaultOccurred", {"Fault": {**fault, "DescriptionTranslations": None}})
    assert model.fault.description_translations == {} and model.fault.ProgramStep == 12


def test_units_arrived_and_departed_keep_lane_and_identifiers() -> None:
    # CFX/Production/UnitsArrived.cs, UnitsDeparted.cs: PrimaryIdentifier, HermesIdentifier, Lane.
    body = {
        "PrimaryIdentifier": "CARRIER7",
        "HermesIdentifier": "H-1",
        "UnitCount": 1,
        "Lane": 2,
        "Units": [{"UnitIdentifier": "U1", "PositionNumber": 1}],
    }
    for name in ("CFX.Production.UnitsArrived", "CFX.Production.UnitsDeparted"):
        (ev,) = decode(name, body)
        p = ev.payload
        assert (p["lane"], p["primary_identifier"], p["hermes_identifier"]) == (2, "CARRIER7", "H-1")
        model = typed(name, body)
        assert (model.lane, model.primary_identifier) == (2, "CARRIER7")


def test_heartbeat_keeps_active_faults_and_recipes() -> None:
    # CFX/Heartbeat.cs (CFX 1.7): ActiveFaults (Fault), ActiveRecipes (CFX/Structures/ActiveRecipe.cs).
    body = {
        "CFXHandle": "Vendor.Model.SN1",
        "HeartbeatFrequency": "00:01:00",
        "ActiveFaults": [{"FaultCode": "E1", "Severity": 3, "FaultOccurrenceId": "f1"}],
        "ActiveRecipes": [
            {
                "Lane": 1,
                "Stage": {"StageName": "Printer"},
                "RecipeIdentifier": {"RecipeName": "BOARD-A", "Revision": "B"},
            }
        ],
    }
    (ev,) = decode("CFX.Heartbeat", body)
    fault = ev.payload["active_faults"][0]
    assert (fault["code"], fault["fault_severity"], fault["severity"]) == ("E1", "Alarm", "critical")
    assert ev.payload["active_recipes"] == [
        {"lane": 1, "stage": "Printer", "recipe": "BOARD-A", "recipe_revision": "B"}
    ]
    (empty,) = decode("CFX.Heartbeat", {**body, "ActiveFaults": None, "ActiveRecipes": None})
    assert empty.payload["active_faults"] == [] == empty.payload["active_recipes"]
    model = typed("CFX.Heartbeat", {**body, "ActiveFaults": None})
    assert model.active_faults == [] and model.active_recipes[0].recipe_identifier.recipe_name == "BOARD-A"


def test_request_id_and_target_pair_requests_with_responses_on_every_path() -> None:
    # CFX/CFXEnvelope.cs: RequestID is shared by a request and its response; Target addresses it.
    (req,) = decode(
        "CFX.AreYouThereRequest", {"CFXHandle": "Vendor.Model.SN1"}, request_id="r-42", target="Line.Station.SN2"
    )
    (resp,) = decode("CFX.AreYouThereResponse", {"Result": {"Result": "Success"}}, request_id="r-42")
    assert req.correlation_id == resp.correlation_id == "r-42"
    (mapped,) = decode("CFX.Heartbeat", {"CFXHandle": "x"}, request_id="r-7", target="Line.Station.SN2")
    assert (mapped.payload["request_id"], mapped.payload["target"]) == ("r-7", "Line.Station.SN2")


def test_original_body_is_reachable_with_the_cfx_with_body_decoder() -> None:
    body = {"CFXHandle": "x", "HeartbeatFrequency": "00:01:00", "VendorExtension": {"$type": "V.X, V", "Z": 1}}
    data = wire("CFX.Heartbeat", body)
    (plain,) = decode_cfx(data, DecodeContext())
    assert "cfx_body" not in plain.payload
    (kept,) = get_decoder("cfx-with-body")(data, DecodeContext())
    assert kept.payload["cfx_body"] == body
    (other,) = get_decoder("cfx-with-body")(wire("Vendor.Custom.Thing", body), DecodeContext())
    assert other.payload["cfx_body"]["VendorExtension"]["$type"] == "V.X, V"


def test_cfx_with_body_decoder_is_found_by_name_without_importing_the_package() -> None:
    import subprocess
    import sys

    code = "from pywats_events.codec import get_decoder; print(get_decoder('cfx-with-body').__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "decode_cfx_with_body"
