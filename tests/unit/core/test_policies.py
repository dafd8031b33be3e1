"""Retries with backoff, unrecoverable errors, the circuit breaker and the dead-letter queue, per delivery."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from pywats_events import (
    BaseHandler,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    DeadLetterReason,
    Event,
    EventBus,
    MockTransport,
    RetryPolicy,
    UnrecoverableError,
)
from pywats_events.sql_store import open_store
from tests.waiting import wait_for


def ev(n: int = 0, source: str = "st-1") -> Event:
    return Event(type="test.result", source=source, payload={"n": n})


# -- retry ----------------------------------------------------------------------------------------
def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    p = RetryPolicy(max_attempts=6, initial_delay=0.1, max_delay=0.5, exponential_base=2, jitter=0)
    assert [round(p.delay_after(n), 3) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = RetryPolicy(initial_delay=0.1, jitter=0.05)
    assert all(0.1 <= jittered.delay_after(1) <= 0.15 for _ in range(50))


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="exponential_base"):
        RetryPolicy(exponential_base=0.5)


async def test_retries_with_backoff_timing_then_success() -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=4, initial_delay=0.05, exponential_base=2, jitter=0))
    times: list[float] = []

    @bus.subscribe("test.*")
    async def flaky(e: Event) -> None:
        times.append(time.monotonic())
        if len(times) < 3:
            raise ConnectionError("database busy")

    async with bus:
        result = await bus.publish(ev())
    assert result.handled == 1 and result.dead_lettered == 0
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.05 - 0.005 and gaps[1] >= 0.10 - 0.005  # 0.05 s, then 0.1 s
    assert gaps[1] > gaps[0]


async def test_exhausted_retries_dead_letter_the_delivery_with_everything_needed() -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0))

    @bus.subscribe("test.*", name="writer")
    async def writer(e: Event) -> None:
        raise RuntimeError(f"disk full on event {e.payload['n']}")

    event = ev(7)
    async with bus:
        result = await bus.publish(event)
        entries = await bus.dead_letters.list()
    assert result.dead_lettered == 1 and result.handled == 0
    (entry,) = entries
    assert entry.reason == DeadLetterReason.FAILED
    assert entry.handler == "writer"
    assert entry.event == event
    assert entry.attempts == 3
    assert entry.error_type == "RuntimeError" and entry.error_message == "disk full on event 7"
    assert "disk full" in entry.traceback and "Traceback" in entry.traceback
    assert entry.first_failure_at <= entry.last_failure_at


async def test_unrecoverable_errors_skip_retries() -> None:
    class Bad(ValueError):
        pass

    bus = EventBus(retry=RetryPolicy(max_attempts=5, initial_delay=0.01, no_retry_on=(Bad,)))
    calls = {"marked": 0, "configured": 0}

    @bus.subscribe("test.*", name="marked")
    async def marked(e: Event) -> None:
        calls["marked"] += 1
        raise UnrecoverableError("unit id unknown to MES")

    @bus.subscribe("test.*", name="configured")
    async def configured(e: Event) -> None:
        calls["configured"] += 1
        raise Bad("bad payload")

    async with bus:
        result = await bus.publish(ev())
        entries = await bus.dead_letters.list()
    assert calls == {"marked": 1, "configured": 1}
    assert result.dead_lettered == 2
    assert {e.reason for e in entries} == {DeadLetterReason.UNRECOVERABLE}
    assert all(e.attempts == 1 for e in entries)


async def test_retry_on_limits_what_is_retried() -> None:
    policy = RetryPolicy(max_attempts=5, initial_delay=0.01, retry_on=(ConnectionError,))
    bus = EventBus(retry=policy)
    calls = 0

    @bus.subscribe("test.*")
    async def h(e: Event) -> None:
        nonlocal calls
        calls += 1
        raise KeyError("missing field")

    async with bus:
        result = await bus.publish(ev())
    assert calls == 1 and result.dead_lettered == 1


async def test_a_failing_handler_never_makes_a_successful_one_run_again() -> None:
    bus = EventBus(
        retry=RetryPolicy(max_attempts=4, initial_delay=0.01, jitter=0),
        breaker=BreakerPolicy(failure_threshold=100),
    )
    calls = {"good": 0, "bad": 0}

    @bus.subscribe("test.*", name="good", priority=10)
    async def good(e: Event) -> None:
        calls["good"] += 1

    @bus.subscribe("test.*", name="bad")
    async def bad(e: Event) -> None:
        calls["bad"] += 1
        raise RuntimeError("nope")

    mock = MockTransport()
    bus.add_transport(mock)
    event = ev()
    async with bus:
        result = await mock.inject(event)
        # the broker redelivers the same message (e.g. after a crash): good stays done
        again = await mock.inject(event, redelivered=True)
        entry = (await bus.dead_letters.list())[0]
        # replaying the dead letter calls only the handler that failed
        assert await bus.dead_letters.replay(entry.id) is False
    assert (result.handled, result.dead_lettered) == (1, 1)
    assert again.skipped == 1  # good skipped; bad runs again (its delivery never succeeded)
    assert calls["good"] == 1
    assert calls["bad"] == 4 + 4 + 4


async def test_handler_timeout_counts_as_a_failed_attempt() -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=2, initial_delay=0.01))

    class Slow(BaseHandler):
        event_types = ("test.*",)
        timeout = 0.05

        async def handle(self, event: Event) -> None:
            await asyncio.sleep(1)

    bus.register(Slow())
    async with bus:
        start = time.monotonic()
        await bus.publish(ev())
        entry = (await bus.dead_letters.list())[0]
    assert time.monotonic() - start < 0.5
    assert entry.reason == DeadLetterReason.TIMEOUT and entry.attempts == 2


# -- circuit breaker --------------------------------------------------------------------------------
def test_breaker_state_machine() -> None:
    now = [0.0]
    changes: list[tuple[str, str]] = []
    b = CircuitBreaker(
        "h",
        BreakerPolicy(failure_threshold=3, reset_timeout=10, half_open_max_calls=1, success_threshold=2),
        on_change=lambda br, old, new: changes.append((old.value, new.value)),
        clock=lambda: now[0],
    )
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_success()  # resets the consecutive count
    for _ in range(3):
        b.record_failure()
    assert b.state is BreakerState.OPEN and not b.allow()
    now[0] = 9.9
    assert not b.allow()
    now[0] = 10.0
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow() and not b.allow()  # one trial call at a time
    b.record_failure()
    assert b.state is BreakerState.OPEN  # a failed trial opens again
    now[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.HALF_OPEN  # needs two successes
    assert b.allow()
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert changes == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


async def test_breaker_opens_parks_half_opens_closes_and_replays_parked_deliveries(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_store(f"sqlite:///{tmp_path}/breaker.db")
    bus = EventBus(
        store,
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerPolicy(failure_threshold=3, reset_timeout=0.3, success_threshold=1),
    )
    healthy = False
    calls: list[int] = []
    delivered: list[int] = []

    @bus.subscribe("test.*", name="mes")
    async def mes(e: Event) -> None:
        calls.append(e.payload["n"])
        if not healthy:
            raise ConnectionError("MES unreachable")
        delivered.append(e.payload["n"])

    mock = MockTransport()
    bus.add_transport(mock)
    async with bus:
        results = [await mock.inject(ev(n)) for n in range(10)]
        assert bus.breakers["mes"].state is BreakerState.OPEN
        assert calls == [0, 1, 2]  # the open circuit stopped calling the handler
        parked = await bus.dead_letters.list(reason=DeadLetterReason.CIRCUIT_OPEN)
        assert len(parked) == 7
        assert all(r.dead_lettered == 1 for r in results)  # every message settled: nothing left unacked
        healthy = True
        # after the reset timeout the breaker half-opens, a parked delivery is the trial call, the
        # circuit closes and the rest of the parked deliveries are replayed
        await wait_for(lambda: len(delivered) == 7, timeout=5)
        assert bus.breakers["mes"].state is BreakerState.CLOSED
        assert sorted(delivered) == list(range(3, 10))
        assert await bus.dead_letters.count(reason=DeadLetterReason.CIRCUIT_OPEN) == 0
        failed = await bus.dead_letters.list(reason=DeadLetterReason.FAILED)
        assert sorted(e.event.payload["n"] for e in failed if e.event) == [0, 1, 2]
        report = await bus.dead_letters.replay_all(reason=DeadLetterReason.FAILED)
        assert (report.replayed, report.succeeded) == (3, 3)
        assert await bus.dead_letters.count() == 0
        assert sorted(delivered) == list(range(10))


async def test_breaker_state_changes_are_reported_in_metrics_and_can_be_forced() -> None:
    bus = EventBus(breaker=BreakerPolicy(failure_threshold=1, reset_timeout=60))

    @bus.subscribe("test.*", name="h")
    async def h(e: Event) -> None:
        pass

    async with bus:
        bus.force_breaker("h", "open")
        result = await bus.publish(ev())
        assert result.dead_lettered == 1
        assert 'pywats_breaker_state{handler="h"} 2.0' in bus.metrics.render().decode()
        bus.force_breaker("h", "closed")
        await wait_for(lambda: bus.metrics.handled.get("h", 0) == 1)  # parked delivery replayed
        with pytest.raises(ValueError):
            bus.force_breaker("h", "half_open")
    assert bus.breakers["h"].state is BreakerState.CLOSED


# -- dead-letter queue ----------------------------------------------------------------------------
async def test_dead_letters_survive_a_restart_and_can_be_replayed_and_purged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/dlq.db"
    ok = False

    def make_bus() -> EventBus:
        bus = EventBus(open_store(url), retry=RetryPolicy(max_attempts=1))

        @bus.subscribe("test.*", name="sink")
        async def sink(e: Event) -> None:
            if not ok:
                raise RuntimeError("sink down")

        return bus

    bus = make_bus()
    async with bus:
        for n in range(3):
            await bus.publish(ev(n))
        mock = MockTransport()
        bus.add_transport(mock)
    bus = make_bus()
    async with bus:
        entries = await bus.dead_letters.list(handler="sink")
        assert len(entries) == 3
        assert await bus.dead_letters.purge([entries[0].id]) == 1
        ok = True
        assert await bus.dead_letters.replay(entries[1].id) is True
        assert await bus.dead_letters.count() == 1
        with pytest.raises(ValueError):
            await bus.dead_letters.purge()
        assert await bus.dead_letters.purge(everything=True) == 1


async def test_undecodable_input_is_kept_whole_and_replayable_after_a_fix() -> None:
    bus = EventBus()
    seen: list[str] = []

    @bus.subscribe("test.*")
    async def h(e: Event) -> None:
        seen.append(e.id)

    mock = MockTransport()
    bus.add_transport(mock)
    body = b'{"type": "test.result", "source": "st-1", "payload": {"n": 1}, "severity": "loud"}'
    async with bus:
        result = await mock.inject_raw(body, origin="station-7/result.json")
        (entry,) = await bus.dead_letters.list()
        assert result.dead_lettered == 1
        assert entry.reason == DeadLetterReason.DECODE_ERROR
        assert entry.raw_body == body and entry.origin == "station-7/result.json"
        assert "severity" in entry.error_message
        # bad bytes stay bad: replay fails and keeps the entry
        assert await bus.dead_letters.replay(entry.id) is False
        # after the sender is fixed, an operator can fix and resubmit; here: the fixed bytes decode
        entry.raw_body = body.replace(b'"loud"', b'"warning"')
        await bus.store.update_dead_letter(entry)
        assert await bus.dead_letters.replay(entry.id) is True
        assert len(seen) == 1 and await bus.dead_letters.count() == 0


async def test_dead_letters_emit_a_system_event() -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=1))
    notices: list[Event] = []

    @bus.subscribe("test.*")
    async def broken(e: Event) -> None:
        raise RuntimeError("x")

    @bus.subscribe("system.dead_letter")
    async def alert(e: Event) -> None:
        notices.append(e)

    async with bus:
        event = ev()
        await bus.publish(event)
        await wait_for(lambda: len(notices) == 1)
    assert notices[0].causation_id == event.id
    assert notices[0].payload["handler"] == "broken" and notices[0].payload["reason"] == "failed"
