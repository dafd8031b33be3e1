"""EventServiceClient (sync and async) and HttpForwarder, posting to a real server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pywats_events import Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.http import EventServiceClient, EventServiceError, HttpForwarder
from pywats_events.store import DeadLetterReason

from .conftest import ServiceFactory


async def test_client_publishes_from_sync_and_async_code(start_service: ServiceFactory) -> None:
    bus = EventBus()
    got: list[Event] = []

    @bus.subscribe("Orders.*")
    async def record(event: Event) -> None:
        got.append(event)

    svc = await start_service(bus, routes={"event_service": {"tokens": ["lab"], "hmac_secret": "sig"}})
    client = EventServiceClient(svc.url, token="lab", hmac_secret="sig")
    try:
        # A lab script calls the sync method; here from a worker thread, since this loop runs the server.
        answer = await asyncio.to_thread(
            client.publish_event, topic="Orders.Created", subjects=["o-1"], data={"plate": "P1", "note": None}
        )
        assert answer["settlement"]["handled"] == 1
        await client.publish_async(topic="Orders.Completed", data={"plate": "P1"}, source_trace_ids=["o-1"])
    finally:
        await client.aclose()
    assert [e.type for e in got] == ["Orders.Created", "Orders.Completed"]
    assert got[0].payload == {"plate": "P1"}, "None values are removed before posting"
    assert got[1].correlation_id == "o-1"

    wrong = EventServiceClient(svc.url, token="nope")
    with pytest.raises(EventServiceError) as info:
        await wrong.publish_async(topic="Orders.Created")
    assert info.value.status == 403
    await wrong.aclose()


async def test_forwarder_relays_selected_events_to_another_bus(start_service: ServiceFactory) -> None:
    target_bus = EventBus()
    relayed: list[Event] = []

    @target_bus.subscribe("asset.*")
    async def record(event: Event) -> None:
        relayed.append(event)

    target = await start_service(target_bus, routes={"event_service": {"tokens": ["fw"]}})
    source_bus = EventBus()
    source_bus.register(HttpForwarder(target.url, event_types=("asset.fault",), token="fw"))
    async with source_bus:
        fault = Event(
            type="asset.fault",
            source="ict-1",
            payload={"code": "E1", "detail": None},
            subjects=("ict-1",),
            correlation_id="tx-9",
            severity="error",
        )
        result = await source_bus.publish(fault, Event(type="test.result", source="ict-1"))
        assert result.handled == 1
        assert result.unrouted == 1
        # Forwarding the same event again (a redelivery upstream) is skipped by the target.
        await source_bus.publish(fault.model_copy(update={}))
    assert len(relayed) == 1
    (event,) = relayed
    assert event.type == "asset.fault"
    assert event.payload == {"code": "E1"}
    assert event.subjects == ("ict-1",)
    assert event.correlation_id == "tx-9"


def _failing_service(status: int, calls: list[int]) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        calls.append(status)
        return JSONResponse({"error": "no"}, status_code=status)

    return Starlette(routes=[Route("/api/v2.0/EventService", endpoint, methods=["POST"])])


@pytest.mark.parametrize(
    ("status", "attempts", "reason"), [(503, 3, DeadLetterReason.FAILED), (400, 1, DeadLetterReason.UNRECOVERABLE)]
)
async def test_forwarder_failures_go_through_retry_and_dead_letter(
    status: int, attempts: int, reason: str, start_app: Callable[[Any], Any]
) -> None:
    calls: list[int] = []
    remote = await start_app(_failing_service(status, calls))
    store = MemoryStore()
    bus = EventBus(store, retry=RetryPolicy(max_attempts=3, initial_delay=0.001, max_delay=0.002))
    bus.register(HttpForwarder(remote, name="to-lims"))
    async with bus:
        result = await bus.publish(Event(type="test.result", source="x"))
    assert result.dead_lettered == 1
    assert calls == [status] * attempts
    (entry,) = await store.list_dead_letters(handler="to-lims")
    assert entry.reason == reason
