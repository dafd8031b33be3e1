"""The webhook on the core's one intake path (issue 10, deliverable 2): the HTTP answer is derived from
the settlement future ``Transport.intake`` returns, over a real uvicorn server on loopback."""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from pywats_events import Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.errors import StoreError

from .conftest import ServiceFactory


class RefusingStore(MemoryStore):
    """A memory store whose dead-letter writes fail while ``refuse`` is set (a full disk, a lost database)."""

    refuse = True

    async def add_dead_letters(self, entries: Any) -> None:
        if self.refuse:
            raise StoreError("dead-letter table is not writable")
        await super().add_dead_letters(entries)


async def test_undecodable_cfx_is_answered_503_while_its_dead_letter_cannot_be_stored(
    start_service: ServiceFactory,
) -> None:
    store = RefusingStore()
    svc = await start_service(EventBus(store))
    corrupt = b"\x1f\x8b\x08\x00garbage"
    refused = await svc.client.post("/cfx", content=corrupt, headers={"content-encoding": "gzip"})
    assert refused.status_code == 503, refused.text  # settle_failed: nothing acknowledged, the client keeps it
    assert refused.headers["retry-after"]
    assert await store.count_dead_letters() == 0
    store.refuse = False
    kept = await svc.client.post("/cfx", content=corrupt, headers={"content-encoding": "gzip"})
    assert kept.status_code == 400, kept.text
    entry = await store.get_dead_letter(kept.json()["dead_letter_id"])
    assert entry.raw_body == corrupt and entry.origin == "/cfx"
    assert "gzip" in entry.error_message and "gzip" in kept.json()["detail"]  # the app's reason, not a re-decode's
    assert entry.headers["content-encoding"] == "gzip" and entry.headers["pywats-decoder"] == "cfx"
    assert svc.server.transport.in_flight == 0


@pytest.mark.parametrize("route", ["/events", "/cfx"])
async def test_a_delivery_whose_failure_cannot_be_recorded_is_answered_503_then_200_with_the_counts(
    start_service: ServiceFactory, route: str
) -> None:
    from pywats_cfx import envelope_to_bytes
    from pywats_cfx.explorer import generate_envelope

    store = RefusingStore()
    bus = EventBus(store, retry=RetryPolicy(max_attempts=1))
    seen: list[str] = []

    @bus.subscribe("test.result", "system.heartbeat", name="always-fails")
    async def fails(event: Event) -> None:
        seen.append(event.id)
        raise RuntimeError("downstream refused")

    svc = await start_service(bus)
    if route == "/events":
        body = b'{"id": "00000000-0000-4000-8000-000000000001", "type": "test.result", "source": "ict-1"}'
    else:
        body = gzip.compress(envelope_to_bytes(generate_envelope("heartbeat", seq=1)))
    headers = {"content-encoding": "gzip"} if route == "/cfx" else {}
    first = await svc.client.post(route, content=body, headers=headers)
    assert first.status_code == 503, first.text
    store.refuse = False
    second = await svc.client.post(route, content=body, headers=headers)
    assert second.status_code == 200, second.text
    settlement = second.json()["settlement"]
    assert settlement["events"] == 1 and settlement["dead_lettered"] == 1 and settlement["handled"] == 0
    assert len(seen) == 2  # the handler ran again: its failure had never been recorded
    assert await store.count_dead_letters(handler="always-fails") == 1
