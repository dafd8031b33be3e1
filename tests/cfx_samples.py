"""The bundled IPC-CFX samples and the issue's mapping table, shared by the codec and end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples" / "cfx"
VALID = sorted(SAMPLES.glob("*.json"))
INVALID = sorted((SAMPLES / "invalid").glob("*.json"))

#: The mapping table (issues 1 and 11): CFX message name → event type (any other name is its own type).
MAPPED_TYPES = {
    "CFX.Production.TestAndInspection.UnitsTested": "test.result",
    "CFX.Production.TestAndInspection.UnitsInspected": "inspection.result",
    "CFX.Production.WorkStarted": "production.work_started",
    "CFX.Production.WorkCompleted": "production.work_completed",
    "CFX.Production.UnitsArrived": "production.unit_arrived",
    "CFX.Production.UnitsDeparted": "production.unit_departed",
    "CFX.Production.UnitsDisqualified": "production.unit_disqualified",
    "CFX.Production.Assembly.MaterialsInstalled": "material.installed",
    "CFX.Materials.Storage.MaterialsLoaded": "material.loaded",
    "CFX.ResourcePerformance.FaultOccurred": "asset.fault",
    "CFX.ResourcePerformance.FaultCleared": "asset.fault_cleared",
    "CFX.ResourcePerformance.FaultAcknowledged": "asset.fault_acknowledged",
    "CFX.ResourcePerformance.StationStateChanged": "asset.state_changed",
    "CFX.EndpointConnected": "system.endpoint_connected",
    "CFX.EndpointShuttingDown": "system.endpoint_shutting_down",
    "CFX.Heartbeat": "system.heartbeat",
    "CFX.Production.Processing.UnitsProcessed": "production.unit_processed",
    "CFX.Production.ReworkAndRepair.UnitsRepaired": "repair.result",
    "CFX.Production.UnitsInitialized": "production.unit_initialized",
    "CFX.Production.WorkStageStarted": "production.stage_started",
    "CFX.Production.WorkStageCompleted": "production.stage_completed",
    "CFX.Production.LoadingAndUnloading.UnitsLoaded": "production.unit_loaded",
    "CFX.Production.LoadingAndUnloading.UnitsUnloaded": "production.unit_unloaded",
    "CFX.Production.ToolsUsed": "asset.tool_used",
    "CFX.Production.RecipeActivated": "production.recipe_activated",
    "CFX.Production.OperatorActivated": "production.operator_activated",
    "CFX.Production.OperatorDeactivated": "production.operator_deactivated",
    "CFX.Production.ReadingsRecorded": "sensor.reading",
    "CFX.ResourcePerformance.ProcessDataRecorded": "sensor.reading",
    "CFX.ResourcePerformance.MaintenancePerformed": "asset.maintenance",
    "CFX.ResourcePerformance.CalibrationPerformed": "asset.calibration",
    "CFX.ResourcePerformance.StationOffline": "asset.offline",
    "CFX.ResourcePerformance.StationOnline": "asset.online",
    "CFX.ResourcePerformance.EnergyConsumed": "asset.energy_consumed",
    "CFX.Materials.Management.MaterialsConsumed": "material.consumed",
    "CFX.Production.Assembly.MaterialsUninstalled": "material.uninstalled",
    "CFX.Materials.Storage.MaterialsUnloaded": "material.unloaded",
}

#: Messages that give one event per item of a list (the rest give one event per message).
PER_ITEM = {
    "CFX.Production.TestAndInspection.UnitsTested": "TestedUnits",
    "CFX.Production.TestAndInspection.UnitsInspected": "InspectedUnits",
    "CFX.Production.Assembly.MaterialsInstalled": "InstalledMaterials",
    "CFX.Production.ReworkAndRepair.UnitsRepaired": "RepairedUnits",
    "CFX.Production.Assembly.MaterialsUninstalled": "UninstalledMaterials",
    "CFX.Production.Processing.UnitsProcessed": "UnitProcessData",
}


def _field(obj: dict[str, Any], name: str) -> Any:
    low = name.lower()
    return next((v for k, v in obj.items() if k.lower() == low), None)


def expected_event_count(name: str, body: dict[str, Any]) -> int:
    """How many events one envelope must give, read straight from its JSON (names case-insensitive)."""
    if name not in PER_ITEM:
        return 1
    n = len(_field(body, PER_ITEM[name]) or [])
    if name.endswith("UnitsInspected") and _field(body, "InspectedPanel"):
        n += 1  # the panel's own results (CFX 1.6+), beside its units or alone
    if name.endswith("UnitsProcessed") and n == 0:
        n = 1  # common process data only: one event for the message
    return n
