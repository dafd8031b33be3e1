"""Hung sync handlers (issue 9 defect 2): own bounded threads per handler, time limits that count as failed
attempts, readiness red while a lane is stuck, stop bounded even with threads hung."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from pywats_events import BreakerPolicy, Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.config import build_bus, load_settings
from pywats_events.handlers import FunctionHandler
from pywats_events.store import DeadLetterReason
from tests.waiting import wait_for


async def test_hung_sync_handler_takes_only_its_own_threads_and_times_out_into_the_dead_letter_queue() -> None:
    store = MemoryStore()
    bus = EventBus(store, retry=RetryPolicy(max_attempts=2, initial_delay=0.01, jitter=0), concurrency=8)
    release = threading.Event()
    hung_calls: list[str] = []
    sync_ok: list[str] = []
    async_ok: list[str] = []

    @bus.subscribe("line.hang", timeout=0.3, concurrency=2, breaker=BreakerPolicy(enabled=False))
    def hangs(event: Event) -> None:
        hung_calls.append(event.id)
        release.wait(30)

    @bus.subscribe("line.ok")
    def quick_sync(event: Event) -> None:
        sync_ok.append(event.id)

    @bus.subscribe("line.ok")
    async def quick_async(event: Event) -> None:
        async_ok.append(event.id)

    try:
        async with bus:
            # Far more hung calls than the default executor has threads (min(32, cpus + 4)).
            # Lanes are chosen by hash(source) % lanes (per-source order), and str hashes change per
            # process: the hung events get sources in lanes 0-3 and the quick ones in lanes 4-7, so what is
            # measured is the threads, not a quick event queued behind a hung one in its own lane.
            hung_sources = [s for s in (f"h{i}" for i in range(1000)) if hash(s) % 8 < 4][:12]
            ok_sources = [s for s in (f"o{i}" for i in range(1000)) if hash(s) % 8 >= 4][:20]
            hung = [await bus.submit([Event(type="line.hang", source=src)]) for src in hung_sources]
            await asyncio.sleep(0.1)
            t0 = time.monotonic()
            oks = [
                await bus.submit([Event(id=f"ok-{i}", type="line.ok", source=src)]) for i, src in enumerate(ok_sources)
            ]
            await asyncio.wait_for(asyncio.gather(*oks), 5)
            ok_time = time.monotonic() - t0
            results = await asyncio.wait_for(asyncio.gather(*hung), 20)
            threads = [t.name for t in threading.enumerate() if t.name.startswith("pywats-sync-hangs-")]
            release.set()
    finally:
        release.set()
    assert set(sync_ok) == set(async_ok) == {f"ok-{i}" for i in range(20)}
    assert ok_time < 3, f"other handlers waited {ok_time:.1f}s behind the hung one"
    assert all(r.dead_lettered == 1 for r in results)
    entries = await store.list_dead_letters(handler="hangs", limit=100)
    assert len(entries) == 12
    assert {e.reason for e in entries} == {DeadLetterReason.TIMEOUT}
    assert all(e.attempts == 2 and e.error_type == "TimeoutError" for e in entries)
    assert len(threads) == 2, threads  # the handler's limit, not one thread per call
    # Only calls that got a thread ran: a call whose caller gave up while it waited is dropped, never late.
    assert len(hung_calls) <= 2


async def test_a_call_abandoned_while_waiting_for_a_thread_never_runs_later() -> None:
    release = threading.Event()
    ran: list[str] = []

    def slow(event: Event) -> None:
        ran.append(event.id)
        release.wait(10)

    handler = FunctionHandler(slow)
    handler.concurrency = 1
    first = asyncio.ensure_future(handler.handle(Event(id="first", type="x")))
    await wait_for(lambda: ran == ["first"])
    with_timeout = asyncio.ensure_future(asyncio.wait_for(handler.handle(Event(id="second", type="x")), 0.1))
    try:
        await with_timeout
        raise AssertionError("the second call should have timed out waiting for the only thread")
    except TimeoutError:
        pass
    release.set()
    await asyncio.wait_for(first, 5)
    third = await asyncio.wait_for(handler.handle(Event(id="third", type="x")), 5)
    assert third is None
    assert ran == ["first", "third"]


async def test_readiness_turns_red_while_a_lane_is_stuck_and_green_after() -> None:
    bus = EventBus(stuck_after=0.2)
    gate = asyncio.Event()

    @bus.subscribe("x.slow")
    async def slow(event: Event) -> None:
        await gate.wait()

    async with bus:
        assert bus.readiness()[0]
        fut = await bus.submit([Event(id="slow-1", type="x.slow")])
        await asyncio.sleep(0.35)
        ready, details = bus.readiness()
        assert not ready
        assert details["stuck_lanes"] and details["stuck_lanes"][0]["event_id"] == "slow-1"
        assert any("stuck" in r and "slow-1" in r for r in details["not_ready"])
        gate.set()
        await asyncio.wait_for(fut, 5)
        assert bus.readiness()[0]


async def test_stop_returns_within_the_drain_timeout_and_grace_while_sync_threads_hang() -> None:
    bus = EventBus(drain_timeout=0.5)
    release = threading.Event()

    @bus.subscribe("x.hang")
    def hangs(event: Event) -> None:
        release.wait(30)

    try:
        await bus.start()
        futures = [await bus.submit([Event(type="x.hang", source=f"s{i}")]) for i in range(6)]
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        await asyncio.wait_for(bus.stop(), 15)
        took = time.monotonic() - t0
    finally:
        release.set()
    assert 0.4 < took < 0.5 + 2.5, f"stop took {took:.2f}s"
    assert not any(f.done() and not f.exception() for f in futures if f.done())  # nothing settled as done


def test_handler_timeout_and_concurrency_come_from_the_configuration_file(tmp_path: Path) -> None:
    (tmp_path / "my_handlers.py").write_text("def work(event):\n    return None\n")
    config = tmp_path / "pywats-events.toml"
    config.write_text(
        "[bus]\nhandler_timeout = 12.5\n"
        '[[handlers]]\nkind = "python"\ntarget = "my_handlers:work"\ntimeout = 3\nconcurrency = 2\n'
        '[[handlers]]\nkind = "event-store"\n'
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        bus = build_bus(load_settings(config), with_transports=False)
    finally:
        sys.path.remove(str(tmp_path))
    work = bus.registry.get("work")
    assert work is not None and work.handler.timeout == 3 and work.handler.concurrency == 2
    store = bus.registry.get("event-store")
    assert store is not None and store.handler.timeout is None
    assert bus.handler_timeout == 12.5
