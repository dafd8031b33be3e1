"""One reconnect loop for every transport, on tenacity, reporting state the same way everywhere.

A transport gives ``Reconnector.connect`` the coroutine function that opens its connection once. The
reconnector calls it until it succeeds, with exponential backoff and jitter (``ReconnectSettings``), and
keeps the transport's state true: CONNECTING on the first attempt, RECONNECTING while retrying (readiness
is red), CONNECTED on success, ERROR when it gives up (``give_up_after``) or the failure cannot heal
(a refused login keeps being retried, since an operator may fix the account, but it is logged at
WARNING with what to check every time the delay has doubled, never silently at INFO).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

from ..errors import TransportError
from ..transport import TransportState
from .settings import ReconnectSettings

if TYPE_CHECKING:
    from ..transport import Transport

__all__ = ["ConnectFailedError", "Reconnector"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConnectFailedError(TransportError):
    """The transport gave up connecting (``reconnect.give_up_after`` elapsed, or the failure is fatal)."""


class Reconnector:
    """Retry a transport's connect step with backoff and report its state.

    Args:
        transport: whose state to report (``Transport._set_state``).
        settings: backoff and give-up bound (seconds).
        where: what is being connected to, without secrets (``amqp://guest@127.0.0.1:5672/ vhost /``),
            for log lines.
        hint: what to check when connecting fails (``check the URL, user and vhost``).
        fatal: exception types that must not be retried (a malformed URL): the state goes to ERROR and
            ``connect`` raises ``ConnectFailedError`` at once.
        permanent: tells a failure that cannot heal until someone changes a setting (a refused login) but
            is still retried: the state is ERROR instead of RECONNECTING while it lasts. ``None``: none is.
    """

    def __init__(
        self,
        transport: Transport,
        settings: ReconnectSettings,
        *,
        where: str,
        hint: str = "",
        fatal: tuple[type[BaseException], ...] = (),
        permanent: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.transport = transport
        self.settings = settings
        self.where = where
        self.hint = hint
        self.fatal = fatal
        self.permanent = permanent
        #: Failed attempts since the last successful connect.
        self.failures = 0
        self._next_warning = 1

    async def connect(self, attempt: Callable[[], Awaitable[T]], *, first: bool = True) -> T:
        """Call ``attempt()`` until it returns; returns its result with the state CONNECTED.

        Args:
            attempt: opens the connection once; raises on failure (any exception is retried unless it is
                one of ``fatal``).
            first: the first connect of this transport (state CONNECTING) rather than a reconnect
                (state RECONNECTING).

        Raises:
            ConnectFailedError: ``give_up_after`` seconds passed without a connection, or a fatal error;
                the state is ERROR and the message says why and what to check.
            asyncio.CancelledError: the transport is stopping.
        """
        s = self.settings
        self.transport._set_state(TransportState.CONNECTING if first else TransportState.RECONNECTING)
        retrying = AsyncRetrying(
            wait=wait_exponential_jitter(
                multiplier=s.initial_delay, max=s.max_delay, exp_base=s.multiplier, jitter=s.jitter
            ),
            stop=stop_after_delay(s.give_up_after) if s.give_up_after is not None else stop_never,
            retry=retry_if_exception(self._retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        async def once() -> T:  # tenacity awaits only coroutine functions; ``attempt`` may be a lambda
            return await attempt()

        try:
            result: T = await retrying(once)
        except Exception as exc:
            detail = self._detail(exc)
            self.transport._set_state(TransportState.ERROR, detail)
            gave_up = "" if isinstance(exc, self.fatal) else f" (gave up after {s.give_up_after:g} s)"
            raise ConnectFailedError(f"transport {self.transport.name!r}: cannot connect{gave_up}: {detail}") from exc
        if self.failures:
            log.warning("transport %s: connected to %s after %d failed attempts", self.transport.name, self.where,
                        self.failures)
        self.failures = 0
        self._next_warning = 1
        self.transport._set_state(TransportState.CONNECTED)
        return result

    def _retryable(self, exc: BaseException) -> bool:
        # tenacity sees BaseException too: a stop (this task cancelled) must end the loop, not be retried;
        # a CancelledError from inside the client library while nobody cancels us is a failed attempt.
        if isinstance(exc, asyncio.CancelledError):
            task = asyncio.current_task()
            return task is not None and not task.cancelling()
        return isinstance(exc, Exception) and not isinstance(exc, self.fatal)

    def _detail(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"{self.where}: {text}" + (f"; {self.hint}" if self.hint else "")

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        self.failures += 1
        detail = self._detail(exc) if exc is not None else self.where
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        lasting = exc is not None and self.permanent is not None and self.permanent(exc)
        self.transport._set_state(TransportState.ERROR if lasting else TransportState.RECONNECTING, detail)
        if self.failures >= self._next_warning:  # 1st, 2nd, 4th, 8th... failure: visible, not a flood
            self._next_warning *= 2
            log.warning("transport %s: cannot connect (attempt %d, next in %.1f s): %s",
                        self.transport.name, self.failures, delay, detail)
        else:
            log.info("transport %s: still cannot connect (attempt %d): %s", self.transport.name, self.failures, detail)
