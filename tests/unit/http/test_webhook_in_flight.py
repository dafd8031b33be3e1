"""``WebhookTransport.ingest``: a request stays counted in flight until the bus settles its events, also
when the request stopped waiting (submit or settle deadline), and is released at once when nothing was
submitted. ``max_in_flight`` and a graceful ``stop`` rely on this count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from pywats_events import Event, EventBus, MockTransport
from pywats_events.http.errors import IngestRefusedError, NotSettledError, SaturatedError
from pywats_events.http.webhook import WebhookSettings, WebhookTransport


async def _until(predicate: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(10):
            while not predicate():  # noqa: ASYNC110 - settles in the background
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not {what} within 10 s") from None


async def _bus(settings: WebhookSettings) -> tuple[EventBus, WebhookTransport, MockTransport, asyncio.Event]:
    bus = EventBus(concurrency=1, queue_size=2)
    http = WebhookTransport("http", settings)
    line = MockTransport("line")
    bus.add_transport(http)
    bus.add_transport(line)
    release = asyncio.Event()

    @bus.subscribe("load.*")
    async def stuck(event: Event) -> None:
        await release.wait()

    await bus.start()
    http.set_serving(True)
    return bus, http, line, release


async def test_settled_request_is_released_before_its_answer() -> None:
    bus, http, _, release = await _bus(WebhookSettings())
    release.set()
    try:
        result = await http.ingest([Event(type="load.x")])
        assert (result.handled, http.in_flight) == (1, 0)
    finally:
        await bus.stop()


async def test_request_past_settle_timeout_stays_in_flight_until_the_bus_settles_it() -> None:
    bus, http, _, release = await _bus(WebhookSettings(settle_timeout=0.1))
    try:
        with pytest.raises(NotSettledError):
            await http.ingest([Event(id="slow", type="load.x")])
        assert http.in_flight == 1, "the event is still in the bus"
        release.set()
        await _until(lambda: http.in_flight == 0, "released once settled")
    finally:
        await bus.stop()


async def test_batch_whose_submission_outlives_submit_wait_stays_in_flight_until_settled() -> None:
    bus, http, line, release = await _bus(WebhookSettings(submit_wait=0.1))
    try:
        # Lane of 2 filled (one more running): the batch's submission waits for room past submit_wait.
        first = [await line.inject_nowait([Event(id=f"e{i}", type="load.x")]) for i in range(3)]
        with pytest.raises(SaturatedError):
            await http.ingest([Event(id="late-1", type="load.x"), Event(id="late-2", type="load.x")])
        assert http.in_flight == 1, "the submission goes on in the background"
        release.set()
        await asyncio.gather(*first)
        await _until(lambda: http.in_flight == 0, "released once the batch settled")
    finally:
        await bus.stop()


@pytest.mark.parametrize("n", [1, 2])
async def test_request_the_bus_refuses_is_released_at_once(n: int) -> None:
    bus, http, _, release = await _bus(WebhookSettings())
    release.set()
    await bus.stop()  # not running: nothing is submitted, nothing will settle
    http.set_serving(True)
    http._stopping = False  # the transport still takes requests; the bus refuses them
    with pytest.raises(IngestRefusedError, match="not running"):
        await http.ingest([Event(type="load.x") for _ in range(n)])
    assert http.in_flight == 0
