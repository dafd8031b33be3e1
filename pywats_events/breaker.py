"""Circuit breaker per handler: CLOSED, OPEN, HALF_OPEN.

CLOSED: calls go through; ``failure_threshold`` consecutive failed calls open the circuit.
OPEN: the handler is not called; its deliveries are parked in the dead-letter queue (reason
``circuit_open``). After ``reset_timeout`` seconds the breaker lets trial calls through (HALF_OPEN).
HALF_OPEN: at most ``half_open_max_calls`` trial calls at a time; ``success_threshold`` successes close
the circuit (and the bus replays the parked deliveries), one failure opens it again.

Every transition is kept in ``CircuitBreaker.history``: a bounded ring (``history_size`` entries, 50 by
default, oldest dropped first) of ``BreakerTransition`` records (wall-clock time, from, to, why, failure
count), in process memory only: a restarted service starts with an empty history (the log keeps every
transition as a warning). The console's breakers page shows it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

__all__ = ["BreakerPolicy", "BreakerState", "BreakerTransition", "CircuitBreaker"]

#: Transitions a breaker keeps by default (count).
HISTORY_SIZE = 50


class BreakerState(StrEnum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """Settings of a circuit breaker.

    Args:
        failure_threshold: consecutive failed calls that open the circuit (>= 1).
        reset_timeout: seconds the circuit stays OPEN before trial calls (> 0).
        half_open_max_calls: trial calls allowed at once while HALF_OPEN (>= 1).
        success_threshold: successful trial calls that close the circuit (>= 1).
        enabled: ``False`` turns the breaker off (always CLOSED).

    Raises:
        ValueError: a value out of range.
    """

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max_calls < 1 or self.success_threshold < 1:
            raise ValueError("failure_threshold, half_open_max_calls and success_threshold must be >= 1")
        if self.reset_timeout <= 0:
            raise ValueError(f"reset_timeout must be > 0 seconds, got {self.reset_timeout}")


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change of a circuit breaker.

    Attributes:
        at: when, UTC wall clock.
        old / new: the states before and after.
        reason: why, in words (``5 consecutive failures (threshold 5)``, ``forced open``...).
        consecutive_failures: failed calls since the last success at that moment (count).
    """

    at: datetime
    old: BreakerState
    new: BreakerState
    reason: str
    consecutive_failures: int

    def to_json_dict(self) -> dict[str, object]:
        """``{"at": ISO 8601, "from", "to", "reason", "consecutive_failures"}``."""
        return {
            "at": self.at.isoformat(),
            "from": self.old.value,
            "to": self.new.value,
            "reason": self.reason,
            "consecutive_failures": self.consecutive_failures,
        }


StateListener = Callable[["CircuitBreaker", BreakerState, BreakerState], None]


class CircuitBreaker:
    """The breaker of one handler. Not thread-safe: used from the event loop only.

    Args:
        name: the handler's name.
        policy: thresholds and timeout.
        on_change: called as ``on_change(breaker, old_state, new_state)`` on every transition.
        clock: monotonic clock in seconds (tests may pass their own).
        history_size: transitions kept in ``history`` (count, >= 1; oldest dropped first).

    Attributes:
        history: the latest transitions, oldest first (``BreakerTransition``; in memory only).
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        on_change: StateListener | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_size: int = HISTORY_SIZE,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._on_change = on_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._opened_at = 0.0
        self.opened_count = 0
        self.forced = False
        self.history: deque[BreakerTransition] = deque(maxlen=max(1, history_size))

    @property
    def state(self) -> BreakerState:
        """Current state; an OPEN breaker whose reset timeout has passed reports (and becomes) HALF_OPEN."""
        if (
            self._state is BreakerState.OPEN
            and not self.forced
            and self._clock() - self._opened_at >= self.policy.reset_timeout
        ):
            self._transition(BreakerState.HALF_OPEN, f"reset timeout of {self.policy.reset_timeout:g}s passed")
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failed calls since the last success."""
        return self._failures

    @property
    def seconds_until_half_open(self) -> float:
        """Seconds until an OPEN breaker allows trial calls (0 when not OPEN)."""
        if self._state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.policy.reset_timeout - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Ask to make one call now. True: call, then report with ``record_success`` or
        ``record_failure``. False: the circuit is open (or all trial slots are taken); park the delivery."""
        if self._state is BreakerState.CLOSED:  # the hot path: one identity test
            return True
        if not self.policy.enabled:
            return True
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        if self._trials >= self.policy.half_open_max_calls:
            return False
        self._trials += 1
        return True

    def record_success(self) -> None:
        """Report a successful call."""
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._successes += 1
            if self._successes >= self.policy.success_threshold:
                self._transition(BreakerState.CLOSED, f"{self._successes} trial call(s) succeeded")

    def record_failure(self) -> None:
        """Report a failed call."""
        if not self.policy.enabled:
            return
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._open("trial call failed")
        elif self._state is BreakerState.CLOSED and self._failures >= self.policy.failure_threshold:
            self._open(f"{self._failures} consecutive failures (threshold {self.policy.failure_threshold})")

    def trip(self) -> None:
        """Open a CLOSED circuit now, as if the failure threshold had been reached (a handler told the bus
        its sink is unavailable); the reset timeout and the half-open probe then run as usual. No effect
        in any other state."""
        if self._state is BreakerState.CLOSED:
            self._open("the handler reported its sink unavailable")

    def force_open(self) -> None:
        """Open the circuit and keep it open until ``force_close`` (operator action)."""
        self.forced = True
        self._open("forced open by an operator")

    def force_close(self) -> None:
        """Close the circuit now (operator action); parked deliveries are replayed by the bus."""
        self.forced = False
        failures, self._failures = self._failures, 0
        self._transition(BreakerState.CLOSED, "forced closed by an operator", failures)

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self.opened_count += 1
        self._transition(BreakerState.OPEN, reason)

    def _transition(self, new: BreakerState, reason: str, failures: int | None = None) -> None:
        old = self._state
        if old is new:
            return
        self.history.append(
            BreakerTransition(datetime.now(UTC), old, new, reason, self._failures if failures is None else failures)
        )
        self._state = new
        self._successes = 0
        self._trials = 0
        if new is BreakerState.CLOSED:
            self._failures = 0
        if self._on_change is not None:
            self._on_change(self, old, new)

    def describe(self) -> dict[str, object]:
        """State summary for the admin API and CLI."""
        return {
            "handler": self.name,
            "state": self.state.value,
            "consecutive_failures": self._failures,
            "opened_count": self.opened_count,
            "forced": self.forced,
            "seconds_until_half_open": round(self.seconds_until_half_open, 3),
        }
