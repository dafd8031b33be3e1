"""The lab wing on a real server: EventClient calls, events filling the status DB, REST routes, the
orchestrator publishing its decisions, bad lab events dead-lettered."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import requests

from pywats_events import Event, EventBus
from pywats_events.store import DeadLetterReason
from pywats_lab.clients import EventClient, HttpClientHelper
from pywats_lab.events import EventMessage, ModuleStatus, ModuleStatusUpdateEvent
from pywats_lab.handlers import LabStatusDBHandler, OrchestratorHandler
from tests.waiting import wait_for

from .conftest import ServiceFactory


def _message(topic: str, **data: object) -> EventMessage:
    return EventMessage(topic=topic, subjects=[str(data.get("barcode", topic))], data=data, tags=["lab"])


@pytest.fixture
def lab_bus(tmp_path: Path) -> tuple[EventBus, LabStatusDBHandler, list[Event]]:
    bus = EventBus()
    handler = LabStatusDBHandler(f"sqlite:///{tmp_path / 'lab.db'}")
    bus.register(handler)
    bus.register(OrchestratorHandler("memory"))
    seen: list[Event] = []

    @bus.subscribe("lab.order.*", name="order-watch")
    async def watch(event: Event) -> None:
        seen.append(event)

    @bus.subscribe("lab.module.*", name="module-watch")
    async def watch_modules(event: Event) -> None:
        seen.append(event)

    return bus, handler, seen


async def test_event_client_fills_the_status_db_and_rest_routes_answer(
    start_service: ServiceFactory, lab_bus: tuple[EventBus, LabStatusDBHandler, list[Event]]
) -> None:
    bus, handler, _ = lab_bus
    svc = await start_service(bus)
    with pytest.raises(ValueError, match=r"url=\.\.\., url_provider=\.\.\. or http_client"):
        EventClient()
    client = EventClient(url=svc.url)
    t0 = datetime.now(UTC).replace(microsecond=0)
    await asyncio.to_thread(
        client.publish_event,
        _message("lab.experiment.started", experiment_uuid="e-1", process_name="Cell Screening"),
    )
    added = _message("lab.container.added", barcode="P1", device="Hamilton_STAR", pos=0)
    await asyncio.to_thread(client.publish_event, added)
    async with httpx.AsyncClient() as http:
        raw = await client.publish_async(
            _message(
                "lab.step.started", step_id="s-1", name="Add Compounds", device="Hamilton_STAR",
                data={"fct": "dispense", "volume": 50}, barcode="P1", experiment_uuid="e-1", start=t0.isoformat(),
            ),
            http,
        )
        assert json.loads(raw)["settlement"]["handled"] >= 1, "publish_async returns the raw answer text"
        await client.publish_async(
            _message("lab.step.finished", step_id="s-1", finish=(t0 + timedelta(seconds=42)).isoformat()), http
        )
    session = requests.Session()
    session.base_url = svc.url  # type: ignore[attr-defined]  # as the Biosero document configures it
    by_session = EventClient(http_client=session)
    await asyncio.to_thread(
        by_session.publish_event,
        _message(
            "lab.container.moved", barcode="P1", source_device="Hamilton_STAR", source_pos=0,
            target_device="Incubator", target_pos=5, main_device="RoboticArm",
            start=(t0 + timedelta(seconds=50)).isoformat(), finish=(t0 + timedelta(seconds=62)).isoformat(),
            experiment_uuid="e-1",
        ),
    )
    db = handler.db
    where = await db.aio.get_cont_info_by_barcode("P1")
    assert where is not None and (where.current_device, where.current_pos) == ("Incubator", 5)
    summary = await db.aio.get_experiment_summary("e-1")
    assert summary.step_count == 2 and summary.duration == pytest.approx(62.0)
    history = await db.aio.get_container_history("P1")
    assert [(s.name, s.duration) for s in history] == [("Add Compounds", 42.0), ("Move P1 to Incubator", 12.0)]

    urls = iter([svc.url, svc.url])
    by_provider = EventClient(url_provider=lambda: next(urls))
    answer = await asyncio.to_thread(by_provider.publish_event, _message("lab.container.added", barcode="P9",
                                                                         device="Shelf", pos=2))
    assert answer["settlement"]["handled"] >= 1 and (await db.aio.get_cont_info_by_barcode("P9")) is not None
    server_time = await asyncio.to_thread(client.get_server_time)
    assert abs((server_time - datetime.now(UTC)).total_seconds()) < 5
    helper = EventClient(http_client=HttpClientHelper.configure_http_client(svc.url))
    assert abs((await asyncio.to_thread(helper.get_server_time) - server_time).total_seconds()) < 5

    got = await svc.client.get("/lab/containers/P1")
    assert got.status_code == 200 and got.json()["device"] == "Incubator" and got.json()["position"] == 5
    missing = await svc.client.get("/lab/containers/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    positions = (await svc.client.get("/lab/devices/Incubator/positions")).json()
    assert positions == [{"position": 5, "empty": False, "container": "P1"}]
    estimate = await svc.client.post(
        "/lab/estimates",
        json={"confidence": 0.95, "steps": [
            {"device": "Hamilton_STAR", "data": {"fct": "dispense", "volume": 50}},
            {"kind": "move", "origin_device": "Hamilton_STAR", "target_device": "Incubator"},
            {"device": "PlateReader", "data": {"fct": "absorbance"}},
        ]},
    )
    assert estimate.status_code == 200 and estimate.json()["durations"] == [42.0, 12.0, None]
    bad = await svc.client.post("/lab/estimates", json={"steps": [{"device": "X"}]})
    assert bad.status_code == 400 and bad.json()["field"] == "steps[0].data.fct"
    doc = (await svc.client.get("/openapi.json")).json()
    assert {"/lab/estimates", "/lab/containers/{barcode}", "/api/v2.0/EventService/ServerTime"} <= set(doc["paths"])


async def test_refused_lab_events_are_dead_lettered_with_the_reason(
    start_service: ServiceFactory, lab_bus: tuple[EventBus, LabStatusDBHandler, list[Event]]
) -> None:
    bus, handler, _ = lab_bus
    svc = await start_service(bus)
    client = EventClient(url=svc.url)
    for barcode, pos in (("A", 0), ("B", 1)):
        added = _message("lab.container.added", barcode=barcode, device="Rack", pos=pos)
        await asyncio.to_thread(client.publish_event, added)
    answer = await asyncio.to_thread(
        client.publish_event,
        _message("lab.container.moved", barcode="A", source_device="Rack", source_pos=0, target_device="Rack",
                 target_pos=1),
    )
    assert answer["settlement"]["dead_lettered"] == 1
    await asyncio.to_thread(client.publish_event, _message("lab.container.added", device="Rack", pos=3))
    entries = await bus.store.list_dead_letters(handler="lab-status-db")
    assert [e.reason for e in entries] == [DeadLetterReason.UNRECOVERABLE] * 2
    assert entries[0].error_type == "LabEventError" and "already holds 'B'" in entries[0].error_message
    assert "payload key 'barcode'" in entries[1].error_message
    assert (await handler.db.aio.get_cont_info_by_barcode("A")).current_pos == 0  # type: ignore[union-attr]
    # A redelivered copy of a successful event changes nothing and does not fail.
    again = _message("lab.container.added", barcode="A", device="Rack", pos=0)
    await asyncio.to_thread(client.publish_event, again)
    assert await bus.store.count_dead_letters(handler="lab-status-db") == 2


async def test_orchestrator_on_the_bus_queues_then_assigns_when_a_module_turns_ready(
    start_service: ServiceFactory, lab_bus: tuple[EventBus, LabStatusDBHandler, list[Event]]
) -> None:
    bus, _, seen = lab_bus
    svc = await start_service(bus)
    client = EventClient(url=svc.url)

    def status(s: ModuleStatus, orders: list[str] | None = None) -> EventMessage:
        update = ModuleStatusUpdateEvent(
            Id=int(datetime.now().timestamp() * 1000), ModuleIdentifier="lh-1", ModuleName="Hamilton STAR",
            Status=s, OrdersBeingProcessed=orders, Capabilities=["dispense", "mix"],
        )
        return EventMessage(topic="ModuleStatusUpdate", subjects=["lh-1"], data=update.to_dict())

    await asyncio.to_thread(client.publish_event, status(ModuleStatus.Busy, ["other"]))
    order = EventMessage(topic="lab.order.requested", data={"order_id": "o-1", "required_capabilities": ["mix"]})
    await asyncio.to_thread(client.publish_event, order)
    await wait_for(lambda: any(e.type == "lab.order.pending" for e in seen), timeout=10)
    assert not any(e.type == "lab.order.assigned" for e in seen)
    await asyncio.to_thread(client.publish_event, status(ModuleStatus.Ready))
    await wait_for(lambda: any(e.type == "lab.order.assigned" for e in seen), timeout=10)
    assigned = next(e for e in seen if e.type == "lab.order.assigned")
    assert assigned.payload["order_id"] == "o-1" and assigned.payload["module"] == "lh-1"
    assert assigned.causation_id is not None, "decisions name the event that caused them"
    await wait_for(lambda: any(e.type == "lab.module.status_changed" for e in seen), timeout=10)
    change = next(e for e in seen if e.type == "lab.module.status_changed")
    assert (change.payload["previous_status"], change.payload["current_status"]) == ("Busy", "Ready")
    await asyncio.to_thread(client.publish_event, status(ModuleStatus.Offline))
    await wait_for(lambda: sum(e.type == "lab.module.status_changed" for e in seen) == 2, timeout=10)
    offline = [e for e in seen if e.type == "lab.module.status_changed"][-1]
    assert offline.severity.value == "warning" and "offline" in offline.tags
    assert offline.payload["previous_status"] == "Ready"
    requeued = [e for e in seen if e.type == "lab.order.requeued"]
    assert [e.payload["order_id"] for e in requeued] == ["o-1"], "Offline re-queues the module's order"
