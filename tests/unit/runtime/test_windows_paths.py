"""The run command's platform choices (issue 18.4): the event loop on Windows with MQTT, and signal handling
where ``loop.add_signal_handler`` does not exist. The Windows code paths run here with ``sys.platform``
given as ``"win32"``: the fallback uses ``signal.signal`` and ``call_soon_threadsafe``, which behave the
same on Linux, so real signals sent to this process prove it. What this cannot show (Windows' own loops,
Ctrl+C delivery by a console or a service wrapper) is listed in the docs' Windows page."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from pywats_events.runtime import install_signal_handlers, loop_factory, stop_signals

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals to itself")


def test_windows_with_mqtt_runs_on_a_selector_loop() -> None:
    factory = loop_factory(["file", "mqtt"], platform="win32")
    assert factory is asyncio.SelectorEventLoop
    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, asyncio.SelectorEventLoop)
        assert runner.run(asyncio.sleep(0, "ran")) == "ran"


def test_other_platforms_or_no_mqtt_keep_the_default_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loop_factory(["file", "cfx", "nats"], platform="win32") is None
    assert loop_factory(["mqtt"], platform="linux") is None
    monkeypatch.setattr(sys, "platform", "win32")
    assert loop_factory(["mqtt"]) is asyncio.SelectorEventLoop  # the default platform is sys.platform


def test_windows_stops_on_ctrl_break_too() -> None:
    assert stop_signals("linux") == [signal.SIGINT, signal.SIGTERM]
    win = stop_signals("win32")
    assert win[:2] == [signal.SIGINT, signal.SIGTERM]
    assert len(win) == (3 if hasattr(signal, "SIGBREAK") else 2)


async def test_windows_fallback_catches_real_signals_with_signal_signal(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    # As on Windows: the loop has no add_signal_handler.
    monkeypatch.setattr(loop, "add_signal_handler", _not_implemented)
    before = signal.getsignal(signal.SIGTERM)
    sighup_before = signal.getsignal(signal.SIGHUP)  # SIG_DFL, or SIG_IGN under nohup
    got: list[signal.Signals] = []
    reloads: list[int] = []
    remove = install_signal_handlers(loop, got.append, lambda: reloads.append(1), platform="win32")
    try:
        assert signal.getsignal(signal.SIGTERM) is not before
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(200):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert got == [signal.SIGTERM, signal.SIGINT]
        # No SIGHUP on Windows: it is not caught there (its disposition stays as it was).
        assert signal.getsignal(signal.SIGHUP) is sighup_before
        # The wake-up timer runs, so a selector loop blocked in select() acts on a caught signal.
        assert any(
            getattr(h, "_callback", None) is not None and h._callback.__name__ == "tick"
            for h in loop._scheduled  # type: ignore[attr-defined]
        )
    finally:
        remove()
    assert signal.getsignal(signal.SIGTERM) == before
    assert reloads == []


async def test_posix_uses_the_loop_and_sighup_reloads() -> None:
    loop = asyncio.get_running_loop()
    got: list[signal.Signals] = []
    reloads: list[int] = []
    remove = install_signal_handlers(loop, got.append, lambda: reloads.append(1), platform="linux")
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(200):
            if got and reloads:
                break
            await asyncio.sleep(0.01)
        assert got == [signal.SIGTERM] and reloads == [1]
    finally:
        remove()
    assert not loop.remove_signal_handler(signal.SIGTERM)  # removed already


async def test_a_posix_loop_without_signal_support_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    monkeypatch.setattr(loop, "add_signal_handler", _not_implemented)
    reloads: list[int] = []
    remove = install_signal_handlers(loop, lambda s: None, lambda: reloads.append(1), platform="linux")
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(200):
            if reloads:
                break
            await asyncio.sleep(0.01)
        assert reloads == [1]
    finally:
        remove()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


def _not_implemented(*_args: object) -> None:
    raise NotImplementedError
