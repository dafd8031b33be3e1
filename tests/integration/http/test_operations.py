"""Health, readiness, metrics, the admin API and curl, against the real server."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from pywats_events import Event, EventBus, MockTransport, RetryPolicy, TransportState
from tests.services import services_required

from .conftest import ServiceFactory

ADMIN = {"Authorization": "Bearer adm"}


async def test_healthz_and_readyz_follow_the_transports(start_service: ServiceFactory) -> None:
    bus = EventBus()
    mock = MockTransport("line-1")
    bus.add_transport(mock)
    svc = await start_service(bus)
    assert (await svc.client.get("/healthz")).json() == {"status": "ok"}
    ready = await svc.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert svc.server.transport.state is TransportState.CONNECTED

    await mock.simulate_disconnect()
    not_ready = await svc.client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json()["not_ready"] == ["transport line-1: reconnecting"]
    await mock.simulate_reconnect()
    assert (await svc.client.get("/readyz")).status_code == 200


async def test_webhook_transport_is_connected_only_while_serving(start_service: ServiceFactory) -> None:
    svc = await start_service()
    transport = svc.server.transport
    assert transport.state is TransportState.CONNECTED
    await svc.server.stop()
    assert transport.state is TransportState.DISCONNECTED
    ready, details = svc.bus.readiness()
    assert not ready
    assert "transport http: disconnected" in details["not_ready"]


async def test_metrics_exposes_bus_and_http_series(start_service: ServiceFactory) -> None:
    bus = EventBus()

    @bus.subscribe("test.result", name="writer")
    async def writer(event: Event) -> None:
        pass

    svc = await start_service(bus)
    await svc.client.post("/events", json={"type": "test.result"})
    response = await svc.client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    text = response.text
    for line in (
        'pywats_events_received_total{transport="http",type="test.result"} 1.0',
        'pywats_deliveries_handled_total{handler="writer"} 1.0',
        'pywats_http_requests_total{route="/events",status="200"} 1.0',
        'pywats_transport_state{state="connected",transport="http"} 1.0',
        'pywats_breaker_state{handler="writer"} 0.0',
    ):
        assert line in text, line
    assert "pywats_handler_duration_seconds_bucket" in text
    assert "pywats_queue_depth" in text


async def test_admin_dead_letters_list_show_replay_purge(start_service: ServiceFactory) -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=1))
    healthy = asyncio.Event()
    received: list[str] = []

    @bus.subscribe("job.*", name="flaky")
    async def flaky(event: Event) -> None:
        if not healthy.is_set():
            raise RuntimeError("downstream offline")
        received.append(event.id)

    svc = await start_service(bus, admin_token="adm")
    c = svc.client
    for i in range(3):
        assert (await c.post("/events", json={"id": f"j{i}", "type": "job.done"})).json()["settlement"][
            "dead_lettered"
        ] == 1
    listed = (await c.get("/admin/dead-letters", params={"handler": "flaky"}, headers=ADMIN)).json()
    assert sorted(e["event"]["id"] for e in listed) == ["j0", "j1", "j2"]
    one = (await c.get(f"/admin/dead-letters/{listed[0]['id']}", headers=ADMIN)).json()
    assert "downstream offline" in one["traceback"]
    missing = await c.get("/admin/dead-letters/nope", headers=ADMIN)
    assert missing.status_code == 404

    healthy.set()
    report = (await c.post("/admin/dead-letters/replay", json={"ids": [listed[0]["id"]]}, headers=ADMIN)).json()
    assert report["succeeded"] == 1
    assert received == [listed[0]["event"]["id"]]
    purged = (await c.post("/admin/dead-letters/purge", json={"handler": "flaky"}, headers=ADMIN)).json()
    assert purged == {"purged": 2}
    assert (await c.get("/admin/dead-letters", headers=ADMIN)).json() == []
    refused = await c.post("/admin/dead-letters/purge", json={}, headers=ADMIN)
    assert refused.status_code == 400


async def test_admin_events_query_and_acknowledge(start_service: ServiceFactory) -> None:
    bus = EventBus()
    bus.add_event_store()
    svc = await start_service(bus, admin_token="adm")
    c = svc.client
    events = [
        {"id": "a1", "type": "asset.fault", "severity": "error", "timestamp": "2024-01-01T10:00:00Z"},
        {"id": "a2", "type": "asset.state_changed", "timestamp": "2024-01-01T11:00:00Z"},
        {"id": "t1", "type": "test.result", "severity": "warning", "timestamp": "2024-01-02T10:00:00Z"},
    ]
    assert (await c.post("/events", json=events)).status_code == 200
    asset = (await c.get("/admin/events", params={"type": "asset.*"}, headers=ADMIN)).json()
    assert [e["id"] for e in asset] == ["a1", "a2"]
    severe = (await c.get("/admin/events", params={"min_severity": "warning"}, headers=ADMIN)).json()
    assert [e["id"] for e in severe] == ["a1", "t1"]
    window = {"since": "2024-01-01T10:30:00Z", "until": "2024-01-02T00:00:00Z"}
    assert [e["id"] for e in (await c.get("/admin/events", params=window, headers=ADMIN)).json()] == ["a2"]
    acked = (await c.post("/admin/events/acknowledge", json={"ids": ["a1"], "by": "op"}, headers=ADMIN)).json()
    assert acked == {"acknowledged": 1}
    open_ = (await c.get("/admin/events", params={"acknowledged": "false"}, headers=ADMIN)).json()
    assert "a1" not in [e["id"] for e in open_]
    bad = await c.get("/admin/events", params={"limit": "lots"}, headers=ADMIN)
    assert bad.status_code == 400
    assert bad.json()["field"] == "limit"


async def test_admin_breakers_force_open_and_close(start_service: ServiceFactory) -> None:
    bus = EventBus()
    calls: list[str] = []
    replayed = asyncio.Event()

    @bus.subscribe("x.*", name="sink")
    async def sink(event: Event) -> None:
        calls.append(event.id)
        replayed.set()

    svc = await start_service(bus, admin_token="adm")
    c = svc.client
    opened = (await c.post("/admin/breakers/sink", json={"state": "open"}, headers=ADMIN)).json()
    assert opened["state"] == "open"
    parked = (await c.post("/events", json={"id": "p1", "type": "x.y"})).json()
    assert parked["settlement"]["dead_lettered"] == 1
    assert calls == []
    states = {b["handler"]: b["state"] for b in (await c.get("/admin/breakers", headers=ADMIN)).json()}
    assert states["sink"] == "open"
    closed = (await c.post("/admin/breakers/sink", json={"state": "closed"}, headers=ADMIN)).json()
    assert closed["state"] == "closed"
    await asyncio.wait_for(replayed.wait(), 10)  # closing replays parked deliveries in the background
    assert calls == ["p1"]
    assert (await c.post("/admin/breakers/nobody", json={"state": "open"}, headers=ADMIN)).status_code == 404
    assert (await c.post("/admin/breakers/sink", json={"state": "ajar"}, headers=ADMIN)).status_code == 400


async def test_curl_posts_an_event(start_service: ServiceFactory) -> None:
    if shutil.which("curl") is None:
        if services_required():
            pytest.fail("curl is not installed (PYWATS_REQUIRE_SERVICES=1)")
        pytest.skip("curl is not installed")
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("test.result")
    async def record(event: Event) -> None:
        got.append(event)

    svc = await start_service(bus, routes={"events": {"tokens": ["curl-token"]}})
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-X", "POST", f"{svc.url}/events",
        "-H", "Authorization: Bearer curl-token", "-H", "Content-Type: application/json",
        "--data-binary", '{"type":"test.result","source":"curl","payload":{"result":"pass"}}',
        "-w", "\n%{http_code}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    body, _, status = out.decode().rpartition("\n")
    assert status == "200", (out, err)
    assert json.loads(body)["settlement"]["handled"] == 1
    assert got[0].source == "curl"
    assert got[0].payload == {"result": "pass"}
