"""The bundled IPC-CFX samples, decoded by the real ``cfx`` decoder and delivered through a bus: the
analytics equal the brute-force computation, and contradictory sample data is dead-lettered, not used."""

from __future__ import annotations

from pywats_cfx.decoder import decode_cfx
from pywats_events import Event, EventBus, MockTransport
from pywats_events.analytics import resolve_window
from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.codec import DecodeContext
from pywats_events.store import MemoryStore
from tests.cfx_samples import VALID

from .brute_force import assert_matches, brute_force


def _sample_events() -> list[Event]:
    events: list[Event] = []
    for path in VALID:
        events.extend(decode_cfx(path.read_bytes(), DecodeContext(origin=path.name)))
    return events


async def test_cfx_samples_report_equals_brute_force_and_bad_work_pairs_are_dead_lettered() -> None:
    events = _sample_events()
    store = MemoryStore()
    bus = EventBus(store, emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    # Subscribed mode: the dead letters are written before the messages settle.
    handler = AnalyticsHandler(persist=False, observe=False)
    bus.register(handler)
    async with bus:
        await mock.inject_many(events)
        dead = await store.list_dead_letters(handler="analytics")
    # The SDK samples reuse one TransactionID for every WorkStarted/WorkCompleted, with completions before
    # starts: the analytics refuse that pair, by name, instead of making a negative cycle time.
    assert dead, "the contradictory sample work pair must be dead-lettered"
    assert all(d.error_type.endswith("AnalyticsInputError") for d in dead)
    assert all("transaction_id" in d.error_message and "2c24590d" in d.error_message for d in dead)
    usable = [e for e in events if not e.type.startswith("production.work")]
    end = max(e.timestamp for e in events)
    w = resolve_window(until=end, now=end, bucket_s=60)
    report = handler.engine.report(w)
    expected = brute_force(usable, w.since_us, w.until_us, w.now_us)
    for figures in expected.values():
        figures["cycle_time_s"] = {"p50": None, "p95": None}
    assert_matches(report, expected)
    station = report["assets"]["SMTPlus.Model_21232.SN23123"]
    assert station["faults"] == 4 and station["mttr_s"] is None  # no sample fault is cleared
    tested = {(e.source, e.payload["unit_id"]) for e in usable if e.type == "test.result"}
    assert report["line"]["units_tested"] == len(tested) > 0
