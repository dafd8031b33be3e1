"""Configuration reload of a real ``pywats-events run`` on SIGHUP (issue 18.4): the file is edited, SIGHUP
sent, and the new log level, retry policy and handler timeout take effect on the next event; an option
that needs a restart is named at WARNING; a broken file on the next SIGHUP keeps the running
configuration (the service still applies it) and the ERROR line says why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="no SIGHUP on Windows")]

CLI = Path(sys.executable).parent / "pywats-events"

HANDLER = """
import asyncio, pathlib

async def slow(event):
    tries = pathlib.Path("attempts") / event.id
    tries.mkdir(parents=True, exist_ok=True)
    (tries / str(len(list(tries.iterdir())))).touch()
    await asyncio.sleep(1.0)
    pathlib.Path("done").joinpath(event.id).touch()
"""


def config(tmp: Path, *, level: str, attempts: int, timeout: float, settle: float, extra: str = "") -> str:
    return (
        f'db = "{tmp / "service.db"}"\nlog_level = "{level}"\n'
        f"[bus.retry]\nmax_attempts = {attempts}\ninitial_delay = 0\njitter = 0\n"
        f'[[transports]]\nkind = "file"\nname = "inbox"\npath = "inbox"\nsettle_seconds = {settle}\n'
        f'[[handlers]]\nkind = "python"\nname = "slow"\ntarget = "reload_handlers:slow"\n'
        f'event_types = ["test.result"]\ntimeout = {timeout}\n'
        "[http]\nenabled = false\n" + extra
    )


def wait_until(
    cond: Callable[[], object], what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"service exited early ({proc.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")
        time.sleep(0.05)


def drop(inbox: Path, event_id: str) -> None:
    tmp = inbox / f".{event_id}.tmp"
    tmp.write_text(f'{{"id": "{event_id}", "type": "test.result", "source": "{event_id}"}}')
    tmp.rename(inbox / f"{event_id}.json")


def tries(tmp: Path, event_id: str) -> int:
    folder = tmp / "attempts" / event_id
    return len(list(folder.iterdir())) if folder.is_dir() else 0


def test_sighup_applies_log_level_retry_and_handler_timeout_and_keeps_running_on_a_bad_file(tmp_path: Path) -> None:
    (tmp_path / "reload_handlers.py").write_text(HANDLER)
    (tmp_path / "done").mkdir()
    cfg = tmp_path / "service.toml"
    cfg.write_text(config(tmp_path, level="WARNING", attempts=1, timeout=30, settle=0.1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "run", "--config", str(cfg)], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    inbox = tmp_path / "inbox"
    try:
        wait_until(lambda: (inbox / "processed").is_dir(), "the drop folder", proc, log)
        # Before: WARNING level, one attempt, 30 s timeout: the 1 s handler finishes.
        drop(inbox, "ev-1")
        wait_until(lambda: (tmp_path / "done" / "ev-1").exists(), "ev-1 handled", proc, log)
        assert tries(tmp_path, "ev-1") == 1
        assert "pyWATS events running" not in log.read_text()  # INFO is below WARNING

        cfg.write_text(
            config(tmp_path, level="INFO", attempts=2, timeout=0.2, settle=0.3, extra="[bus]\nconcurrency = 3\n")
        )
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in log.read_text(), "the reload", proc, log)
        text = log.read_text()
        assert "applied log_level, bus.retry.max_attempts, handlers.slow.timeout" in text, text
        assert "transport inbox (file): option settle_seconds changed: needs a restart" in text, text
        assert "WARNING" in text.split("settle_seconds changed")[0].splitlines()[-1]
        assert "bus.concurrency changed: needs a restart" in text, text

        # After: two attempts of 0.2 s each, then the dead-letter queue; the handler never finishes.
        drop(inbox, "ev-2")
        wait_until(lambda: tries(tmp_path, "ev-2") == 2 and (inbox / "processed" / "ev-2.json").exists(),
                   "ev-2 retried and settled", proc, log)

        # A broken file: the ERROR says why, and the running configuration stays in force.
        cfg.write_text(config(tmp_path, level="LOUD", attempts=1, timeout=30, settle=0.1))
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reload failed" in log.read_text(), "the failed reload", proc, log)
        failed = [line for line in log.read_text().splitlines() if "configuration reload failed" in line]
        assert "ERROR" in failed[0] and "still running with the previous configuration" in failed[0]
        assert "unknown log level 'LOUD'" in failed[0] and str(cfg) in failed[0], failed
        drop(inbox, "ev-3")
        wait_until(lambda: (inbox / "processed" / "ev-3.json").exists(), "ev-3 settled", proc, log)
        assert tries(tmp_path, "ev-3") == 2
        time.sleep(1.2)  # a 1 s handler that was not cut off by the 0.2 s timeout would have finished by now
        assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["ev-1"]
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()
    entries = subprocess.run(
        [str(CLI), "dlq", "list", "--json", "--db", str(tmp_path / "service.db")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    assert "ev-2" in entries and "ev-3" in entries and "ev-1" not in entries
