"""WATS for pyWATS events: test and inspection results become WATS reports (WSJF), asset and unit
events follow, and nothing is lost while WATS is down.

Handler kinds (``[[handlers]] kind = ...``): ``wats-report``, ``wats-asset``, ``wats-production``.
Test double: ``pywats_wats.testing.FakeWats``, a validating fake WATS server. Commands:
``python -m pywats_wats preview|check|fake-server`` (``pywats_wats.commands.app``).
"""

from __future__ import annotations

from .builder import RepairResultPayload, ReportBuilder, TestResultPayload, input_schema
from .client import WatsClient
from .errors import (
    ReportBuildError,
    WatsAuthError,
    WatsConfigError,
    WatsError,
    WatsRejectedError,
    WatsUnavailableError,
)
from .handlers import E10_TO_ASSET_STATE, WatsAssetHandler, WatsProductionHandler, WatsReportHandler
from .models import CompOp, ReportResult, Step, StepStatus, UURReport, UUTReport
from .settings import AssetSettings, ClientSettings, ProductionSettings, ReportSettings

__all__ = [
    "E10_TO_ASSET_STATE",
    "AssetSettings",
    "ClientSettings",
    "CompOp",
    "ProductionSettings",
    "RepairResultPayload",
    "ReportBuildError",
    "ReportBuilder",
    "ReportResult",
    "ReportSettings",
    "Step",
    "StepStatus",
    "TestResultPayload",
    "UURReport",
    "UUTReport",
    "WatsAssetHandler",
    "WatsAuthError",
    "WatsClient",
    "WatsConfigError",
    "WatsError",
    "WatsProductionHandler",
    "WatsRejectedError",
    "WatsReportHandler",
    "WatsUnavailableError",
    "input_schema",
]
