"""The wats-report handler on a real bus against the strict fake WATS over real HTTP: every sample is
accepted, redelivery overwrites, transient faults are retried, 400 is dead-lettered with the server's
text, a bad token parks without spending anything and recovers, and a WATS that is down costs nothing."""

from __future__ import annotations

import asyncio

import pytest

from pywats_cfx.decoder import decode_cfx
from pywats_events.bus import EventBus
from pywats_events.codec import DecodeContext
from pywats_events.config import HandlerConfig, build_handler
from pywats_events.store import DeadLetterReason
from pywats_wats.handlers import WatsReportHandler
from pywats_wats.testing import FakeWats
from tests.cfx_samples import SAMPLES
from tests.integration.wats.conftest import wats_options
from tests.unit.wats.conftest import RESULT_TYPES, sample_events
from tests.waiting import wait_for

UNITS_TESTED = SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json"


def handler(url: str, **extra: object) -> WatsReportHandler:
    """Built the way the service builds it: from a [[handlers]] table."""
    built = build_handler(HandlerConfig(kind="wats-report", **wats_options(url, **extra)))  # type: ignore[arg-type]
    assert isinstance(built, WatsReportHandler)
    return built


async def no_dead_letters(bus: EventBus, timeout: float = 5.0) -> None:
    """Wait until the replay has removed every parked entry (it deletes each after WATS took it)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (left := await bus.store.count_dead_letters()) != 0:
        assert asyncio.get_running_loop().time() < deadline, f"{left} dead letters left"
        await asyncio.sleep(0.02)


def posts(fake: FakeWats) -> list[int]:
    return [r.status for r in fake.calls("POST", "/api/Report/WSJF")]


async def test_every_sample_result_is_accepted_by_the_strict_fake(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(handler(wats_url, process_codes={"aoi": 30}))
    events = [e for _, e in sample_events(*RESULT_TYPES)]
    await bus.start()
    result = await bus.publish(*events)
    assert result.dead_lettered == 0 and result.handled == len(events)
    assert set(fake.reports) == {e.id for e in events}
    assert posts(fake) == [200] * len(events)
    assert await bus.store.count_dead_letters() == 0


async def test_a_redelivered_envelope_overwrites_its_report(fake: FakeWats, wats_url: str) -> None:
    h = handler(wats_url)
    first = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext(origin="first"))
    again = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext(origin="redelivered"))
    assert [e.id for e in first] == [e.id for e in again]
    for event in [*first, *again]:
        await h.handle(event)
    await h.on_stop()
    assert posts(fake) == [200] * 4
    assert sorted(fake.reports) == sorted(e.id for e in first)  # two reports, each posted twice


async def test_three_503_then_200_stores_one_report(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(handler(wats_url, retry_attempts=4))
    event = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext())[0]
    fake.fail_next(3, 503)
    await bus.start()
    result = await bus.publish(event)
    assert result.handled == 1 and result.dead_lettered == 0
    assert posts(fake) == [503, 503, 503, 200]
    assert list(fake.reports) == [event.id]


async def test_a_400_is_one_dead_letter_with_the_servers_text(bus: EventBus, fake: FakeWats, wats_url: str) -> None:
    bus.register(handler(wats_url, retry_attempts=4))
    event = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext())[0]
    fake.reject_next("Part number PCBA-1000 revision A is not defined")
    await bus.start()
    result = await bus.publish(event)
    assert result.dead_lettered == 1
    assert posts(fake) == [400]  # not retried
    (entry,) = await bus.store.list_dead_letters()
    assert entry.reason == DeadLetterReason.UNRECOVERABLE and entry.handler == "wats-report"
    assert entry.error_type == "WatsRejectedError"
    assert "Part number PCBA-1000 revision A is not defined" in entry.error_message
    assert entry.event is not None and entry.event.id == event.id


async def test_an_invalid_event_is_dead_lettered_without_a_request(
    bus: EventBus, fake: FakeWats, wats_url: str
) -> None:
    bus.register(handler(wats_url))
    event = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext())[0]
    broken = event.model_copy(update={"payload": {**event.payload, "unit_id": "PANEL/1"}})
    await bus.start()
    assert (await bus.publish(broken)).dead_lettered == 1
    (entry,) = await bus.store.list_dead_letters()
    assert entry.reason == DeadLetterReason.UNRECOVERABLE and entry.error_type == "ReportBuildError"
    assert "payload.unit_id 'PANEL/1'" in entry.error_message
    assert fake.requests == []


async def test_a_bad_token_parks_everything_shows_in_readiness_and_recovers(
    bus: EventBus, fake: FakeWats, wats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus.register(handler(wats_url))
    events = decode_cfx(UNITS_TESTED.read_bytes(), DecodeContext())
    fake.token = "rotated-on-the-server"
    await bus.start()
    result = await bus.publish(*events)
    assert result.dead_lettered == 2  # durably parked, so the broker message can be acknowledged
    entries = await bus.store.list_dead_letters()
    assert {e.reason for e in entries} == {DeadLetterReason.CIRCUIT_OPEN}
    # The first met the 401; the breaker it opened parked the second without a call.
    assert sorted(e.error_type for e in entries) == ["CircuitOpenError", "WatsAuthError"]
    ready, details = bus.readiness()
    assert not ready
    assert any("wats-report" in r and "401" in r for r in details["not_ready"]), details["not_ready"]
    assert fake.reports == {}
    assert caplog.text.count("WATS refused the token (401)") == 1  # said once, in words, without the token
    assert "line3-token" not in caplog.text
    unauthorized = len(fake.requests)
    assert unauthorized <= 3  # one attempt, then probes: nothing retried in a loop
    fake.token = "line3-token"  # the administrator puts the token back
    await wait_for(lambda: len(fake.reports) == 2, timeout=10)
    await wait_for(lambda: bus.readiness()[0], timeout=5)
    await no_dead_letters(bus)


async def test_wats_down_parks_and_delivers_oldest_first_when_it_answers(bus: EventBus, fake: FakeWats) -> None:
    import socket

    with socket.socket() as s:  # a port with nobody listening: connection refused, as a WATS that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bus.register(handler(f"http://127.0.0.1:{port}"))
    events = [e for _, e in sample_events(*RESULT_TYPES)]
    await bus.start()
    for event in events:
        result = await bus.publish(event)
        assert result.dead_lettered == 1  # parked; the line goes on
    parked = await bus.store.list_dead_letters()
    assert len(parked) == len(events) and {e.reason for e in parked} == {DeadLetterReason.CIRCUIT_OPEN}
    with fake.serve(port=port):
        await wait_for(lambda: len(fake.reports) == len(events), timeout=15)
        await wait_for(lambda: bus.breakers["wats-report"].state.value == "closed", timeout=5)
        await no_dead_letters(bus)
    order = [r.body["id"] for r in fake.calls("POST", "/api/Report/WSJF") if r.status == 200]
    assert order == [e.id for e in events]  # oldest first


async def test_repair_results_post_repair_reports_only_with_a_repair_operation(
    bus: EventBus, fake: FakeWats, wats_url: str
) -> None:
    from tests.unit.wats.test_builder import repair_event

    fake.processes[500] = "Repair"
    bus.register(handler(wats_url, repair_process_code=500))
    bus.register(handler(wats_url, repair_process_code=None), name="wats-report-tests-only")
    event = repair_event()
    await bus.start()
    result = await bus.publish(event)
    assert result.handled == 1 and result.dead_lettered == 0  # only the handler with a repair operation
    assert fake.reports[event.id]["type"] == "R" and fake.reports[event.id]["processCode"] == 500
    assert posts(fake) == [200]
