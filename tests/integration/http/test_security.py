"""Bearer tokens, HMAC body signatures and the admin token, over real loopback HTTP."""

from __future__ import annotations

import json

import pytest

from pywats_events.http.security import sign_body

from .conftest import ServiceFactory

EVENT = json.dumps({"type": "test.result", "source": "ict-1"}).encode()


async def test_bearer_token_required_per_route(start_service: ServiceFactory) -> None:
    svc = await start_service(routes={"events": {"tokens": ["tok-a", "tok-b"]}})
    missing = await svc.client.post("/events", content=EVENT)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = await svc.client.post("/events", content=EVENT, headers={"Authorization": "Bearer tok-c"})
    assert wrong.status_code == 403
    assert "tok" not in wrong.text, "the answer must not echo or hint at tokens"
    for token in ("tok-a", "tok-b"):  # several tokens: rotation
        ok = await svc.client.post("/events", content=EVENT, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    # Other route groups stay open unless configured.
    lab = await svc.client.post("/api/v2.0/EventService", json={"topic": "a.b"})
    assert lab.status_code == 200


async def test_hmac_signature_over_the_raw_body(start_service: ServiceFactory) -> None:
    svc = await start_service(routes={"cfx": {"hmac_secret": "k3y"}, "events": {"hmac_secret": "k3y"}})
    good = await svc.client.post("/events", content=EVENT, headers={"X-Signature": sign_body(EVENT, "k3y")})
    assert good.status_code == 200, good.text
    upper = "sha256=" + sign_body(EVENT, "k3y").split("=", 1)[1].upper()
    assert (await svc.client.post("/events", content=EVENT, headers={"X-Signature": upper})).status_code == 200
    tampered = EVENT.replace(b"ict-1", b"ict-2")
    bad = await svc.client.post("/events", content=tampered, headers={"X-Signature": sign_body(EVENT, "k3y")})
    assert bad.status_code == 403
    wrong_key = await svc.client.post("/events", content=EVENT, headers={"X-Signature": sign_body(EVENT, "other")})
    assert wrong_key.status_code == 403
    malformed = await svc.client.post("/events", content=EVENT, headers={"X-Signature": "md5=abc"})
    assert malformed.status_code == 403
    missing = await svc.client.post("/events", content=EVENT)
    assert missing.status_code == 401


async def test_token_and_signature_together_need_both(start_service: ServiceFactory) -> None:
    svc = await start_service(routes={"events": {"tokens": ["t"], "hmac_secret": "s"}})
    sig = {"X-Signature": sign_body(EVENT, "s")}
    assert (await svc.client.post("/events", content=EVENT, headers=sig)).status_code == 401
    both = {**sig, "Authorization": "Bearer t"}
    assert (await svc.client.post("/events", content=EVENT, headers=both)).status_code == 200


async def test_status_and_metrics_can_be_protected(start_service: ServiceFactory) -> None:
    svc = await start_service(routes={"status": {"tokens": ["s"]}, "metrics": {"tokens": ["m"]}})
    assert (await svc.client.get("/status")).status_code == 401
    assert (await svc.client.get("/status", headers={"Authorization": "Bearer s"})).status_code == 200
    assert (await svc.client.get("/metrics", headers={"Authorization": "Bearer s"})).status_code == 403
    assert (await svc.client.get("/metrics", headers={"Authorization": "Bearer m"})).status_code == 200
    # Probes stay open for orchestrators.
    assert (await svc.client.get("/healthz")).status_code == 200


@pytest.mark.parametrize("path", ["/admin/breakers", "/admin/dead-letters"])
async def test_admin_needs_its_token(start_service: ServiceFactory, path: str) -> None:
    svc = await start_service(admin_token="adm-secret", routes={"events": {"tokens": ["ingest"]}})
    assert (await svc.client.get(path)).status_code == 401
    ingest_token = await svc.client.get(path, headers={"Authorization": "Bearer ingest"})
    assert ingest_token.status_code == 403, "an ingest token must not open the admin API"
    assert (await svc.client.get(path, headers={"Authorization": "Bearer adm-secret"})).status_code == 200


async def test_admin_api_absent_without_admin_token(start_service: ServiceFactory) -> None:
    svc = await start_service()
    response = await svc.client.get("/admin/breakers", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404
    assert "/admin/breakers" not in (await svc.client.get("/openapi.json")).json()["paths"]


async def test_secrets_never_reach_the_log_or_describe(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    svc = await start_service(
        admin_token="adm-secret", routes={"events": {"tokens": ["tok-secret"], "hmac_secret": "hm-secret"}}
    )
    await svc.client.post("/events", content=EVENT, headers={"Authorization": "Bearer tok-secret"})
    await svc.client.post("/events", content=EVENT, headers={"Authorization": "Bearer wrong-secret"})
    settings = svc.server.settings
    shown = repr(settings) + json.dumps(settings.describe()) + json.dumps(svc.bus.readiness()[1], default=str)
    for secret in ("adm-secret", "tok-secret", "hm-secret", "wrong-secret"):
        assert secret not in caplog.text
        assert secret not in shown


# -- issue 9, defect 11: Idempotency-Key on signed routes -------------------------------------------
@pytest.mark.parametrize(
    ("route", "group", "body"),
    [
        ("/events", "events", EVENT),
        ("/api/v2.0/EventService", "event_service", json.dumps({"topic": "order.completed"}).encode()),
    ],
)
async def test_forged_idempotency_key_on_a_captured_signed_request_does_not_rerun_handlers(
    start_service: ServiceFactory, route: str, group: str, body: bytes
) -> None:
    from pywats_events import Event, EventBus

    bus = EventBus()
    calls: list[str] = []

    @bus.subscribe("*")
    async def count(event: Event) -> None:
        if not event.type.startswith("system."):
            calls.append(event.id)

    svc = await start_service(bus, routes={group: {"hmac_secret": "k3y"}})
    captured = {"X-Signature": sign_body(body, "k3y"), "Idempotency-Key": "order-1"}
    first = await svc.client.post(route, content=body, headers=captured)
    assert first.status_code == 200, first.text
    assert len(calls) == 1
    for forged in ("order-2", "anything-else"):
        replay = await svc.client.post(route, content=body, headers={**captured, "Idempotency-Key": forged})
        assert replay.status_code == 200
        assert replay.json()["event_ids"] == first.json()["event_ids"]
        assert replay.json()["settlement"]["skipped"] == 1
    stripped = await svc.client.post(route, content=body, headers={"X-Signature": captured["X-Signature"]})
    assert stripped.json()["event_ids"] == first.json()["event_ids"]
    assert len(calls) == 1, "a replayed signed request ran the handlers again"


async def test_idempotency_key_still_seeds_ids_on_unsigned_routes(start_service: ServiceFactory) -> None:
    svc = await start_service()
    a = await svc.client.post("/events", content=EVENT, headers={"Idempotency-Key": "k-1"})
    b = await svc.client.post("/events", content=EVENT, headers={"Idempotency-Key": "k-1"})
    c = await svc.client.post("/events", content=EVENT, headers={"Idempotency-Key": "k-2"})
    assert a.json()["event_ids"] == b.json()["event_ids"] != c.json()["event_ids"]
