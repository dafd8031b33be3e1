"""The delivery layer: one event for one handler, through idempotency, breaker, timeout and retry.

This module is the one place that decides what became of a delivery (``DeliveryOutcome``) and keeps the
idempotency records: a redelivered event skips the handlers recorded as finished (``unfinished``).

- ``HANDLED``: the handler returned. Its idempotency record (and any rows it asked to store, see
  ``StoreWrite``) commit in one write per event, so a redelivered copy of the message skips it.
- ``DEFERRED``: the handler returned an awaitable (a group-commit future): it counts as handled, and the
  message settles only once the awaitable resolved and the idempotency record is written after it.
- ``PARKED``: the handler's circuit is OPEN; the delivery waits in the dead-letter queue with reason
  ``circuit_open`` and is replayed automatically when the circuit closes.
- ``DEAD_LETTERED``: every attempt failed (or the error is unrecoverable, or every attempt ran out of
  time); the entry keeps the event, the exception, its traceback and the attempt count.

What a handler returns: ``None``; an awaitable (deferred); a ``StoreWrite``. Any other value (``True``,
a dict) is ignored, with one WARNING per handler: it never leaves a message unsettled.

A call that exceeds the handler's ``timeout`` (or the bus's ``handler_timeout``) counts as a failed attempt
(``TimeoutError``): it is retried like any failure and dead-lettered with reason ``timeout`` when the
attempts run out.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from . import tracing as _tracing
from .breaker import BreakerState, CircuitBreaker
from .dead_letter import entry_for_failure, entry_for_refused
from .errors import BusError, CircuitOpenError, SinkUnavailableError, StoreRefusedError
from .event import Event
from .lanes import Tracker
from .metrics import BusMetrics
from .registry import HandlerRegistry, Subscription
from .retry import RetryPolicy
from .store import COMPLETED, DeadLetterEntry, DeadLetterReason, Store, StoreWrite
from .transport import SettleResult

__all__ = ["DeliveryLayer", "DeliveryOutcome", "DeliveryResult"]

log = logging.getLogger(__name__)


class DeliveryOutcome(StrEnum):
    """What became of one (event, handler) delivery (see the module docstring)."""

    HANDLED = "handled"
    DEFERRED = "deferred"
    PARKED = "parked"
    DEAD_LETTERED = "dead_lettered"


class DeliveryResult:
    """The outcome of one delivery and what goes with it.

    Attributes:
        outcome: the ``DeliveryOutcome``.
        events: rows the handler asked to store with its idempotency record (``StoreWrite``).
        deferred: the awaitable of a ``DEFERRED`` delivery.
        reason: ``DeadLetterReason`` of a parked or dead-lettered delivery.
        error: the last exception of a parked or dead-lettered delivery.
        attempts: handler calls made (0 when parked before any call).
        first_failure_at: UTC time of the first failed attempt.
    """

    __slots__ = ("attempts", "deferred", "error", "events", "first_failure_at", "outcome", "reason")

    def __init__(
        self,
        outcome: DeliveryOutcome,
        *,
        events: Sequence[Event] = (),
        deferred: Awaitable[Any] | None = None,
        reason: str = "",
        error: BaseException | None = None,
        attempts: int = 0,
        first_failure_at: datetime | None = None,
    ) -> None:
        self.outcome = outcome
        self.events = events
        self.deferred = deferred
        self.reason = reason
        self.error = error
        self.attempts = attempts
        self.first_failure_at = first_failure_at

    def __repr__(self) -> str:
        return f"DeliveryResult({self.outcome.value}, reason={self.reason!r}, attempts={self.attempts})"


_HANDLED = DeliveryOutcome.HANDLED
_DEFERRED = DeliveryOutcome.DEFERRED
_PARKED = DeliveryOutcome.PARKED
_CLOSED = BreakerState.CLOSED
#: The common result, shared (handled, nothing to store).
HANDLED = DeliveryResult(_HANDLED)


class DeliveryLayer:
    """Runs deliveries for a bus (``bus.delivery``).

    Args:
        store: where idempotency records, stored rows and dead letters go.
        registry: the bus's handlers (replay looks handlers up by name).
        breakers: the handlers' circuit breakers by handler name (shared with the bus).
        metrics: the bus's counters.
        retry: the default retry policy (a handler's own ``retry`` wins).
        idempotency: write idempotency records.
        handler_timeout: default seconds one call may take (``None``: no limit; a handler's own
            ``timeout`` wins).
        on_dead_letter: told of every entry written for a delivery (logging, ``system.dead_letter``).
        on_attempt_failed: told of every failed attempt as ``(event, handler name, attempt number,
            exception)`` (``system.handler_error``); only failures pay for it.
    """

    def __init__(
        self,
        store: Store,
        registry: HandlerRegistry,
        breakers: dict[str, CircuitBreaker],
        metrics: BusMetrics,
        *,
        retry: RetryPolicy,
        idempotency: bool = True,
        handler_timeout: float | None = None,
        on_dead_letter: Callable[[DeadLetterEntry], None] | None = None,
        on_attempt_failed: Callable[[Event, str, int, BaseException], None] | None = None,
    ) -> None:
        if handler_timeout is not None and handler_timeout <= 0:
            raise ValueError(f"handler_timeout must be > 0 seconds or None, got {handler_timeout}")
        self.store = store
        self.registry = registry
        self.breakers = breakers
        self.metrics = metrics
        self.retry = retry
        self.idempotency = idempotency
        self.handler_timeout = handler_timeout
        self._on_dead_letter = on_dead_letter
        self.on_attempt_failed = on_attempt_failed
        self._warned_returns: set[str] = set()

    # -- one delivery ----------------------------------------------------------------------------
    async def deliver(self, event: Event, sub: Subscription) -> DeliveryResult:
        """Run one delivery of ``event`` to ``sub``'s handler: breaker, timeout, retry, metrics.

        Never raises for handler failures (they become the result); ``CancelledError`` passes through.
        """
        name = sub.name
        breaker = self.breakers.get(name)
        if breaker is None:
            return HANDLED  # unregistered meanwhile: nothing to deliver to
        if not breaker.allow():
            return DeliveryResult(
                _PARKED,
                reason=DeadLetterReason.CIRCUIT_OPEN,
                error=CircuitOpenError(f"circuit of handler {name!r} is {breaker.state.value}"),
                first_failure_at=datetime.now(UTC),
            )
        timeout = sub.handler.timeout
        if timeout is None:
            timeout = self.handler_timeout
        t0 = time.perf_counter()
        try:
            if timeout is None:
                out = await sub.call(event)
            else:
                async with asyncio.timeout(timeout):
                    out = await sub.call(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return await self._first_failed(event, sub, breaker, exc, timeout)
        return self._succeeded(name, breaker, t0, out)

    def _succeeded(self, name: str, breaker: CircuitBreaker, t0: float, out: Any) -> DeliveryResult:
        """The handler of ``name`` returned ``out`` (started at ``t0``, perf_counter seconds)."""
        breaker.record_success()
        self.metrics.observe_handled(name, time.perf_counter() - t0)
        return HANDLED if out is None else self._returned(name, out)

    async def _first_failed(
        self, event: Event, sub: Subscription, breaker: CircuitBreaker, exc: Exception, timeout: float | None
    ) -> DeliveryResult:
        breaker.record_failure()
        if _tracing.active:
            _tracing.attempt_failed(1, exc)
        if self.on_attempt_failed is not None:
            self.on_attempt_failed(event, sub.name, 1, exc)
        return await self._retry(event, sub, breaker, exc, timeout)

    def _returned(self, name: str, value: Any) -> DeliveryResult:
        if type(value) is StoreWrite:
            return DeliveryResult(_HANDLED, events=value.events)
        if inspect.isawaitable(value):
            return DeliveryResult(_DEFERRED, deferred=value)
        if name not in self._warned_returns:
            self._warned_returns.add(name)
            log.warning(
                "handler %s returned %s (%.80r); only None, an awaitable (deferred completion) or a StoreWrite "
                "mean something: the value is ignored and the delivery counts as handled (warned once)",
                name,
                type(value).__name__,
                value,
            )
        return HANDLED

    async def _retry(
        self,
        event: Event,
        sub: Subscription,
        breaker: CircuitBreaker,
        first: Exception,
        timeout: float | None,
    ) -> DeliveryResult:
        name = sub.name
        first_at = datetime.now(UTC)
        policy = sub.handler.retry or self.retry
        if isinstance(first, SinkUnavailableError) and (not first.retry or policy.max_attempts == 1):
            return self._park(breaker, first, 1, first_at)
        if not policy.is_retryable(first):
            return self._dead(DeadLetterReason.UNRECOVERABLE, first, 1, first_at)
        if policy.max_attempts == 1:
            return self._dead(_reason_for(first), first, 1, first_at)
        attempts = 1
        log.info("handler %s failed on event %s (%s: %s); retrying", name, event.id, type(first).__name__, first)

        async def attempt() -> Any:
            nonlocal attempts
            if not breaker.allow():
                raise CircuitOpenError(f"circuit of handler {name!r} opened during retries")
            attempts += 1
            self.metrics.count_retry(name)
            t0 = time.perf_counter()
            try:
                if timeout is None:
                    out = await sub.call(event)
                else:
                    async with asyncio.timeout(timeout):
                        out = await sub.call(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                breaker.record_failure()
                if _tracing.active:
                    _tracing.attempt_failed(attempts, exc)
                if self.on_attempt_failed is not None:
                    self.on_attempt_failed(event, name, attempts, exc)
                raise
            breaker.record_success()
            self.metrics.observe_handled(name, time.perf_counter() - t0)
            return out

        try:
            out = await policy.retry_after_failure(attempt)
        except asyncio.CancelledError:
            raise
        except CircuitOpenError as exc:
            return DeliveryResult(
                _PARKED, reason=DeadLetterReason.CIRCUIT_OPEN, error=exc, attempts=attempts, first_failure_at=first_at
            )
        except SinkUnavailableError as exc:
            return self._park(breaker, exc, attempts, first_at)
        except Exception as exc:
            reason = _reason_for(exc) if policy.is_retryable(exc) else DeadLetterReason.UNRECOVERABLE
            return self._dead(reason, exc, attempts, first_at)
        return HANDLED if out is None else self._returned(name, out)

    @staticmethod
    def _park(breaker: CircuitBreaker, exc: Exception, attempts: int, first_at: datetime) -> DeliveryResult:
        """The sink is unavailable (``SinkUnavailableError``): park the delivery and open the breaker, whose
        probe redelivers the parked deliveries once the sink answers. Without a breaker nothing would ever
        redeliver, so then the delivery fails as any other."""
        if not breaker.policy.enabled:
            return DeliveryResult(
                DeliveryOutcome.DEAD_LETTERED,
                reason=DeadLetterReason.FAILED,
                error=exc,
                attempts=attempts,
                first_failure_at=first_at,
            )
        breaker.trip()
        return DeliveryResult(
            _PARKED, reason=DeadLetterReason.CIRCUIT_OPEN, error=exc, attempts=attempts, first_failure_at=first_at
        )

    @staticmethod
    def _dead(reason: str, exc: BaseException, attempts: int, first_at: datetime) -> DeliveryResult:
        return DeliveryResult(
            DeliveryOutcome.DEAD_LETTERED, reason=reason, error=exc, attempts=attempts, first_failure_at=first_at
        )

    # -- idempotency -------------------------------------------------------------------------------
    def unfinished(
        self, subs: Sequence[Subscription], finished: set[str], result: SettleResult
    ) -> Sequence[Subscription]:
        """The subscriptions of a redelivered event whose handlers have no idempotency record yet
        (``finished``: handler names recorded for the event id); the others count as skipped."""
        kept = [s for s in subs if s.name not in finished]
        result.skipped += len(subs) - len(kept)
        for s in subs:
            if s.name in finished:
                self.metrics.count_skipped(s.name)
        return kept

    # -- all deliveries of one event (what a lane runs) ------------------------------------------
    async def run(self, event: Event, subs: Sequence[Subscription], tracker: Tracker) -> None:
        """Deliver ``event`` to each of ``subs`` in turn (highest priority first), then write the event's
        idempotency records, stored rows and dead letters in one store write, and tell ``tracker``."""
        succeeded: list[tuple[str, str]] | None = None
        dead: list[DeadLetterEntry] | None = None
        to_store: list[Event] | None = None
        result = tracker.result
        breakers = self.breakers
        for sub in subs:
            breaker = breakers.get(sub.name)
            if (
                not _tracing.hooked
                and breaker is not None
                and breaker.state is _CLOSED
                and sub.handler.timeout is None
                and self.handler_timeout is None
            ):
                # The common case, inlined: what ``deliver`` does for a closed circuit and no timeout,
                # without a coroutine and a frame of its own per delivery.
                t0 = time.perf_counter()
                try:
                    out = await sub.call(event)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    res = await self._first_failed(event, sub, breaker, exc, None)
                else:
                    res = self._succeeded(sub.name, breaker, t0, out)
            elif _tracing.hooked:  # process span and/or log context
                res = await _tracing.deliver(self.deliver, event, sub, tracker.transport)
            else:
                res = await self.deliver(event, sub)
            outcome = res.outcome
            if outcome is _HANDLED:
                result.handled += 1
                if succeeded is None:
                    succeeded = [(event.id, sub.name)]
                else:
                    succeeded.append((event.id, sub.name))
                if res.events:
                    if to_store is None:
                        to_store = list(res.events)
                    else:
                        to_store.extend(res.events)
            elif outcome is _DEFERRED:
                result.handled += 1
                tracker.pending.append((self._after_deferred(res.deferred, event.id, sub.name), event))  # type: ignore[arg-type]
            else:
                entry = entry_for_failure(event, sub.name, res.reason, res.error, res.attempts, res.first_failure_at)
                if dead is None:
                    dead = [entry]
                else:
                    dead.append(entry)
                result.dead_lettered += 1
                self._record_dead_letter(entry)
        if not self.idempotency:
            succeeded = None
        if succeeded is not None or dead is not None or to_store is not None:
            # One write per event: its idempotency records, dead letters and stored rows commit together.
            written = self.store.write(completed=succeeded or (), events=to_store or (), dead_letters=dead or ())
            if written is not COMPLETED:
                tracker.pending.append((written, event))
        tracker.remaining -= 1
        if tracker.remaining == 0:
            tracker.finish()

    def _after_deferred(self, deferred: Awaitable[Any], event_id: str, name: str) -> asyncio.Future[None]:
        """Chain a handler's deferred completion and then its idempotency record, so the record is never
        durable before the work it vouches for."""
        out: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def relay(f: asyncio.Future[Any]) -> None:
            if out.done():
                return
            if f.cancelled():
                out.set_exception(BusError(f"deferred completion of handler {name!r} was cancelled"))
            elif f.exception() is not None:
                out.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                out.set_result(None)

        def deferred_done(f: asyncio.Future[Any]) -> None:
            if f.cancelled() or f.exception() is not None or not self.idempotency:
                relay(f)
                return
            written = self.store.mark_completed(((event_id, name),))
            if written is COMPLETED:
                out.set_result(None)
            else:
                asyncio.ensure_future(written).add_done_callback(relay)

        asyncio.ensure_future(deferred).add_done_callback(deferred_done)
        return out

    async def deliver_now(self, event: Event, sub: Subscription) -> DeliveryResult:
        """One delivery made durable before returning (dead-letter replay): deliver, wait for a deferred
        completion, then write the idempotency record and stored rows. Parked and dead-lettered results
        are returned for the caller to record on its entry.

        Raises:
            StoreError: the write failed.
        """
        if _tracing.hooked:
            res = await _tracing.deliver(self.deliver, event, sub, str(event.headers.get("transport", "")), replay=True)
        else:
            res = await self.deliver(event, sub)
        if res.outcome is _DEFERRED:
            await res.deferred  # type: ignore[misc]
        elif res.outcome is not _HANDLED:
            return res
        completed = [(event.id, sub.name)] if self.idempotency else []
        await self.store.write(completed=completed, events=res.events)
        return res

    def is_registered(self, handler: str) -> bool:
        """True when a handler of that name is registered (``Redelivery``)."""
        return self.registry.get(handler) is not None

    def can_deliver(self, handler: str) -> bool:
        """True when ``handler`` is registered and its circuit is not OPEN (``Redelivery``)."""
        breaker = self.breakers.get(handler)
        return breaker is not None and self.registry.get(handler) is not None and breaker.state is not BreakerState.OPEN

    async def redeliver(self, event: Event, handler: str) -> DeliveryResult:
        """Dead-letter replay of one delivery (``Redelivery``): see ``deliver_now``.

        Raises:
            BusError: no handler of that name is registered. StoreError: the write failed.
        """
        sub = self.registry.get(handler)
        if sub is None:
            raise BusError(f"handler {handler!r} is not registered on this bus")
        return await self.deliver_now(event, sub)

    async def keep_refused(self, event: Event, error: StoreRefusedError) -> None:
        """Keep an event whose store write the database refused for good: written once to the dead-letter
        queue as raw input (the event's JSON bytes, reason ``store_refused``, the database's message), so
        its message settles instead of being retried forever. Its deliveries have run but their idempotency
        records are not written: replaying the entry runs every handler again.

        Raises:
            StoreError: the dead-letter write failed too (the message stays unsettled).
        """
        entry = entry_for_refused(event, error)
        await self.store.add_dead_letters((entry,))
        self._record_dead_letter(entry)

    def _record_dead_letter(self, entry: DeadLetterEntry) -> None:
        self.metrics.count_dead_letter(entry.handler or "", entry.reason)
        if entry.reason != DeadLetterReason.CIRCUIT_OPEN:
            log.warning(
                "dead-lettered event %s for handler %s after %d attempt(s): %s: %s",
                entry.event.id if entry.event else entry.origin,
                entry.handler or "-",
                entry.attempts,
                entry.error_type,
                entry.error_message,
                extra=_tracing.entry_log_fields(entry),
            )
        if self._on_dead_letter is not None:
            self._on_dead_letter(entry)


def _reason_for(exc: BaseException) -> str:
    return DeadLetterReason.TIMEOUT if isinstance(exc, TimeoutError) else DeadLetterReason.FAILED
