"""``pywats-events run`` consuming a JetStream stream is killed with SIGKILL mid-stream and started again.

Proves, across a real crash of the consumer process: no message is lost (every one reaches every handler),
the event store holds each event exactly once, the event ids survive the redelivery (stream sequence), and
a recording handler runs a second time only for messages that were in flight at the kill (handled, but
their settlement not yet committed), at most ``max_inflight`` of them and never one that was acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery
from tests.integration.nats.conftest import Run, consumer_settled
from tests.integration.nats.service import kill9, per_handler, read_records, start_service, stop, write_service

pytestmark = [pytest.mark.services, pytest.mark.slow]

N = 3000
MAX_INFLIGHT = 64


def wait_records(record: Path, handler: str, at_least: int, timeout: float, proc: object) -> None:
    deadline = time.monotonic() + timeout
    while len(set(per_handler(read_records(record), handler))) < at_least:
        if getattr(proc, "poll")() is not None:  # noqa: B009 (Popen)
            raise AssertionError(f"the service exited with {getattr(proc, 'returncode')} while consuming")  # noqa: B009
        if time.monotonic() > deadline:
            raise AssertionError(f"{handler} did not reach {at_least} events within {timeout}s")
        time.sleep(0.05)


def stored_events(db: Path) -> list[tuple[str, int]]:
    async def query() -> list[tuple[str, int]]:
        async with open_store(f"sqlite:///{db}") as store:
            rows = await store.query_events(EventQuery(type_pattern="test.*", limit=100_000))
            return [(r.event.id, int(r.event.payload["seq"])) for r in rows]

    return asyncio.run(query())


def test_kill_9_of_the_service_mid_stream_loses_nothing_and_stores_each_event_once(run: Run, tmp_path: Path) -> None:
    db = tmp_path / "service.db"
    record = tmp_path / "handled.txt"
    write_service(
        tmp_path,
        f"sqlite:///{db}",
        run.options(max_inflight=MAX_INFLIGHT, fetch_batch=32, ack_wait=3, reconnect_initial=0.2),
    )
    asyncio.run(run.create_stream())
    asyncio.run(run.publish([(f"results.ict-{i % 8}", json.dumps({"seq": i}).encode()) for i in range(N)]))

    first = start_service(tmp_path, record, "first.log")
    try:
        wait_records(record, "h2", 600, 120, first)
    finally:
        kill9(first)
    at_kill = read_records(record)
    assert len(set(per_handler(at_kill, "h1"))) < N, "the first process finished before it was killed"
    stored_at_kill = {seq for _, seq in stored_events(db)}

    second = start_service(tmp_path, record, "second.log")
    try:
        wait_records(record, "h1", N, 180, second)
        wait_records(record, "h2", N, 60, second)
        info = asyncio.run(consumer_settled(run))
    finally:
        assert stop(second) == 0

    records = read_records(record)
    for handler in ("h1", "h2"):
        counts = per_handler(records, handler)
        assert set(counts) == set(range(N)), f"{handler}: lost {sorted(set(range(N)) - set(counts))[:10]}"
        first_run = {seq for h, seq, pid in records if h == handler and pid == first.pid}
        second_run = [seq for h, seq, pid in records if h == handler and pid == second.pid]
        assert len(second_run) == len(set(second_run)), f"{handler}: the second process ran an event twice"
        twice = {seq for seq, n in counts.items() if n > 1}
        assert max(counts.values()) <= 2
        assert twice <= first_run  # a repeat is the second process redoing a call of the killed one...
        assert len(twice) <= MAX_INFLIGHT, f"{handler}: {len(twice)} events ran twice"  # ...in flight then
        assert not twice & stored_at_kill  # a committed (stored, recorded) event never runs again

    stored = stored_events(db)
    assert len(stored) == N  # exactly once in the event store, also for events redelivered after the kill
    assert {seq for _, seq in stored} == set(range(N))
    assert len({eid for eid, _ in stored}) == N
    assert info.num_ack_pending == 0 and info.num_pending == 0
