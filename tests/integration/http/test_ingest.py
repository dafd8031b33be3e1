"""POST /events, /cfx and the lab EventService against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest

from pywats_cfx import envelope_to_bytes
from pywats_cfx.explorer import generate_envelope
from pywats_events import Event, EventBus, MemoryStore, MockTransport, RetryPolicy, UnrecoverableError
from pywats_events.http.webhook import WebhookSettings, WebhookTransport
from pywats_events.store import DeadLetterReason

from .conftest import ServiceFactory


async def test_events_answered_only_after_the_handler_finished(start_service: ServiceFactory) -> None:
    bus = EventBus()
    entered = asyncio.Event()
    release = asyncio.Event()
    handled: list[str] = []

    @bus.subscribe("test.result")
    async def slow(event: Event) -> None:
        entered.set()
        await release.wait()
        handled.append(event.id)

    svc = await start_service(bus)
    request = asyncio.create_task(
        svc.client.post("/events", json={"id": "e-1", "type": "test.result", "source": "ict-1"})
    )
    await asyncio.wait_for(entered.wait(), 10)
    await asyncio.sleep(0.05)  # give a premature answer the chance to arrive
    assert not request.done(), "answered before the delivery settled"
    release.set()
    response = await asyncio.wait_for(request, 10)
    assert response.status_code == 200
    body = response.json()
    assert body["event_ids"] == ["e-1"]
    assert body["settlement"]["handled"] == 1
    assert handled == ["e-1"]


async def test_event_list_is_one_request_and_each_event_is_routed(start_service: ServiceFactory) -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []

    @bus.subscribe("test.*")
    async def record(event: Event) -> None:
        seen.append((event.type, event.headers["transport"]))

    svc = await start_service(bus)
    events = [{"type": "test.result", "source": "a"}, {"type": "test.started", "source": "b"}]
    response = await svc.client.post("/events", json=events)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2
    assert sorted(seen) == [("test.result", "http"), ("test.started", "http")]


async def test_failing_handler_is_dead_lettered_before_the_answer(start_service: ServiceFactory) -> None:
    store = MemoryStore()
    bus = EventBus(store, retry=RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.001))

    @bus.subscribe("test.result", name="broken")
    async def broken(event: Event) -> None:
        raise RuntimeError("database down")

    svc = await start_service(bus)
    response = await svc.client.post("/events", json={"id": "e-2", "type": "test.result"})
    assert response.status_code == 200
    assert response.json()["settlement"]["dead_lettered"] == 1
    entries = await store.list_dead_letters(handler="broken")
    assert [e.event.id for e in entries if e.event] == ["e-2"]


async def test_store_failure_is_not_acknowledged(start_service: ServiceFactory) -> None:
    class FailingStore(MemoryStore):
        def add_dead_letters(self, entries):  # type: ignore[no-untyped-def]
            async def fail() -> None:
                raise OSError("disk full")

            return fail()

    bus = EventBus(FailingStore())

    @bus.subscribe("test.result")
    async def bad(event: Event) -> None:
        raise UnrecoverableError("bad data")

    svc = await start_service(bus)
    response = await svc.client.post("/events", json={"type": "test.result"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_event_names_the_field(start_service: ServiceFactory) -> None:
    svc = await start_service()
    response = await svc.client.post("/events", json=[{"type": "ok.type"}, {"type": "bad type"}])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["field"] == "[1].type"

    response = await svc.client.post("/events", json={"type": "x.y", "severity": "loud"})
    assert response.json()["field"] == "severity"

    response = await svc.client.post("/events", content=b'{"type": ')
    assert response.status_code == 400
    assert "invalid JSON" in response.json()["detail"]


async def test_idempotency_key_makes_a_resent_request_a_no_op(start_service: ServiceFactory) -> None:
    bus = EventBus()
    calls: list[str] = []

    @bus.subscribe("order.done")
    async def once(event: Event) -> None:
        calls.append(event.id)

    svc = await start_service(bus)
    headers = {"Idempotency-Key": "req-7"}
    first = await svc.client.post("/events", json={"type": "order.done"}, headers=headers)
    second = await svc.client.post("/events", json={"type": "order.done"}, headers=headers)
    assert first.json()["event_ids"] == second.json()["event_ids"]
    assert second.json()["settlement"]["skipped"] == 1
    assert len(calls) == 1


async def test_saturated_bus_answers_503_with_retry_after(start_service: ServiceFactory) -> None:
    bus = EventBus(concurrency=1, queue_size=2)
    line = MockTransport("line")
    bus.add_transport(line)
    release = asyncio.Event()
    entered = asyncio.Event()

    @bus.subscribe("load.*")
    async def stuck(event: Event) -> None:
        entered.set()
        await release.wait()

    svc = await start_service(bus)
    # Another transport fills the bus: one event in the handler, two queued (the lane's capacity).
    queued = [await line.inject_nowait([Event(type="load.x", source="s")]) for _ in range(3)]
    await asyncio.wait_for(entered.wait(), 10)
    assert svc.bus.saturated
    depth = svc.bus.queue_depth()
    answer = await svc.client.post("/events", json={"type": "load.x", "source": "s"})
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["content-type"] == "application/problem+json"
    assert svc.bus.queue_depth() == depth, "a refused request must not queue anything"
    metrics = (await svc.client.get("/metrics")).text
    assert 'pywats_http_rejected_total{reason="saturated",route="/events"}' in metrics
    release.set()
    await asyncio.gather(*queued)
    accepted = await svc.client.post("/events", json={"type": "load.x", "source": "s"})
    assert accepted.status_code == 200


async def test_body_over_the_limit_is_413_by_content_length(start_service: ServiceFactory) -> None:
    svc = await start_service(max_body_bytes=1024)
    response = await svc.client.post("/events", content=b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["limit"] == 1024


async def test_streamed_body_over_the_limit_stops_early(start_service: ServiceFactory) -> None:
    svc = await start_service(max_body_bytes=64 * 1024)
    sent = 0
    total = 64 * 1024 * 1024

    async def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        chunk = b"y" * 65536
        while sent < total:
            sent += len(chunk)
            yield chunk

    try:
        response = await svc.client.post("/events", content=chunks())
    except httpx.TransportError:
        response = None  # the server closed the connection mid-upload: also a refusal
    if response is not None:
        assert response.status_code == 413
    assert sent < total, "the server read the whole 64 MB body"


async def test_cfx_plain_and_gzip_become_events(start_service: ServiceFactory) -> None:
    bus = EventBus()
    types: list[str] = []

    @bus.subscribe("asset.*")
    async def record(event: Event) -> None:
        types.append(event.type)

    svc = await start_service(bus)
    plain = envelope_to_bytes(generate_envelope("state-changed", seq=1))
    r1 = await svc.client.post("/cfx", content=plain, headers={"content-type": "application/json"})
    packed = gzip.compress(envelope_to_bytes(generate_envelope("fault", seq=2)))
    r2 = await svc.client.post("/cfx", content=packed, headers={"content-encoding": "gzip"})
    assert (r1.status_code, r2.status_code) == (200, 200), (r1.text, r2.text)
    assert sorted(types) == ["asset.fault", "asset.state_changed"]


async def test_undecodable_cfx_is_dead_lettered_whole_and_answered_400(start_service: ServiceFactory) -> None:
    store = MemoryStore()
    svc = await start_service(EventBus(store))
    body = b'{"MessageName": "CFX.Nope", "not": "an envelope"'
    response = await svc.client.post("/cfx", content=body)
    assert response.status_code == 400
    problem = response.json()
    entry = await store.get_dead_letter(problem["dead_letter_id"])
    assert entry.raw_body == body
    assert entry.reason == DeadLetterReason.DECODE_ERROR
    assert entry.headers["pywats-decoder"] == "cfx"

    corrupt = b"\x1f\x8b\x08\x00garbage"
    response = await svc.client.post("/cfx", content=corrupt, headers={"content-encoding": "gzip"})
    assert response.status_code == 400
    assert (await store.get_dead_letter(response.json()["dead_letter_id"])).raw_body == corrupt


async def test_cfx_unknown_content_encoding_is_415(start_service: ServiceFactory) -> None:
    svc = await start_service()
    response = await svc.client.post("/cfx", content=b"{}", headers={"content-encoding": "br"})
    assert response.status_code == 415


async def test_gzip_bomb_is_refused_413(start_service: ServiceFactory) -> None:
    svc = await start_service(max_decompressed_bytes=64 * 1024)
    bomb = gzip.compress(b"[" + b" " * (10 * 1024 * 1024) + b"]")
    response = await svc.client.post("/cfx", content=bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413


async def test_lab_event_message_becomes_an_event(start_service: ServiceFactory) -> None:
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("Orders.*")
    async def record(event: Event) -> None:
        got.append(event)

    svc = await start_service(bus)
    message = {
        "topic": "Orders.Completed",
        "subjects": ["order-17"],
        "data": json.dumps({"plate": "P-001"}),
        "tags": ["lab"],
        "createdDateUtc": "2024-05-02T08:15:00Z",
        "sourceTraceIds": ["run-42", "step-3"],
        "organizationId": "site-a",
        "userId": "scheduler",
    }
    response = await svc.client.post("/api/v2.0/EventService", json=message)
    assert response.status_code == 200, response.text
    (event,) = got
    assert event.type == "Orders.Completed"
    assert event.subjects == ("order-17",)
    assert event.tags == ("lab",)
    assert event.correlation_id == "run-42"
    assert event.payload == {"plate": "P-001"}
    assert event.timestamp.isoformat() == "2024-05-02T08:15:00+00:00"
    assert event.headers["lab.user_id"] == "scheduler"

    snake = {"topic": "Orders.Started", "source_trace_ids": ["run-43"], "created_date_utc": "2024-05-02T09:00:00"}
    response = await svc.client.post("/api/v2.0/EventService", json=snake)
    assert response.status_code == 200
    assert got[-1].correlation_id == "run-43"


async def test_invalid_module_status_names_the_field(start_service: ServiceFactory) -> None:
    svc = await start_service()
    busy_without_orders = {
        "topic": "ModuleStatusUpdate",
        "data": {"Id": 4, "ModuleIdentifier": "lh-1", "ModuleName": "Liquid handler", "Status": 1},
    }
    response = await svc.client.post("/api/v2.0/EventService", json=busy_without_orders)
    assert response.status_code == 400
    assert response.json()["field"] == "data.OrdersBeingProcessed"


async def test_module_status_updates_feed_the_status_board(start_service: ServiceFactory) -> None:
    svc = await start_service()
    post = svc.client.post
    modules = [
        {"Id": 1, "ModuleIdentifier": "lh-1", "ModuleName": "LH 1", "Status": 0, "Capabilities": ["dispense"]},
        {
            "Id": 2,
            "ModuleIdentifier": "lh-2",
            "ModuleName": "LH 2",
            "Status": "Busy",
            "OrdersBeingProcessed": ["o-9"],
            "Capabilities": ["dispense"],
        },
        {
            "Id": 3,
            "ModuleIdentifier": "rd-1",
            "ModuleName": "Reader",
            "Status": 2,
            "StatusDetails": "lamp failure",
            "Capabilities": ["read-absorbance"],
        },
    ]
    for m in modules[:2]:
        assert (
            await post("/api/v2.0/EventService", json={"topic": "ModuleStatusUpdate", "data": m})
        ).status_code == 200
    assert (await post("/api/v2.0/EventService", json=modules[2])).status_code == 200  # bare update

    overview = (await svc.client.get("/status")).json()
    assert overview["assets"] == 3
    assert overview["by_state"] == {"Ready": 1, "Busy": 1, "Error": 1}
    assert overview["active_orders"] == [{"asset_id": "lh-2", "order": "o-9"}]
    available = (await svc.client.get("/status/available", params={"capability": "dispense"})).json()
    assert [a["asset_id"] for a in available["items"]] == ["lh-1"]
    none = (await svc.client.get("/status/available", params={"capability": "read-absorbance"})).json()
    assert none["count"] == 0


@pytest.mark.parametrize("path", ["/events", "/cfx", "/api/v2.0/EventService"])
async def test_stopped_transport_refuses_with_503(start_service: ServiceFactory, path: str) -> None:
    svc = await start_service()
    await svc.server.transport.stop()
    response = await svc.client.post(path, json={"type": "x.y"})
    assert response.status_code == 503
    assert "retry-after" in response.headers


@pytest.mark.parametrize("batch", [False, True])
async def test_one_full_lane_answers_503_and_queues_nothing(start_service: ServiceFactory, batch: bool) -> None:
    # 2 lanes of 4: one source fills its lane while the bus as a whole has room; the bus reports itself
    # saturated (a submit for that source would wait), so the request is refused before anything is queued.
    bus = EventBus(concurrency=2, queue_size=8)
    bus.add_transport(WebhookTransport("http", WebhookSettings(submit_wait=0.1)))
    line = MockTransport("line")
    bus.add_transport(line)
    release = asyncio.Event()
    handled: list[str] = []

    @bus.subscribe("load.*")
    async def stuck(event: Event) -> None:
        await release.wait()
        handled.append(event.id)

    svc = await start_service(bus)
    first = [await line.inject_nowait([Event(id=f"e{i}", type="load.x", source="one")]) for i in range(5)]
    assert svc.bus.queue_depth() == 4 < svc.bus.queue_size
    assert svc.bus.saturated
    late = [{"id": "late-1", "type": "load.x", "source": "one"}, {"id": "late-2", "type": "load.x", "source": "one"}]
    refused = await svc.client.post("/events", json=late if batch else late[0])
    assert refused.status_code == 503
    assert "retry-after" in refused.headers
    release.set()
    await asyncio.gather(*first)
    assert not {"late-1", "late-2"} & set(handled)
    retry = await svc.client.post("/events", json=late if batch else late[0])
    assert retry.status_code == 200
    assert retry.json()["settlement"]["handled"] == (2 if batch else 1)
    assert handled.count("late-1") == 1


async def test_settlement_slower_than_settle_timeout_is_503(start_service: ServiceFactory) -> None:
    bus = EventBus()
    bus.add_transport(WebhookTransport("http", WebhookSettings(settle_timeout=0.2)))
    release = asyncio.Event()

    @bus.subscribe("slow.*")
    async def slow(event: Event) -> None:
        await release.wait()

    svc = await start_service(bus)
    response = await svc.client.post("/events", json={"id": "s1", "type": "slow.x"})
    assert response.status_code == 503
    assert "not settled" in response.json()["detail"]
    assert svc.server.transport.in_flight == 1, "still counted until it settles"
    release.set()
    async with asyncio.timeout(10):
        while svc.server.transport.in_flight:  # noqa: ASYNC110 - settles in the background
            await asyncio.sleep(0.01)
    retry = await svc.client.post("/events", json={"id": "s1", "type": "slow.x"})
    assert retry.status_code == 200
    assert retry.json()["settlement"]["skipped"] == 1


async def test_idempotency_lookup_only_when_an_event_could_be_a_repeat(start_service: ServiceFactory) -> None:
    class CountingStore(MemoryStore):
        lookups = 0

        async def completed_handlers(self, event_ids):  # type: ignore[no-untyped-def]
            CountingStore.lookups += 1
            return await super().completed_handlers(event_ids)

    bus = EventBus(CountingStore())

    @bus.subscribe("x.*")
    async def sink(event: Event) -> None:
        pass

    svc = await start_service(bus)
    before = CountingStore.lookups
    await svc.client.post("/events", json={"type": "x.y"})  # new random id: cannot be a repeat
    await svc.client.post("/api/v2.0/EventService", json={"topic": "x.lab"})
    assert CountingStore.lookups == before
    await svc.client.post("/events", json={"id": "given", "type": "x.y"})
    await svc.client.post("/events", json={"type": "x.y"}, headers={"Idempotency-Key": "k"})
    await svc.client.post("/api/v2.0/EventService", json={"topic": "x.lab"}, headers={"Idempotency-Key": "k2"})
    assert CountingStore.lookups == before + 3


# -- issue 9, defect 12: Content-Encoding on /events and the lab EventService -----------------------
@pytest.mark.parametrize(
    ("route", "body", "event_type"),
    [
        ("/events", json.dumps([{"type": "test.result", "source": "ict-1"}] * 2).encode(), "test.result"),
        ("/api/v2.0/EventService", json.dumps([{"topic": "order.completed"}] * 2).encode(), None),
    ],
)
async def test_gzip_body_is_decoded_on_events_and_event_service(
    start_service: ServiceFactory, route: str, body: bytes, event_type: str | None
) -> None:
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("*")
    async def record(event: Event) -> None:
        if not event.type.startswith("system."):
            got.append(event)

    svc = await start_service(bus)
    for encoding in ("gzip", "x-gzip", "GZIP"):
        response = await svc.client.post(route, content=gzip.compress(body), headers={"content-encoding": encoding})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 2
    assert len(got) == 6
    if event_type:
        assert {e.type for e in got} == {event_type}


@pytest.mark.parametrize("route", ["/events", "/api/v2.0/EventService"])
async def test_unknown_encoding_is_415_corrupt_gzip_400_and_a_bomb_413(
    start_service: ServiceFactory, route: str
) -> None:
    svc = await start_service(max_decompressed_bytes=64 * 1024)
    unknown = await svc.client.post(route, content=b"{}", headers={"content-encoding": "br"})
    assert unknown.status_code == 415
    corrupt = await svc.client.post(route, content=b"\x1f\x8b\x08\x00garbage", headers={"content-encoding": "gzip"})
    assert corrupt.status_code == 400 and "gzip" in corrupt.json()["detail"]
    bomb = gzip.compress(b"[" + b" " * (10 * 1024 * 1024) + b"]")
    assert (await svc.client.post(route, content=bomb, headers={"content-encoding": "gzip"})).status_code == 413
