"""No loss on crash: a real bus process on a SQLite file store is ``kill -9``-ed while consuming 10,000
messages and started again. Every event reaches every handler; each handler runs once per event id except
for events that were in flight at the kill (handled, but their idempotency record not yet committed),
which may run once more: at-least-once, with duplicates bounded by the prefetch window."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events.sql_store import open_store
from tests.integration.amqp.broker import (
    AmqpNames,
    Publisher,
    Worker,
    envelope_bytes,
    expected_event_ids,
    handled_lines,
    queue_depth,
    wait_for,
)

N = 10_000
PREFETCH = 200
ROUTING = "CFX.Production.TestAndInspection.UnitsTested"


@pytest.mark.slow
async def test_kill_9_mid_stream_loses_nothing_and_duplicates_only_the_in_flight_window(
    amqp: AmqpNames, publisher: Publisher, tmp_path: Path
) -> None:
    options = amqp.transport_options(prefetch=PREFETCH)
    await CFXTransport("declare", **options).declare_topology()
    store_url = f"sqlite:///{tmp_path / 'events.db'}"
    expected = expected_event_ids(amqp.handle, N)
    await publisher.publish_many((envelope_bytes(i, source=amqp.handle), f"{amqp.handle}.{ROUTING}") for i in range(N))

    first = await Worker.start(store_url, tmp_path / "first.log", options)
    await wait_for(
        lambda: len(handled_lines(first.out)) >= 6000, 120, "the first process to handle 3000 events", interval=0.1
    )
    await first.kill9()
    before = handled_lines(first.out)
    assert len(before) < 2 * N, "the first process finished before it could be killed"

    second = await Worker.start(store_url, tmp_path / "second.log", options)
    try:
        await wait_for(
            lambda: (
                len(before) + len(handled_lines(second.out)) >= 2 * N
                and {e for h, e in before + handled_lines(second.out) if h == "h2"} >= expected
            ),
            180,
            "every event to reach both handlers",
            interval=0.25,
        )
    finally:
        await second.stop()
    after = handled_lines(second.out)
    for handler in ("h1", "h2"):
        ids_before = [e for h, e in before if h == handler]
        ids_after = [e for h, e in after if h == handler]
        assert set(ids_before) | set(ids_after) == expected  # every event reached every handler
        assert max(Counter(ids_before).values()) == 1  # once per process...
        assert max(Counter(ids_after).values()) == 1
        twice = set(ids_before) & set(ids_after)  # ...and again only if in flight at the kill
        assert len(twice) <= PREFETCH, f"{handler}: {len(twice)} events ran twice"
    assert await queue_depth(amqp.queue) == 0
    store = open_store(store_url)
    async with store:
        done = await store.completed_handlers(sorted(expected))
    assert len(done) == N and all(v >= {"h1", "h2"} for v in done.values())  # idempotency records for all
