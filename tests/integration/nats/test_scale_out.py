"""Scale-out: three ``pywats-events run`` processes share one JetStream durable consumer and one PostgreSQL
store. JetStream hands each message to one of them; every message is handled exactly once per handler, and
every process takes a share."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery
from tests.integration.nats.conftest import Run, consumer_settled
from tests.integration.nats.service import kill9, per_handler, read_records, start_service, stop, write_service
from tests.pg import PostgresUnavailable, fresh_database, require_postgres

pytestmark = [pytest.mark.services, pytest.mark.slow]

N = 3000
WORKERS = 3


async def _wait_pulling(run: Run, count: int, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """Until ``count`` pull requests wait at the consumer (each process fetches once it is consuming)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = await run.consumer_info()
            if info.num_waiting >= count:
                return
        except Exception:
            pass  # the first process has not made the consumer yet
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"a service exited with {p.returncode} before consuming")
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} processes did not start pulling within {timeout}s")
        await asyncio.sleep(0.1)


async def _completed(url: str, ids: list[str]) -> dict[str, set[str]]:
    async with open_store(url) as store:
        return await store.completed_handlers(ids)


async def test_three_processes_on_one_durable_consumer_handle_every_message_once(run: Run, tmp_path: Path) -> None:
    try:
        async with fresh_database() as url:
            await run.create_stream()
            record = tmp_path / "handled.txt"
            procs: list[subprocess.Popen[bytes]] = []
            try:
                for i in range(WORKERS):
                    folder = tmp_path / f"w{i}"
                    folder.mkdir()
                    write_service(folder, url, run.options(max_inflight=64, fetch_batch=16, ack_wait=10))
                    procs.append(start_service(folder, record, "service.log"))
                await _wait_pulling(run, WORKERS, procs)
                await run.publish([(f"results.ict-{i % 8}", json.dumps({"seq": i}).encode()) for i in range(N)])
                deadline = time.monotonic() + 180
                while not all(len(per_handler(read_records(record), h)) >= N for h in ("h1", "h2")):
                    assert time.monotonic() < deadline, "not every message was handled in time"
                    await asyncio.sleep(0.2)
                info = await consumer_settled(run)
            finally:
                codes = [stop(p) for p in procs if p.poll() is None]
                for p in procs:
                    kill9(p)
            assert codes == [0] * WORKERS
            records = read_records(record)
            shares = [len({seq for h, seq, pid in records if h == "h1" and pid == p.pid}) for p in procs]
            async with open_store(url) as store:
                rows = await store.query_events(EventQuery(type_pattern="test.*", limit=100_000))
            stored = [r.event.id for r in rows]
            done = await _completed(url, stored)
    except PostgresUnavailable as exc:
        require_postgres(str(exc))
        return
    for handler in ("h1", "h2"):
        counts = per_handler(records, handler)
        assert set(counts) == set(range(N))
        assert max(counts.values()) == 1, f"{handler}: {sum(n > 1 for n in counts.values())} handled twice"
    assert all(s > 0 for s in shares), f"every process took a share: {shares}"
    assert sum(shares) == N
    assert len(stored) == len(set(stored)) == N  # the shared event store holds each event once
    assert len(done) == N and all(v >= {"h1", "h2", "event-store"} for v in done.values())
    assert info.num_ack_pending == 0 and info.num_pending == 0
