"""The pyWATS document's policy classes (seed ``004``, "Policies"), mapped onto the real ones.

``RetryPolicy(max_retries=3, initial_delay=1.0, max_delay=60.0, exponential_base=2.0, jitter=True)``
with ``retry_on(...)`` / ``no_retry_on(...)``, ``CircuitBreaker(failure_threshold=5, reset_timeout=30.0)``,
``DeadLetterQueue(max_size=1000)`` with ``get_entries()``, and ``ErrorPolicy(dead_letter_queue=...,
circuit_breaker=...)`` work as the document writes them. Nothing here retries, breaks or stores by
itself: each class configures or reads the bus's own retry policy (``pywats_events.retry``), circuit
breakers (``pywats_events.breaker``) and durable dead-letter queue (``pywats_events.dead_letter``). Give
them to the bus: ``EventBus(retry=policy, error_policy=ErrorPolicy(...))``, or per handler
(``handler.retry = policy``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .breaker import BreakerPolicy
from .retry import RetryPolicy as _CoreRetryPolicy
from .store import DeadLetterEntry

if TYPE_CHECKING:
    from .bus import EventBus

__all__ = ["CircuitBreaker", "DeadLetterQueue", "ErrorPolicy", "RetryPolicy"]

log = logging.getLogger(__name__)


class RetryPolicy:
    """Retry settings in the document's words, backed by ``pywats_events.retry.RetryPolicy``.

    Args:
        max_retries: retries after the first attempt (``max_attempts = max_retries + 1``), >= 0.
        initial_delay: seconds before the first retry.
        max_delay: cap on one delay, seconds.
        exponential_base: growth factor of the delay.
        jitter: ``True`` adds up to half of ``initial_delay`` (at least 0.1 s) of random delay, ``False``
            none, a number that many seconds at most.

    Raises:
        ValueError: a value out of range (as the core policy checks it).

    Every attribute of the core policy (``max_attempts``, ``is_retryable``, ``retry_after_failure``...)
    reads through, so this object goes wherever a retry policy goes; ``retry_on`` / ``no_retry_on`` may
    be called after it was given to a bus and take effect for later deliveries.
    """

    def __init__(
        self,
        max_retries: int = 3,
        initial_delay: float = 1.0,
        max_delay: float = 60.0,
        exponential_base: float = 2.0,
        jitter: bool | float = True,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.exponential_base = exponential_base
        self.jitter = jitter
        self._retry_on: tuple[type[BaseException], ...] = (Exception,)
        self._no_retry_on: tuple[type[BaseException], ...] = ()
        self._policy = self._build()

    def _build(self) -> _CoreRetryPolicy:
        if isinstance(self.jitter, bool):
            jitter = max(0.1, self.initial_delay / 2) if self.jitter else 0.0
        else:
            jitter = float(self.jitter)
        return _CoreRetryPolicy(
            max_attempts=self.max_retries + 1, initial_delay=self.initial_delay, max_delay=self.max_delay,
            exponential_base=self.exponential_base, jitter=jitter, retry_on=self._retry_on,
            no_retry_on=self._no_retry_on,
        )

    @property
    def policy(self) -> _CoreRetryPolicy:
        """The core policy these settings make."""
        return self._policy

    def retry_on(self, *exceptions: type[BaseException]) -> RetryPolicy:
        """Retry only these exception types (and their subclasses); returns self.

        Raises:
            TypeError: an argument is not an exception class.
        """
        self._retry_on = _exception_types(exceptions, "retry_on")
        self._policy = self._build()
        return self

    def no_retry_on(self, *exceptions: type[BaseException]) -> RetryPolicy:
        """Never retry these (the delivery goes straight to the dead-letter queue as ``unrecoverable``);
        adds to earlier calls; returns self.

        Raises:
            TypeError: an argument is not an exception class.
        """
        self._no_retry_on = (*self._no_retry_on, *_exception_types(exceptions, "no_retry_on"))
        self._policy = self._build()
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._policy, name)

    def __repr__(self) -> str:
        return f"policies.RetryPolicy({self._policy!r})"


def _exception_types(values: Sequence[Any], where: str) -> tuple[type[BaseException], ...]:
    bad = [v for v in values if not (isinstance(v, type) and issubclass(v, BaseException))]
    if bad or not values:
        raise TypeError(f"{where}: give exception classes, got {list(values)!r}")
    return tuple(values)


class CircuitBreaker(BreakerPolicy):
    """The document's ``CircuitBreaker(failure_threshold=5, reset_timeout=30.0)`` (seconds): a
    ``BreakerPolicy``. The bus makes one breaker per handler from it (closed / open / half-open);
    ``half_open_max_calls`` and ``success_threshold`` keep their defaults unless given."""


class DeadLetterQueue:
    """The document's dead-letter queue handle, reading the bus's durable queue once bound.

    Args:
        max_size: how many entries are expected at most; beyond it a WARNING is logged once per crossing
            and ``over_capacity`` is True. Nothing is deleted to make room: entries leave only by replay
            or purge, so nothing is lost.

    Raises:
        ValueError: ``max_size`` < 1.
    """

    def __init__(self, max_size: int = 1000) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self._bus: EventBus | None = None
        self._warned = False

    def bind(self, bus: EventBus) -> None:
        """Read ``bus``'s queue (done by ``EventBus(error_policy=...)``)."""
        self._bus = bus

    def _require_bus(self) -> EventBus:
        if self._bus is None:
            raise RuntimeError("this DeadLetterQueue is not attached to a bus; pass "
                               "EventBus(error_policy=ErrorPolicy(dead_letter_queue=dlq, ...))")
        return self._bus

    def get_entries(self, limit: int | None = None) -> list[DeadLetterEntry]:
        """The entries, oldest first (at most ``limit``, default ``max_size``), from synchronous code.
        Each has ``.event`` (``None`` for raw input), ``.handler``, ``.error`` and ``.attempts``.

        Raises:
            RuntimeError: not attached to a bus, or called inside the bus's own event loop (``await
                dlq.entries()`` there).
        """
        bus = self._require_bus()
        outcome = bus.run_on_loop(self.entries(limit))
        result = getattr(outcome, "result", None)
        if result is None:
            getattr(outcome, "close", lambda: None)()
            raise RuntimeError("get_entries() inside the bus's event loop would block it; use await dlq.entries()")
        entries: list[DeadLetterEntry] = result()
        return entries

    async def entries(self, limit: int | None = None) -> list[DeadLetterEntry]:
        """``get_entries`` for async code."""
        bus = self._require_bus()
        found = await bus.dead_letters.list(limit=limit or self.max_size)
        total = await bus.dead_letters.count() if len(found) >= self.max_size else len(found)
        self.check_capacity(total)
        return found

    def check_capacity(self, count: int) -> bool:
        """Record that the queue holds ``count`` entries; WARNING the first time it is over ``max_size``.
        Returns ``over_capacity``."""
        over = count > self.max_size
        if over and not self._warned:
            log.warning("dead-letter queue holds %d entries, more than max_size %d: replay or purge them "
                        "(nothing is deleted automatically)", count, self.max_size)
        self._warned = over
        self.over_capacity = over
        return over

    over_capacity = False


class ErrorPolicy:
    """Where permanently failed events go, and when a handler is cut off: the document's
    ``ErrorPolicy(dead_letter_queue=dlq, circuit_breaker=cb)``.

    Args:
        dead_letter_queue: a ``DeadLetterQueue`` handle (bound to the bus that takes this policy).
        circuit_breaker: the breaker settings of every handler that sets none of its own.
    """

    def __init__(
        self, dead_letter_queue: DeadLetterQueue | None = None, circuit_breaker: BreakerPolicy | None = None
    ) -> None:
        self.dead_letter_queue = dead_letter_queue or DeadLetterQueue()
        self.circuit_breaker = circuit_breaker or CircuitBreaker()

    def apply(self, bus: EventBus) -> None:
        """Make ``bus`` use these settings: its default breaker policy, and the queue handle bound to it."""
        bus.breaker_policy = self.circuit_breaker
        self.dead_letter_queue.bind(bus)
