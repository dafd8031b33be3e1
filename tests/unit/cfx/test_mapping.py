"""The mapping of CFX messages to events: the new messages (issue 11, point 7), the table generated from the
code (point 8) and the explorer's quiet end when its reader stops (point 6).

Field names are those of the SDK declarations (IPCConnectedFactoryExchange/CFX, ``CFX/<Namespace>/<Message>.cs``
and ``CFX/Structures/*.cs``), cited per test.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from pywats_cfx import decode_cfx, encode_envelope, envelope_to_bytes, parse_envelopes
from pywats_cfx.adapters import COMMON_PAYLOAD_KEYS, MAPPINGS, mapping_table
from pywats_cfx.explorer import main as explorer
from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from tests.cfx_samples import MAPPED_TYPES, REPO, SAMPLES, VALID

OPTIONAL_KEYS = {"unknown_enum_values", "cfx_body"}


def sample_events(stem: str) -> list[Event]:
    path = SAMPLES / f"{stem}.json"
    return decode_cfx(path.read_bytes(), DecodeContext(origin=str(path)))


def decode(name: str, body: dict[str, Any]) -> list[Event]:
    env = encode_envelope(name, body, source="Vendor.Model.SN1", unique_id="u-1")
    return decode_cfx(envelope_to_bytes(env), DecodeContext(origin="q"))


# --- point 8: one table, from the code ------------------------------------------------------------------


def test_docs_mapping_table_is_the_generated_one() -> None:
    # The table moved from README.md to the documentation site's CFX page (issue 18.5).
    page = (REPO / "docs" / "cfx.md").read_text(encoding="utf-8")
    start, end = "<!-- cfx-mapping:start -->\n", "<!-- cfx-mapping:end -->"
    assert start in page and end in page
    documented = page.split(start, 1)[1].split(end, 1)[0]
    assert documented == mapping_table(), "docs/cfx.md CFX mapping table differs: paste `explorer --mapping`"


def test_explorer_prints_the_mapping_table() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert explorer(["--mapping"]) == 0
    table = out.getvalue()
    assert table == mapping_table()
    assert "| `Production.TestAndInspection.UnitsTested` | `test.result` | one per `TestedUnits` item |" in table
    assert set(MAPPINGS) == set(MAPPED_TYPES)
    assert all(f"`{t}`" in table for t in MAPPED_TYPES.values())


@pytest.mark.parametrize(
    "path", [p for p in VALID if parse_envelopes(p.read_bytes())[0].message_name in MAPPINGS], ids=lambda p: p.stem
)
def test_documented_payload_keys_are_what_every_sample_event_carries(path: Path) -> None:
    mapping = MAPPINGS[parse_envelopes(path.read_bytes())[0].message_name]
    keys = mapping.payload_keys()
    assert keys[: len(COMMON_PAYLOAD_KEYS)] == COMMON_PAYLOAD_KEYS
    for ev in sample_events(path.stem):
        assert ev.type == mapping.event_type
        assert tuple(k for k in ev.payload if k not in OPTIONAL_KEYS) == keys


# --- point 6: the explorer ends quietly when its reader stops ---------------------------------------------


def test_explorer_convert_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    unit = json.loads((SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json").read_bytes())
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps([unit] * 3000))  # far more output than a pipe buffer holds
    proc = subprocess.Popen(
        [sys.executable, "-m", "pywats_cfx.explorer", "--convert", str(batch), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0
    assert json.loads(first)["type"] == "test.result"
    assert stderr == ""


# --- point 7: the messages a test-data, MES or maintenance integration consumes ---------------------------


def test_units_processed_gives_process_data_per_unit() -> None:
    # CFX/Production/Processing/UnitsProcessed.cs; ReflowProcessData is a ProcessData subtype.
    events = sample_events("CFX.Production.Processing.UnitsProcessed__1")
    p = events[0].payload
    assert p["overall_result"] == "succeeded" and p["transaction_id"] == "a881ac27-9649-41c8-a13e-df118471eb1e"
    assert p["process_data_type"] == "CFX.Structures.SolderReflow.ReflowProcessData, CFX"
    assert p["process_data"]["ConveyorSpeed"] == 60.0 and "$type" not in json.dumps(p["process_data"])
    (only,) = decode("CFX.Production.Processing.UnitsProcessed", {"OverallResult": 1, "CommonProcessData": {"A": 1}})
    assert (only.payload["unit_id"], only.payload["result"], only.payload["process_data"]) == (None, "failed", {"A": 1})
    assert only.severity.value == "warning"


def test_units_repaired_gives_one_repair_result_per_unit() -> None:
    # CFX/Production/ReworkAndRepair/UnitsRepaired.cs, CFX/Structures/RepairedUnit.cs, Repair.cs.
    (ev, *_) = sample_events("CFX.Production.ReworkAndRepair.UnitsRepaired__1")
    p = ev.payload
    assert ev.type == "repair.result" and p["unit_id"] == "FFSHkkskamJDHS" and p["result"] == "RepairSuccessful"
    assert p["operator_id"] == "BADGE489499" and ev.subjects == ("FFSHkkskamJDHS",)
    repair = p["repairs"][0]
    assert (repair["name"], repair["component"], repair["part_number"]) == ("Joint Repair", "U34.5", "SN74HCS30DR")
    assert repair["related_defects"] == ["b1031227-d911-4be2-ba74-7a3fe019e5fa"]
    (failed,) = decode("CFX.Production.ReworkAndRepair.UnitsRepaired", {"RepairedUnits": [{"OverallResult": 2}]})
    assert failed.payload["result"] == "Scrap" and failed.severity.value == "warning"


def test_mes_messages_keep_their_identifiers() -> None:
    (init,) = sample_events("CFX.Production.UnitsInitialized__1")
    assert (init.payload["work_order_id"], init.payload["batch"]) == ("WO45648798", "BATCH45648798-1")
    assert [u["unit_id"] for u in init.payload["units"]] == ["UNIT5566687", "UNIT5566688"]
    (done,) = sample_events("CFX.Production.WorkStageCompleted__1")
    assert (done.payload["stage"], done.payload["result"]) == ("STAGE1", "completed")
    assert done.payload["performance_impacts"] == ["LowFeederSpeed", "AlternativeTrackUsed"]
    (loaded,) = sample_events("CFX.Production.LoadingAndUnloading.UnitsLoaded__1")
    assert loaded.payload["carrier_id"] == "PALLET123" and loaded.payload["unit_count"] == 2
    (op,) = sample_events("CFX.Production.OperatorActivated__1")
    assert (op.payload["login_name"], op.payload["actor_type"]) == ("bill.smith@domain1.com", "Human")
    # CFX/Production/RecipeActivated.cs (no SDK example): times in ms as the SDK documents them.
    (recipe,) = decode(
        "CFX.Production.RecipeActivated",
        {"RecipeName": "BOARD-A", "Revision": "C", "Lane": 1, "ExpectedCycleTime": 42000.0,
         "WorkOrderIdentifier": {"WorkOrderId": "WO1"}},
    )  # fmt: skip
    p = recipe.payload
    assert (p["recipe"], p["recipe_revision"], p["lane"], p["expected_cycle_time_ms"]) == ("BOARD-A", "C", 1, 42000.0)
    assert p["work_order_id"] == "WO1"


def test_readings_and_station_process_data_are_sensor_readings() -> None:
    # CFX/Production/ReadingsRecorded.cs, CFX/Structures/Reading.cs (values as text, DataType enum).
    reading = {
        "ReadingIdentifier": "r1",
        "ReadingSequence": 3,
        "Result": 0,
        "ValueDataType": "Numeric",
        "Value": "3.3",
        "ValueUnits": "V",
        "MinimumAcceptableValue": "3.1",
        "MaximumAcceptableValue": "3.5",
    }
    (ev,) = decode("CFX.Production.ReadingsRecorded", {"Readings": [reading]})
    r = ev.payload["readings"][0]
    assert (ev.type, r["id"], r["result"], r["data_type"], r["value"]) == (
        "sensor.reading",
        "r1",
        "pass",
        "Numeric",
        "3.3",
    )
    assert (r["low_limit"], r["high_limit"], r["units"]) == ("3.1", "3.5", "V")
    (pd,) = sample_events("CFX.ResourcePerformance.ProcessDataRecorded__1")
    assert pd.type == "sensor.reading" and pd.payload["readings"] == [] and pd.payload["process_data"]


def test_maintenance_calibration_online_and_energy() -> None:
    (mnt,) = sample_events("CFX.ResourcePerformance.MaintenancePerformed__1")
    p = mnt.payload
    assert (p["maintenance_type"], p["order_number"], p["job_code"]) == ("Preventive", "MO676578576", "MNT113334")
    assert (
        p["consumed_materials"][0]["part_number"] == "PN2343243" and p["consumed_materials"][0]["quantity_used"] == 3.0
    )
    assert p["tasks"]
    (cal,) = sample_events("CFX.ResourcePerformance.CalibrationPerformed__1")
    q = cal.payload
    assert (q["code"], q["calibration_type"], q["status"]) == ("FID1", "UnitPosition", "Ok")
    assert q["measurements"][0]["MeasurementValue"]["Value"] == 0.97
    (online,) = sample_events("CFX.ResourcePerformance.StationOnline__1")
    assert online.payload["offline_duration_s"] == 1380.0
    (offline,) = sample_events("CFX.ResourcePerformance.StationOffline__1")
    assert offline.type == "asset.offline" and offline.subjects == (offline.source,)
    # CFX/ResourcePerformance/EnergyConsumed.cs (no SDK example): kWh, W, per-phase lists, NaN as text.
    (energy,) = decode(
        "CFX.ResourcePerformance.EnergyConsumed",
        {"StartTime": "2026-01-01T00:00:00Z", "EndTime": "2026-01-01T00:15:00Z", "EnergyUsed": 1.25,
         "PeakPower": "NaN", "PeakPowerRYB": [1.0, 2.0, 3.0], "MeanPowerRYB": None, "SubsystemName": "Oven"},
    )  # fmt: skip
    e = energy.payload
    assert (e["energy_used"], e["peak_power"], e["peak_power_ryb"], e["mean_power_ryb"]) == (
        1.25,
        "NaN",
        [1.0, 2.0, 3.0],
        [],
    )
    assert e["subsystem_name"] == "Oven" and e["three_phase_neutral_current_now"] is None


def test_material_consumed_uninstalled_unloaded() -> None:
    (used,) = sample_events("CFX.Materials.Management.MaterialsConsumed__1")
    m = used.payload["materials"][0]
    assert (m["material_id"], m["location_name"], m["quantity_used"], m["remaining_quantity"]) == (
        "MAT238908348903", "SLOT22", 42.0, 344.0,
    )  # fmt: skip
    first, second = sample_events("CFX.Production.Assembly.MaterialsUninstalled__1")
    assert (first.payload["reason"], first.payload["components"]) == ("DefectiveMaterial", ["R1", "R2", "R3"])
    assert second.payload["unit_position"] == 2 and first.id != second.id
    (gone,) = sample_events("CFX.Materials.Storage.MaterialsUnloaded__1")
    assert gone.payload["material_ids"][0] == "MAT4566556456" and gone.subjects[0] == "MAT4566556456"
