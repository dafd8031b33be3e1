"""wats-asset and wats-production against the fake WATS over real HTTP, driven by the CFX samples that
carry asset and unit events; the fake's request record shows each call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pywats_cfx.decoder import decode_cfx
from pywats_events.bus import EventBus
from pywats_events.codec import DecodeContext
from pywats_events.config import HandlerConfig, build_handler
from pywats_events.event import Event
from pywats_wats.testing import FakeWats
from tests.cfx_samples import SAMPLES
from tests.integration.wats.conftest import TOKEN

HANDLE = "SMTPlus.Model_21232.SN23123"


def sample(name: str) -> list[Event]:
    path = SAMPLES / f"{name}.json"
    return decode_cfx(path.read_bytes(), DecodeContext(origin=str(path)))


def options(url: str, **extra: object) -> dict[str, object]:
    return {"base_url": url, "token": TOKEN, "retry_attempts": 1, "probe_interval": 0.5, **extra}


async def test_asset_events_from_the_samples_reach_the_asset_api(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(
        build_handler(
            HandlerConfig(kind="wats-asset", **options(wats_url, asset_ids={HANDLE: "PLACER-7"}, test_fixture="FIX-12"))  # type: ignore[arg-type]
        )
    )
    events = [
        *sample("CFX.ResourcePerformance.FaultOccurred__1"),
        *sample("CFX.ResourcePerformance.FaultCleared__1"),
        *sample("CFX.ResourcePerformance.StationStateChanged__1"),
        *sample("CFX.Production.TestAndInspection.UnitsTested__1"),
    ]
    await bus.start()
    result = await bus.publish(*events)
    assert result.dead_lettered == 0
    messages = fake.calls("POST", "/api/Asset/Message")
    assert [m.body["assetId"] for m in messages] == ["PLACER-7", "PLACER-7"]
    assert "ERROR 3943480" in messages[0].body["comment"] and "MechanicalFailure" in messages[0].body["comment"]
    assert messages[1].body["comment"].startswith("Fault cleared by BADGE4486")
    (state,) = fake.calls("PUT", "/api/Asset/State")
    assert state.query == {"serialNumber": "PLACER-7", "state": "1"}  # SEMI E10 PRD → In operation
    counts = fake.calls("PUT", "/api/Asset/Count")
    assert [c.query for c in counts] == [{"serialNumber": "FIX-12", "incrementBy": "1"}] * 2  # two units tested
    assert {r.status for r in fake.requests} == {200}


async def test_maintenance_calibration_and_tool_usage(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(build_handler(HandlerConfig(kind="wats-asset", **options(wats_url))))  # type: ignore[arg-type]
    at = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    events = [
        Event(type="asset.maintenance", source="OVEN-1", timestamp=at, payload={"comment": "belt replaced"}),
        Event(type="asset.calibration", source="AOI-2", payload={"performed_at": "2024-05-02T09:00:00+00:00"}),
        Event(
            type="asset.tool_used", source="PLACER-7", payload={"tools": [{"tool_id": "NOZZLE-45", "usage_cycles": 3}]}
        ),
    ]
    await bus.start()
    assert (await bus.publish(*events)).dead_lettered == 0
    (maint,) = fake.calls("POST", "/api/Asset/Maintenance")
    assert maint.query == {"serialNumber": "OVEN-1", "dateTime": at.isoformat(), "comment": "belt replaced"}
    (cal,) = fake.calls("POST", "/api/Asset/Calibration")
    assert cal.query == {"serialNumber": "AOI-2", "dateTime": "2024-05-02T09:00:00+00:00"}
    (count,) = fake.calls("PUT", "/api/Asset/Count")
    assert count.query == {"serialNumber": "NOZZLE-45", "incrementBy": "3"}


async def test_an_unmapped_e10_state_is_dead_lettered_naming_it(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(build_handler(HandlerConfig(kind="wats-asset", **options(wats_url))))  # type: ignore[arg-type]
    await bus.start()
    event = Event(type="asset.state_changed", source="X", payload={"new_category": "WARP"})
    assert (await bus.publish(event)).dead_lettered == 1
    (entry,) = await bus.store.list_dead_letters()
    assert "'WARP' has no WATS asset state" in entry.error_message and entry.reason == "unrecoverable"
    assert fake.requests == []


async def test_units_are_registered_scrapped_finalized_and_linked(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(
        build_handler(
            HandlerConfig(
                kind="wats-production",  # type: ignore[arg-type]
                **options(
                    wats_url, part_number="PCBA-1000", revision="A", first_stations=[HANDLE], last_stations=["FINAL-1"]
                ),
            )
        )
    )
    started = sample("CFX.Production.WorkStarted__1")
    disqualified = sample("CFX.Production.UnitsDisqualified__1")
    completed = Event(
        type="production.work_completed",
        source="FINAL-1",
        payload={"units": [{"unit_id": "UNIT5566687"}], "result": "completed"},
    )
    elsewhere = completed.model_copy(update={"source": "ICT-01", "id": "5f0c1a52-9b1e-4c1e-8a51-2f6f4b6c9d11"})
    installed = Event(
        type="material.installed",
        source="BOXBUILD-1",
        payload={"unit_id": "BOX-1", "material_id": "PSU-778", "part_number": "PSU-24V"},
    )
    await bus.start()
    assert (await bus.publish(*started, *disqualified, completed, elsewhere, installed)).dead_lettered == 0
    (units,) = fake.calls("PUT", "/api/Production/Units")
    assert units.body == [
        {"serialNumber": "CARRIER5566", "partNumber": "PCBA-1000", "revision": "A", "currentLocation": HANDLE}
    ]
    phases = [(c.query["serialNumber"], c.query["phase"]) for c in fake.calls("PUT", "/api/Production/SetUnitPhase")]
    # Different sources run in different lanes, so only the set is fixed; work completed elsewhere finalizes nothing.
    assert sorted(phases) == [("CARRIER5566", "32"), ("UNIT5566687", "16")]
    (scrapped,) = [c for c in fake.calls("PUT", "/api/Production/SetUnitPhase") if c.query["phase"] == "32"]
    assert scrapped.query["comment"].startswith("DefectiveRepairNotPossible")
    (child,) = fake.calls("POST", "/api/Production/AddChildUnit")
    assert child.query == {
        "parentSerialNumber": "BOX-1",
        "parentPartNumber": "PCBA-1000",
        "childSerialNumber": "PSU-778",
        "childPartNumber": "PSU-24V",
    }


@pytest.mark.parametrize("kind", ["wats-asset", "wats-production", "wats-report"])
def test_a_bad_option_is_a_config_error_naming_handler_and_key(kind: str) -> None:
    from pywats_events.errors import ConfigError

    with pytest.raises(ConfigError, match=f"handler '{kind}': probe_interval"):
        build_handler(HandlerConfig(kind=kind, base_url="http://w", token="t", probe_interval=-1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="token_env: environment variable 'NO_SUCH_TOKEN_VAR' is not set"):
        build_handler(HandlerConfig(kind=kind, base_url="http://w", token_env="NO_SUCH_TOKEN_VAR"))  # type: ignore[arg-type]
