"""The document's "Policies" section (seed ``004``) on the real bus: retry filters, breaker settings and
the dead-letter queue handle, with only the prefix as written."""

from __future__ import annotations

import logging

import pytest

from pywats_events import BaseHandler, Event, EventBus, MemoryStore
from pywats_events.policies import CircuitBreaker, DeadLetterQueue, ErrorPolicy, RetryPolicy


class ValidationError(Exception):
    """Stands for the document's ValidationError (any exception class the user names)."""


def test_retry_policy_in_the_documents_words_maps_onto_the_core_policy() -> None:
    policy = RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=60.0, exponential_base=2.0, jitter=True)
    policy.retry_on(ConnectionError, TimeoutError)
    policy.no_retry_on(ValidationError)
    core = policy.policy
    assert (core.max_attempts, core.initial_delay, core.max_delay, core.exponential_base) == (4, 1.0, 60.0, 2.0)
    assert core.jitter == 0.5
    assert policy.is_retryable(ConnectionError()) and policy.is_retryable(TimeoutError())
    assert not policy.is_retryable(ValueError())  # not in retry_on
    assert not policy.is_retryable(ValidationError())
    assert RetryPolicy(jitter=False).policy.jitter == 0
    with pytest.raises(TypeError, match="give exception classes"):
        policy.retry_on("ConnectionError")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_error_policy_example_on_a_running_bus(caplog: pytest.LogCaptureFixture) -> None:
    dlq = DeadLetterQueue(max_size=2)
    cb = CircuitBreaker(failure_threshold=5, reset_timeout=30.0)
    policy = ErrorPolicy(dead_letter_queue=dlq, circuit_breaker=cb)
    retry = RetryPolicy(max_retries=2, initial_delay=0.01, jitter=False).retry_on(ConnectionError)
    calls: list[str] = []

    class Uploader(BaseHandler):
        event_types = ("test.result",)

        async def handle(self, event: Event) -> None:
            calls.append(event.id)
            if event.payload.get("kind") == "validation":
                raise ValidationError("bad unit id")
            raise ConnectionError("WATS unreachable")

    bus = EventBus(MemoryStore(), retry=retry, error_policy=policy)  # type: ignore[arg-type]
    bus.subscribe(Uploader())
    assert bus.breakers["Uploader"].policy is cb
    bus.start()
    try:
        conn = Event(type="test.result", source="ict", payload={"kind": "connection"})
        bad = Event(type="test.result", source="ict", payload={"kind": "validation"})
        bus.publish(conn)
        bus.publish(bad)
        assert calls.count(conn.id) == 3  # retried twice (max_retries=2)
        assert calls.count(bad.id) == 1  # ValidationError is not in retry_on: not retried
        caplog.set_level(logging.WARNING)
        entries = dlq.get_entries()
        assert {(entry.event.id, entry.error) for entry in entries if entry.event} == {
            (conn.id, "ConnectionError: WATS unreachable"), (bad.id, "ValidationError: bad unit id"),
        }
        bus.publish(Event(type="test.result", source="ict", payload={"kind": "validation"}))
        assert len(dlq.get_entries()) == 2 and dlq.over_capacity  # max_size caps the listing; nothing deleted
        assert "more than max_size 2" in caplog.text
    finally:
        bus.stop()


def test_an_unbound_queue_says_how_to_bind_it() -> None:
    with pytest.raises(RuntimeError, match="error_policy=ErrorPolicy"):
        DeadLetterQueue().get_entries()
