"""Scale-out: three bus processes consume one queue (competing consumers) and share a PostgreSQL store.

10,000 events are each handled once per handler; one process is ``kill -9``-ed part-way. The claim that
holds, and that this test checks: every event reaches every handler; no event is handled twice by the
processes that stayed up; an event handled twice was being handled by the killed process when it died (its
idempotency record was not committed), and there are at most ``prefetch`` of those.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.pg import PostgresUnavailable, fresh_database, require_postgres

N = 10_000
PREFETCH = 100
ROUTING = "CFX.Production.TestAndInspection.UnitsTested"


@pytest.mark.slow
async def test_three_workers_share_one_queue_and_a_postgres_store_with_one_killed(
    amqp: AmqpNames, publisher: Publisher, tmp_path: Path
) -> None:
    options = amqp.transport_options(prefetch=PREFETCH)
    await CFXTransport("declare", **options).declare_topology()
    expected = expected_event_ids(amqp.handle, N)
    workers: list[Worker] = []
    async with contextlib.AsyncExitStack() as stack:
        try:
            store_url = await stack.enter_async_context(fresh_database())
        except PostgresUnavailable as exc:
            require_postgres(str(exc))
        stack.push_async_callback(_kill_all, workers)
        for i in range(3):
            workers.append(await Worker.start(store_url, tmp_path / f"w{i}.log", options))
        publishing = asyncio.create_task(
            publisher.publish_many(
                (envelope_bytes(i, source=amqp.handle), f"{amqp.handle}.{ROUTING}") for i in range(N)
            )
        )
        victim = workers[1]
        await wait_for(lambda: len(handled_lines(victim.out)) >= 1000, 120, "worker 1 to handle 500 events", 0.1)
        await victim.kill9()  # while messages are still being published and consumed
        await publishing

        def all_lines() -> list[tuple[str, str]]:
            return [line for w in workers for line in handled_lines(w.out)]

        await wait_for(
            lambda: (
                {e for h, e in all_lines() if h == "h2"} >= expected
                and {e for h, e in all_lines() if h == "h1"} >= expected
            ),
            180,
            "every event to reach both handlers",
            interval=0.25,
        )
        for w in (workers[0], workers[2]):
            await w.stop()
        assert await queue_depth(amqp.queue) == 0
        async with open_store(store_url) as store:
            done = await store.completed_handlers(sorted(expected))
    assert len(done) == N and all(v >= {"h1", "h2"} for v in done.values())
    shares = [len(handled_lines(w.out)) // 2 for w in workers]
    assert all(s > 0 for s in shares), f"every worker took a share: {shares}"
    for handler in ("h1", "h2"):
        killed = [e for h, e in handled_lines(victim.out) if h == handler]
        survivors = [e for w in (workers[0], workers[2]) for h, e in handled_lines(w.out) if h == handler]
        assert set(killed) | set(survivors) == expected  # every event reached every handler
        assert max(Counter(survivors).values()) == 1  # exactly once among the processes that stayed up
        assert max(Counter(killed).values()) == 1
        twice = set(killed) & set(survivors)
        assert len(twice) <= PREFETCH, f"{handler}: {len(twice)} events ran twice"


async def _kill_all(workers: list[Worker]) -> None:
    for w in workers:
        if w.proc.returncode is None:
            await w.kill9()
