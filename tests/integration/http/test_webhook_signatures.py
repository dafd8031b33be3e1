"""Standard Webhooks on the intake routes and the forwarder, over real loopback HTTP: signatures, stale
timestamps, replayed ids, both schemes on one route, and the forwarder → intake round trip between two
processes."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import sys
import time
from pathlib import Path

import httpx

from pywats_events import Event, EventBus
from pywats_events.http import EventServiceClient, HttpForwarder
from pywats_events.http.security import sign_body
from pywats_events.http.webhook_signature import signature_headers
from pywats_events.store import MemoryStore

from .conftest import ServiceFactory

SECRET = "whsec_" + base64.b64encode(b"line-7 webhook key, 32 bytes ok!").decode()
EVENT = json.dumps({"type": "test.result", "source": "ict-1", "payload": {"unit_id": "PCB-1"}}).encode()
RECEIVER = Path(__file__).with_name("webhook_receiver_main.py")


def _rejected(metrics: str, reason: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("pywats_http_rejected_total{") and f'reason="{reason}"' in line and "/events" in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_signed_request_is_accepted_and_its_replay_refused(start_service: ServiceFactory) -> None:
    bus = EventBus()
    handled: list[Event] = []
    bus.subscribe("test.*")(handled.append)  # type: ignore[arg-type]
    svc = await start_service(bus, routes={"events": {"webhook_secret": SECRET}})
    headers = signature_headers(SECRET, EVENT, msg_id="msg_ict1_0001")
    first = await svc.client.post("/events", content=EVENT, headers=headers)
    assert first.status_code == 200, first.text
    # The very same request again (a captured copy, inside the window): refused, not processed.
    replay = await svc.client.post("/events", content=EVENT, headers=headers)
    assert replay.status_code == 409
    problem = replay.json()
    assert problem["type"] == "/problems/already-accepted"
    assert problem["webhook_id"] == "msg_ict1_0001" and problem["reason"] == "replayed"
    assert "already accepted" in problem["detail"]
    # A fresh id with the same body passes the guard; its event id derives from the signed id.
    again = await svc.client.post("/events", content=EVENT, headers=signature_headers(SECRET, EVENT, msg_id="msg_2"))
    assert again.status_code == 200
    assert again.json()["event_ids"] != first.json()["event_ids"]
    assert len(handled) == 2
    metrics = (await svc.client.get("/metrics")).text
    assert _rejected(metrics, "replayed") == 1


async def test_stale_future_tampered_and_unsigned_requests_are_refused(start_service: ServiceFactory) -> None:
    bus = EventBus()
    handled: list[Event] = []
    bus.subscribe("test.*")(handled.append)  # type: ignore[arg-type]
    svc = await start_service(bus, routes={"events": {"webhook_secret": SECRET, "webhook_tolerance": 60}})
    now = int(time.time())
    old = signature_headers(SECRET, EVENT, timestamp=now - 600)
    stale = await svc.client.post("/events", content=EVENT, headers=old)
    assert stale.status_code == 403
    assert "older than the server clock (tolerance 60 s)" in stale.json()["detail"]
    assert stale.json()["reason"] == "stale"
    ahead = signature_headers(SECRET, EVENT, timestamp=now + 90)
    future = await svc.client.post("/events", content=EVENT, headers=ahead)
    assert future.status_code == 403 and "ahead of" in future.json()["detail"]
    tampered = await svc.client.post(
        "/events", content=EVENT.replace(b"PCB-1", b"PCB-2"), headers=signature_headers(SECRET, EVENT)
    )
    assert tampered.status_code == 403 and tampered.json()["detail"] == "credentials not accepted"
    other_key = "whsec_" + base64.b64encode(b"another key of thirty-two bytes!").decode()
    wrong = await svc.client.post("/events", content=EVENT, headers=signature_headers(other_key, EVENT))
    assert wrong.status_code == 403
    unsigned = await svc.client.post("/events", content=EVENT)
    assert unsigned.status_code == 401
    assert "webhook-id" in unsigned.json()["detail"] and "webhook-signature" in unsigned.json()["detail"]
    x_signature = await svc.client.post("/events", content=EVENT, headers={"X-Signature": sign_body(EVENT, "k")})
    assert x_signature.status_code == 401, "a route with only a webhook secret does not take X-Signature"
    assert handled == []
    # A stale request was never accepted, so a fresh signing of the same message is taken.
    ok = await svc.client.post("/events", content=EVENT, headers=signature_headers(SECRET, EVENT))
    assert ok.status_code == 200 and len(handled) == 1
    assert _rejected((await svc.client.get("/metrics")).text, "forbidden") == 4


async def test_both_schemes_on_one_route_and_gzip_signed_as_sent(start_service: ServiceFactory) -> None:
    svc = await start_service(routes={"events": {"hmac_secret": "k3y", "webhook_secret": SECRET}})
    legacy = await svc.client.post("/events", content=EVENT, headers={"X-Signature": sign_body(EVENT, "k3y")})
    assert legacy.status_code == 200, legacy.text
    zipped = gzip.compress(EVENT)
    webhook = await svc.client.post(
        "/events", content=zipped, headers={"Content-Encoding": "gzip", **signature_headers(SECRET, zipped)}
    )
    assert webhook.status_code == 200, webhook.text
    # A webhook-signature header selects that scheme: a bad one is refused even with a good X-Signature.
    mixed = {"X-Signature": sign_body(EVENT, "k3y"), **signature_headers(SECRET, b"other body")}
    assert (await svc.client.post("/events", content=EVENT, headers=mixed)).status_code == 403


async def test_a_client_retry_after_a_lost_answer_counts_as_delivered(start_service: ServiceFactory) -> None:
    bus = EventBus()
    handled: list[Event] = []
    bus.subscribe("Orders.*")(handled.append)  # type: ignore[arg-type]
    svc = await start_service(bus, routes={"event_service": {"webhook_secret": SECRET}})
    async with EventServiceClient(svc.url, webhook_secret=SECRET) as client:
        first = await client.publish_async(topic="Orders.Completed", data={"n": 1}, idempotency_key="order-17")
        assert first["accepted"] == 1
        # The same message sent again (as after a timeout): new timestamp, same webhook-id.
        second = await client.publish_async(topic="Orders.Completed", data={"n": 1}, idempotency_key="order-17")
    assert second["already_accepted"] is True and second["webhook_id"] == "order-17"
    assert len(handled) == 1


async def test_forwarder_to_intake_round_trip_between_two_processes(tmp_path: Path) -> None:
    """The receiver is its own process (SQLite store, Standard Webhooks required); this process's bus
    forwards with ``HttpForwarder(webhook_secret=...)``; every forwarded event is stored there once."""
    db = tmp_path / "receiver.db"
    admin = "adm-round-trip"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(RECEIVER), str(db), SECRET, admin,
        stdout=asyncio.subprocess.PIPE, cwd=str(Path(__file__).parents[3]),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.startswith(b"PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        options = {"base_url": url, "event_types": ["asset.*"], "webhook_secret": SECRET}
        faults = [
            Event(type="asset.fault", source=f"ict-{i}", payload={"code": f"E{i}"}, subjects=(f"ict-{i}",))
            for i in range(20)
        ]
        bus = EventBus(MemoryStore())
        bus.register(HttpForwarder.from_config("to-line", options))
        async with bus:
            result = await bus.publish(*faults)
            assert result.handled == 20 and result.dead_lettered == 0
        # The same events forwarded again by a bus that has no record of them (a restarted sender with an
        # in-memory store): the receiver answers 409 per webhook-id (the event id) and the forwarder counts
        # them delivered: nothing dead-lettered, nothing stored twice.
        store = MemoryStore()
        bus = EventBus(store)
        bus.register(HttpForwarder.from_config("to-line", options))
        async with bus:
            again = await bus.publish(*faults[:5])
            assert again.handled == 5 and again.dead_lettered == 0
        assert await store.list_dead_letters() == []
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            listed = (
                await c.get("/admin/events", params={"type": "asset.*", "limit": 100},
                            headers={"Authorization": f"Bearer {admin}"})
            ).json()  # fmt: skip
            unsigned = await c.post("/api/v2.0/EventService", json={"topic": "asset.fault"})
        assert unsigned.status_code == 401
        assert sorted(e["payload"]["code"] for e in listed) == sorted(f"E{i}" for i in range(20))
        assert len(listed) == 20
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


def test_cli_publish_to_http_signs_with_the_routes_webhook_secret(tmp_path: Path) -> None:
    """``pywats-events publish --to http`` against ``pywats-events run`` (two processes): the route takes
    only Standard Webhooks, and the command signs with the configuration's secret."""
    import signal
    import socket
    import subprocess

    from tests.integration.core.test_cli import CLI, cli, cli_env

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "svc.toml"
    cfg.write_text(
        f'db = "sqlite:///svc.db"\n[[transports]]\nkind = "file"\nname = "inbox"\npath = "inbox"\n'
        f'[http]\nport = {port}\n[http.routes.cfx]\nwebhook_secret = "{SECRET}"\n'
    )
    service = subprocess.Popen(
        [str(CLI), "run", "--config", str(cfg)], cwd=tmp_path, env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert service.stderr is not None
        deadline = time.monotonic() + 30
        while "pyWATS events running" not in service.stderr.readline():
            assert time.monotonic() < deadline and service.poll() is None, "service did not start"
        unsigned = httpx.post(f"http://127.0.0.1:{port}/cfx", content=b"{}")
        assert unsigned.status_code == 401
        args = ("publish", "--sample", "units-tested", "--seq", "4", "--to", "http", "--config", str(cfg), "--json")
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["status"] == 200 and report["response"]["accepted"] >= 1
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)
