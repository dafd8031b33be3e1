"""Store and forward as a generic bus feature: a handler that raises ``SinkUnavailableError`` gets its
deliveries parked (not failed) once its retries run out, and redelivered by the breaker's probe."""

from __future__ import annotations

from pywats_events import BaseHandler, BreakerPolicy, Event, EventBus, RetryPolicy, SinkUnavailableError
from pywats_events.store import DeadLetterReason
from tests.waiting import wait_for


class Sink(BaseHandler):
    """A sink that is down until ``up`` is set; counts calls."""

    name = "sink"
    retry = RetryPolicy(max_attempts=3, initial_delay=0.01, jitter=0)
    breaker = BreakerPolicy(failure_threshold=10, reset_timeout=0.2)

    def __init__(self, retry_first: bool = True) -> None:
        super().__init__()
        self.up = False
        self.calls = 0
        self.done: list[str] = []
        self.retry_first = retry_first

    async def handle(self, event: Event) -> None:
        self.calls += 1
        if not self.up:
            raise SinkUnavailableError("sink refused the connection", retry=self.retry_first)
        self.done.append(event.id)


def events(n: int) -> list[Event]:
    return [Event(type="test.result", source="st", payload={"i": i}) for i in range(n)]


async def test_exhausted_retries_park_instead_of_failing_and_the_probe_delivers_oldest_first() -> None:
    sink = Sink()
    batch = events(3)
    async with EventBus(emit_system_events=False) as bus:
        bus.register(sink)
        for e in batch:
            assert (await bus.publish(e)).dead_lettered == 1
        assert sink.calls == 3  # the first delivery's retries; then the open breaker parks without calls
        parked = await bus.store.list_dead_letters()
        assert [p.reason for p in parked] == [DeadLetterReason.CIRCUIT_OPEN] * 3
        assert bus.breakers["sink"].state.value == "open"
        sink.up = True
        await wait_for(lambda: len(sink.done) == 3, timeout=5)
        assert sink.done == [e.id for e in batch]
        await wait_for(lambda: bus.breakers["sink"].state.value == "closed", timeout=5)


async def test_retry_false_parks_at_once() -> None:
    sink = Sink(retry_first=False)
    async with EventBus(emit_system_events=False) as bus:
        bus.register(sink)
        assert (await bus.publish(*events(1))).dead_lettered == 1
        assert sink.calls == 1


async def test_without_a_breaker_nothing_could_redeliver_so_it_fails() -> None:
    sink = Sink()
    sink.breaker = BreakerPolicy(enabled=False)
    async with EventBus(emit_system_events=False) as bus:
        bus.register(sink)
        await bus.publish(*events(1))
        (entry,) = await bus.store.list_dead_letters()
        assert entry.reason == DeadLetterReason.FAILED


async def test_a_handler_health_problem_turns_readiness_red() -> None:
    class Unhealthy(Sink):
        name = "unhealthy"

        def health(self) -> str | None:
            return None if self.up else "credentials refused"

    h = Unhealthy()
    async with EventBus(emit_system_events=False) as bus:
        bus.register(h)
        ready, details = bus.readiness()
        assert not ready and "handler unhealthy: credentials refused" in details["not_ready"]
        h.up = True
        assert bus.readiness()[0]
