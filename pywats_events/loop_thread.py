"""An event loop on a thread of its own, for callers that have none (plain scripts, tests, worker threads).

The bus is asyncio; code written against the pyWATS and CIRCMAN documents calls it from synchronous code
(``bus.start()``, ``event_manager.publish(event)`` from a worker thread). ``LoopThread`` runs one loop on a
daemon thread and lets any other thread run a coroutine there and wait for its result, so one bus serves
every thread without locks around its internals: everything it does happens on its own loop.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Done", "LoopThread", "running_loop"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or ``None``."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Done(Generic[T]):
    """A value that is already there, usable both ways: ``x.result()`` in synchronous code, ``await x``
    in a coroutine. What the bus's sync-or-async methods return once they ran to completion."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def result(self) -> T:
        """The value."""
        return self._value

    def __await__(self) -> Generator[Any, None, T]:
        return self._value
        yield  # a generator that returns at once

    def __repr__(self) -> str:
        return f"Done({self._value!r})"


class LoopThread:
    """One asyncio loop running on a daemon thread.

    Args:
        name: the thread's name (shown in thread dumps and logs).

    The loop starts on first use (``start``, ``run`` or ``submit``) and stops with ``stop`` or at
    interpreter exit; callbacks given to ``at_stop`` run on the loop first (a bus drains there).
    """

    def __init__(self, name: str = "pywats-events-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._at_stop: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (started if needed)."""
        return self.start()

    def start(self) -> asyncio.AbstractEventLoop:
        """Start the thread and its loop if they are not running; returns the loop. Thread-safe."""
        with self._lock:
            if self._loop is not None and self._thread is not None and self._thread.is_alive():
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.close()

            self._thread = threading.Thread(target=main, name=self.name, daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
            atexit.register(self.stop)
            return loop

    def in_loop_thread(self) -> bool:
        """True when called on this loop's own thread (where blocking on it would deadlock)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop from any thread; returns a future for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.start())

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (``timeout`` in seconds, ``None``: no bound).

        Raises:
            RuntimeError: called from the loop's own thread (it would wait for itself).
            TimeoutError: ``timeout`` passed; the coroutine is cancelled.
            Exception: whatever the coroutine raised.
        """
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError(f"{self.name}: run() called on the loop's own thread; await the coroutine instead")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"{self.name}: no result within {timeout} s") from None

    def at_stop(self, callback: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``await callback()`` on the loop when it stops (before it closes), in registration order."""
        self._at_stop.append(callback)

    def stop(self, timeout: float = 30.0) -> None:
        """Run the ``at_stop`` callbacks, stop the loop and join the thread (at most ``timeout`` seconds
        each). Safe to call more than once and from ``atexit``."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        callbacks, self._at_stop = self._at_stop, []
        for callback in callbacks:
            try:
                asyncio.run_coroutine_threadsafe(callback(), loop).result(timeout)
            except Exception as exc:
                log.warning("%s: stop callback %r failed: %s: %s", self.name, callback, type(exc).__name__, exc)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        atexit.unregister(self.stop)
