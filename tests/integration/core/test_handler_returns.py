"""Handlers that return a value settle their messages through the real intakes (issue 9 defect 1):
HTTP answers 200 once (no 503 loop), RabbitMQ with a small prefetch gets every message delivered and acked."""

from __future__ import annotations

from pywats_cfx.transport import CFXTransport
from pywats_events import BaseHandler, Event, EventBus, MemoryStore
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, queue_depth, wait_for
from tests.integration.amqp.conftest import amqp, publisher  # noqa: F401 - fixtures
from tests.integration.http.conftest import ServiceFactory, start_service  # noqa: F401 - fixtures


class Verdict(BaseHandler):
    name = "verdict"
    event_types = ("test.result",)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def handle(self, event: Event) -> dict[str, bool]:  # type: ignore[override]
        self.calls += 1
        return {"ok": True}


async def test_http_intake_answers_once_when_handlers_return_values(start_service: ServiceFactory) -> None:  # noqa: F811
    store = MemoryStore()
    bus = EventBus(store)
    verdict = bus.register(Verdict())
    flags: list[str] = []

    @bus.subscribe("test.result")
    async def returns_true(event: Event) -> bool:
        flags.append(event.id)
        return True

    svc = await start_service(bus)
    for i in range(3):
        response = await svc.client.post("/events", json={"id": f"h-{i}", "type": "test.result", "source": "ict"})
        assert response.status_code == 200, response.text
        assert response.json()["settlement"]["handled"] == 2
    assert flags == ["h-0", "h-1", "h-2"]  # each handler ran once per request: no 503 and re-run
    assert isinstance(verdict, Verdict) and verdict.calls == 3
    assert (await store.completed_handlers(["h-2"]))["h-2"] == {"verdict", "returns_true"}


async def test_amqp_with_small_prefetch_delivers_and_acks_every_message(
    amqp: AmqpNames,  # noqa: F811
    publisher: Publisher,  # noqa: F811
) -> None:
    transport = CFXTransport("cfx", **amqp.transport_options(prefetch=2))
    bus = EventBus()
    bus.add_transport(transport)
    seen: list[str] = []

    @bus.subscribe("test.result")
    async def returns_true(event: Event) -> bool:
        seen.append(event.id)
        return True

    async with bus:
        for i in range(20):
            await publisher.publish(
                envelope_bytes(i, source=amqp.handle), f"{amqp.handle}.CFX.Production.TestAndInspection.UnitsTested"
            )
        await wait_for(lambda: len(seen) >= 20, 20, "20 deliveries")
        await wait_for(lambda: transport.stats["settled"] == 20, 20, "20 settlements")
    assert len(set(seen)) == 20
    assert await queue_depth(amqp.queue) == 0
