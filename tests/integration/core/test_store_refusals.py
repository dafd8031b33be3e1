"""Values the store refuses, on real PostgreSQL (issue 9 defect 3), through the drop folder, HTTP and AMQP.

U+0000 in an event is stored (the text columns get a safe form, the JSON body the exact original). A write
the database refuses for its data (here: a handler name longer than the idempotency column) is not
transient: the event goes once to our dead-letter queue as raw JSON with reason ``store_refused``, and the
message settles instead of being redelivered forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events import Event, EventBus, FileTransport, RetryPolicy
from pywats_events.sql_store import open_store
from pywats_events.store import DeadLetterReason, EventQuery, Store
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, queue_depth
from tests.integration.amqp.conftest import amqp, publisher  # noqa: F401 - fixtures
from tests.integration.http.conftest import ServiceFactory, start_service  # noqa: F401 - fixtures
from tests.pg import PostgresUnavailable, fresh_database, require_postgres
from tests.waiting import wait_for

LONG_NAME = "h" * 250  # the idempotency table's handler column holds 200 characters


@pytest.fixture
async def pg_store() -> AsyncIterator[Store]:
    try:
        cm = fresh_database()
        url = await cm.__aenter__()
    except PostgresUnavailable as exc:
        require_postgres(str(exc))
        return
    store = open_store(url)
    try:
        yield store
    finally:
        await cm.__aexit__(None, None, None)


def refusing_bus(store: Store, calls: list[str], event_type: str = "test.refuse") -> EventBus:
    bus = EventBus(store, retry=RetryPolicy(max_attempts=1))

    async def long_named(event: Event) -> None:
        calls.append(event.id)

    bus.register(long_named, name=LONG_NAME, event_types=[event_type])
    return bus


async def assert_refused_once(store: Store, event_id: str) -> None:
    entries = await store.list_dead_letters(reason=DeadLetterReason.STORE_REFUSED)
    assert len(entries) == 1, entries
    (entry,) = entries
    assert entry.event is None and entry.raw_body is not None
    body = json.loads(entry.raw_body)
    assert body["id"] == event_id  # the whole event is kept, replayable as event JSON
    assert entry.headers["pywats-decoder"] == "event-json"
    assert "refused" in entry.error_message and entry.error_type == "StoreRefusedError"


async def test_drop_folder_stores_nul_and_settles_a_refused_write_once(tmp_path: Path, pg_store: Store) -> None:
    inbox = tmp_path / "inbox"
    calls: list[str] = []
    bus = refusing_bus(pg_store, calls)
    bus.add_event_store()
    transport = FileTransport(path=inbox, settle_seconds=0.05)  # type: ignore[arg-type]
    bus.add_transport(transport)
    async with bus:
        await wait_for(lambda: (inbox / "processed").is_dir(), 10)
        (inbox / "nul.json").write_text(
            json.dumps({"id": "nul-1", "type": "test.result", "source": "st\u0000A", "payload": {"sn": "S\u0000N"}})
        )
        (inbox / "refuse.json").write_text(json.dumps({"id": "ref-1", "type": "test.refuse", "source": "st"}))
        await wait_for(lambda: (inbox / "processed" / "nul.json").is_file(), 20)
        await wait_for(lambda: (inbox / "processed" / "refuse.json").is_file(), 20)
        await asyncio.sleep(1.5)  # a redelivery loop would run the handler again by now (rescans every second)
        (stored,) = await pg_store.query_events(EventQuery(type_pattern="test.result"))
    assert stored.event.source == "st\x00A" and stored.event.payload == {"sn": "S\x00N"}
    assert calls == ["ref-1"]
    assert [o.status for o in transport.outcomes] == ["processed", "processed"]
    await pg_store.open()
    try:
        await assert_refused_once(pg_store, "ref-1")
    finally:
        await pg_store.close()


async def test_http_answers_200_once_for_a_refused_write(start_service: ServiceFactory, pg_store: Store) -> None:  # noqa: F811
    calls: list[str] = []
    bus = refusing_bus(pg_store, calls)
    svc = await start_service(bus)
    response = await svc.client.post("/events", json={"id": "http-1", "type": "test.refuse", "source": "x\u0000"})
    assert response.status_code == 200, response.text
    assert response.json()["settlement"]["dead_lettered"] == 1
    assert calls == ["http-1"]
    await assert_refused_once(pg_store, "http-1")


async def test_amqp_acks_a_refused_write_once_and_leaves_nothing_in_the_broker(
    pg_store: Store,
    amqp: AmqpNames,  # noqa: F811
    publisher: Publisher,  # noqa: F811
) -> None:
    calls: list[str] = []
    bus = refusing_bus(pg_store, calls, "test.result")
    bus.add_transport(CFXTransport("cfx", **amqp.transport_options()))
    async with bus:
        await publisher.publish(
            envelope_bytes(1, source=amqp.handle), f"{amqp.handle}.CFX.Production.TestAndInspection.UnitsTested"
        )
        await wait_for(lambda: len(calls) == 1, 20)
        await asyncio.sleep(1.0)  # redeliveries would show as more calls
        assert await queue_depth(amqp.queue) == 0
        assert await queue_depth(amqp.dlq) == 0
        await assert_refused_once(pg_store, calls[0])
    assert len(calls) == 1
