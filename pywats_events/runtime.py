"""What ``pywats-events run`` needs from the platform: the event loop to run on and the signals it obeys.

POSIX (Linux, macOS): asyncio's default loop; SIGINT and SIGTERM stop the service (drain, then exit; the
same signal again exits at once), SIGHUP reloads the configuration (``pywats_events.reload``); all through
``loop.add_signal_handler``.

Windows: the default ``ProactorEventLoop`` has no ``add_reader``, which aiomqtt (paho-mqtt's socket
callbacks) needs, so a configuration with an MQTT transport runs on ``asyncio.SelectorEventLoop`` instead
(chosen explicitly, never by changing the global event-loop policy). Neither loop has
``add_signal_handler`` there, so SIGINT (Ctrl+C), SIGBREAK (Ctrl+Break) and SIGTERM are caught with
``signal.signal`` in the main thread and handed to the loop with ``call_soon_threadsafe``; a 0.5 s timer
keeps the loop waking up, because a selector loop on Windows sleeps in ``select()`` that no signal
interrupts. Windows has no SIGHUP: reloading the configuration there means restarting the service.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SELECTOR_LOOP_KINDS", "WAKEUP_INTERVAL", "install_signal_handlers", "loop_factory", "stop_signals"]

log = logging.getLogger(__name__)

#: Transport kinds whose client library needs ``loop.add_reader`` (a selector loop) on Windows.
SELECTOR_LOOP_KINDS = frozenset({"mqtt"})
#: Seconds between wake-ups of the loop on Windows, so a caught signal is acted on promptly.
WAKEUP_INTERVAL = 0.5


def loop_factory(
    transport_kinds: Iterable[str], platform: str | None = None
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop factory the service must run on (for ``asyncio.Runner(loop_factory=...)``).

    Args:
        transport_kinds: the ``kind`` of every configured transport.
        platform: ``sys.platform`` value to decide for (default: this one).

    Returns:
        ``asyncio.SelectorEventLoop`` on Windows when a transport kind in ``SELECTOR_LOOP_KINDS`` is
        configured; ``None`` (asyncio's default loop) otherwise.
    """
    platform = sys.platform if platform is None else platform
    if platform == "win32" and SELECTOR_LOOP_KINDS.intersection(transport_kinds):
        return asyncio.SelectorEventLoop
    return None


def stop_signals(platform: str | None = None) -> list[signal.Signals]:
    """The signals that stop the service: SIGINT and SIGTERM, and on Windows SIGBREAK (Ctrl+Break) too."""
    platform = sys.platform if platform is None else platform
    sigs = [signal.SIGINT, signal.SIGTERM]
    sigbreak = getattr(signal, "SIGBREAK", None)
    if platform == "win32" and sigbreak is not None:
        sigs.append(sigbreak)
    return sigs


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop,
    on_stop: Callable[[signal.Signals], None],
    on_reload: Callable[[], None] | None = None,
    *,
    platform: str | None = None,
) -> Callable[[], None]:
    """Make ``stop_signals()`` call ``on_stop(sig)`` and SIGHUP call ``on_reload()``, both on ``loop``.

    POSIX: ``loop.add_signal_handler``. Windows, or a loop without signal support: ``signal.signal`` in
    the main thread, the callback scheduled with ``loop.call_soon_threadsafe``, plus a wake-up timer every
    ``WAKEUP_INTERVAL`` seconds on Windows. SIGHUP exists on POSIX only; elsewhere ``on_reload`` is unused
    (logged at INFO).

    Args:
        loop: the running loop the callbacks run on.
        on_stop: called with the signal received.
        on_reload: called on SIGHUP (``None``: SIGHUP keeps its default action).
        platform: ``sys.platform`` value to behave as (default: this one; tests pass ``"win32"``).

    Returns:
        A function that removes the handlers again (restoring the previous ones).
    """
    platform = sys.platform if platform is None else platform
    sigs = stop_signals(platform)
    sighup = getattr(signal, "SIGHUP", None)
    if platform != "win32":
        try:
            for sig in sigs:
                loop.add_signal_handler(sig, on_stop, sig)
            if on_reload is not None and sighup is not None:
                loop.add_signal_handler(sighup, on_reload)
        except NotImplementedError:
            for sig in sigs:
                loop.remove_signal_handler(sig)
        else:

            def remove() -> None:
                for sig in [*sigs, sighup] if sighup is not None else sigs:
                    loop.remove_signal_handler(sig)

            return remove
    return _install_fallback(loop, sigs, on_stop, on_reload, sighup if platform != "win32" else None, platform)


def _install_fallback(
    loop: asyncio.AbstractEventLoop,
    sigs: list[signal.Signals],
    on_stop: Callable[[signal.Signals], None],
    on_reload: Callable[[], None] | None,
    sighup: signal.Signals | None,
    platform: str,
) -> Callable[[], None]:
    previous: dict[signal.Signals, Any] = {}

    def stop_handler(signum: int, _frame: Any) -> None:
        loop.call_soon_threadsafe(on_stop, signal.Signals(signum))

    def reload_handler(_signum: int, _frame: Any) -> None:
        if on_reload is not None:
            loop.call_soon_threadsafe(on_reload)

    try:
        for sig in sigs:
            previous[sig] = signal.signal(sig, stop_handler)
        if on_reload is not None and sighup is not None:
            previous[sighup] = signal.signal(sighup, reload_handler)
    except ValueError as exc:  # not the main thread: signals cannot be caught here at all
        for sig, old in previous.items():
            signal.signal(sig, old)
        log.warning("signals not handled (%s): stop the service through its supervisor", exc)
        return lambda: None
    if on_reload is not None and sighup is None:
        log.info("no SIGHUP on this platform: restart the service to apply configuration changes")
    ticker: asyncio.TimerHandle | None = None

    def tick() -> None:
        nonlocal ticker
        ticker = loop.call_later(WAKEUP_INTERVAL, tick)

    if platform == "win32":
        tick()

    def remove() -> None:
        if ticker is not None:
            ticker.cancel()
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    return remove
