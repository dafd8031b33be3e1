"""Retry policy for one (event, handler) delivery, on tenacity.

The first attempt is called directly (the common, successful case pays nothing); from the second attempt
on, tenacity drives the attempts, the exponential backoff with jitter and the retry predicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from .errors import CircuitOpenError, UnrecoverableError

__all__ = ["RetryPolicy"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing delivery is retried.

    The delay before attempt ``n + 1`` (``n`` >= 1 failed attempts so far) is
    ``min(initial_delay * exponential_base ** (n - 1), max_delay) + uniform(0, jitter)`` seconds
    (tenacity's ``wait_exponential_jitter``).

    Args:
        max_attempts: total handler calls per delivery, first one included (>= 1).
        initial_delay: seconds before the first retry (>= 0).
        max_delay: cap on one delay, in seconds, before jitter.
        exponential_base: growth factor between delays (>= 1).
        jitter: largest random extra delay, in seconds (0 for none).
        retry_on: exception types that are retried (default: every ``Exception``).
        no_retry_on: exception types never retried: the delivery goes straight to the dead-letter queue
            with reason ``unrecoverable``. ``UnrecoverableError`` is always in this set.

    Raises:
        ValueError: a value out of range.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 30.0
    exponential_base: float = 2.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    no_retry_on: tuple[type[BaseException], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.jitter < 0:
            raise ValueError("initial_delay, max_delay and jitter must be >= 0 seconds")
        if self.exponential_base < 1:
            raise ValueError(f"exponential_base must be >= 1, got {self.exponential_base}")

    def _wait(self) -> wait_exponential_jitter:
        return wait_exponential_jitter(
            multiplier=self.initial_delay, max=self.max_delay, exp_base=self.exponential_base, jitter=self.jitter
        )

    def delay_after(self, failed_attempts: int) -> float:
        """Seconds to wait after ``failed_attempts`` (>= 1) failures, before the next attempt (jitter drawn)."""
        return float(self._wait()(SimpleNamespace(attempt_number=failed_attempts)))  # type: ignore[arg-type]

    def is_retryable(self, exc: BaseException) -> bool:
        """True when ``exc`` may be retried under this policy."""
        if isinstance(exc, UnrecoverableError | CircuitOpenError | asyncio.CancelledError):
            return False
        if self.no_retry_on and isinstance(exc, self.no_retry_on):
            return False
        return isinstance(exc, self.retry_on)

    async def retry_after_failure(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        on_retry: Callable[[int, BaseException], Any] | None = None,
    ) -> T:
        """Run attempts 2..``max_attempts`` of a delivery whose first attempt already failed retryably.

        Args:
            call: makes one attempt; raising means the attempt failed.
            on_retry: called as ``on_retry(next_attempt_number, exception)`` before each wait from the
                third attempt on (the caller reports the first failure itself).

        Returns:
            What the first successful attempt returned.

        Raises:
            The last attempt's exception when every attempt failed, or the first non-retryable one.
        """
        if self.max_attempts < 2:
            raise ValueError("retry_after_failure needs max_attempts >= 2")
        await asyncio.sleep(self.delay_after(1))
        wait = self._wait()

        def shifted_wait(state: RetryCallState) -> float:
            # tenacity counts from its own first attempt, which is the delivery's second.
            return float(wait(SimpleNamespace(attempt_number=state.attempt_number + 1)))  # type: ignore[arg-type]

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    on_retry(state.attempt_number + 2, exc)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts - 1),
            wait=shifted_wait,
            retry=retry_if_exception(self.is_retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(call)
