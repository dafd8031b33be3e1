"""``pywats-events run`` with the analytics handler, fed a generated 24-hour line through a drop folder
in shuffled order with duplicates: the live ``/analytics/report`` equals the brute-force computation;
after ``kill -9`` the CLI report rebuilt from the event store equals it too, and ``analytics rebuild``
rewrites the status-history table with every state change."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from pywats_events.analytics import resolve_window
from pywats_events.analytics.store import HistoryStore
from pywats_events.analytics.testing import simulated_line
from tests.unit.analytics.brute_force import assert_matches, brute_force

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).parent / "pywats-events"
LINE = simulated_line(stations=4, hours=24, seed=21)
END = LINE[0].timestamp.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=24)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(condition, *, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"service exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def test_live_report_then_kill_9_then_cli_report_and_rebuild_equal_brute_force(tmp_path: Path) -> None:
    inbox, db, port = tmp_path / "inbox", tmp_path / "line.db", _free_port()
    (tmp_path / "service.toml").write_text(
        f'db = "{db}"\nlog_level = "WARNING"\n'
        f'[[transports]]\nkind = "file"\npath = "{inbox}"\nsettle_seconds = 0.05\ndecoder = "event-json"\n'
        '[[handlers]]\nkind = "event-store"\n'
        '[[handlers]]\nkind = "analytics"\nbucket_s = 60\nhistory_size = 5000\nflush_interval_s = 0.2\n'
        f"[http]\nenabled = true\nport = {port}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    rnd = random.Random(2)
    mixed = LINE + rnd.sample(LINE, len(LINE) // 20)  # redelivered copies
    rnd.shuffle(mixed)
    batches = [mixed[i : i + 200] for i in range(0, len(mixed), 200)]
    with (tmp_path / "service.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(CLI), "run", "--config", "service.toml"], cwd=tmp_path, env=env, stdout=log, stderr=log
        )
    try:
        _wait(lambda: (inbox / "processed").is_dir(), timeout=60, what="the drop folder", proc=proc)
        for i, batch in enumerate(batches):
            part = inbox / f"b{i:04d}.json.part"
            part.write_text(json.dumps([e.to_json_dict() for e in batch]))
            part.rename(inbox / f"b{i:04d}.json")
        _wait(
            lambda: len(list((inbox / "processed").iterdir())) == len(batches),
            timeout=180,
            what="every batch processed",
            proc=proc,
        )
        assert list((inbox / "failed").iterdir()) == []
        base = f"http://127.0.0.1:{port}"
        live = httpx.get(f"{base}/analytics/report", params={"until": END.isoformat()}, timeout=30).json()
        w = resolve_window(until=END, bucket_s=60)
        expected = brute_force(LINE, w.since_us, w.until_us, w.now_us)
        assert_matches(live, expected)
        assert live["duplicates"] > 0  # the copies arrived and changed nothing
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    out = subprocess.run(
        [str(CLI), "analytics", "report", "--config", "service.toml", "--until", END.isoformat(), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert_matches(json.loads(out.stdout), expected)
    csv = subprocess.run(
        [str(CLI), "analytics", "report", "--db", str(db), "--window", "day", "--until", END.isoformat(), "--csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
        text=True,
    ).stdout.splitlines()
    assert csv[0].startswith("asset,time_PRD_s,") and len(csv) == 1 + 4 + 1  # header, 4 stations, the line
    out = subprocess.run(
        [str(CLI), "analytics", "rebuild", "--db", str(db), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(out.stdout)
    changes = {e.id for e in LINE if e.type == "asset.state_changed"}
    assert summary["history_rows_written"] == len(changes) and summary["events_rejected"] == 0

    async def stored() -> int:
        store = HistoryStore(str(db))
        await store.open()
        try:
            return len(await store.intervals(limit=100_000))
        finally:
            await store.close()

    assert asyncio.run(stored()) == len(changes)
    bad = subprocess.run(
        [str(CLI), "analytics", "report", "--db", str(db), "--window", "week"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert bad.returncode == 2 and "'week'" in bad.stderr


def test_restart_after_kill_9_reloads_the_engine_from_the_event_store(tmp_path: Path) -> None:
    """The live engine after ``kill -9`` and a new start: its report, before and after more events arrive,
    equals the brute force over every event (reloaded from the event store, not started empty)."""
    line = simulated_line(stations=3, hours=12, seed=33)
    end = line[0].timestamp.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=12)
    first, second = line[: len(line) // 2], line[len(line) // 2 :]
    inbox, db, port = tmp_path / "inbox", tmp_path / "line.db", _free_port()
    (tmp_path / "service.toml").write_text(
        f'db = "{db}"\nlog_level = "WARNING"\n'
        f'[[transports]]\nkind = "file"\npath = "{inbox}"\nsettle_seconds = 0.05\ndecoder = "event-json"\n'
        '[[handlers]]\nkind = "event-store"\n'
        '[[handlers]]\nkind = "analytics"\nbucket_s = 60\nhistory_size = 5000\nflush_interval_s = 30\n'
        f"[http]\nenabled = true\nport = {port}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    base = f"http://127.0.0.1:{port}"
    w = resolve_window(until=end, bucket_s=60)

    def start(log_name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log_name).open("wb") as log:
            return subprocess.Popen(
                [str(CLI), "run", "--config", "service.toml"], cwd=tmp_path, env=env, stdout=log, stderr=log
            )

    def feed(events: list, tag: str, proc: subprocess.Popen[bytes]) -> None:  # type: ignore[type-arg]
        batches = [events[i : i + 200] for i in range(0, len(events), 200)]
        before = len(list((inbox / "processed").iterdir()))
        for i, batch in enumerate(batches):
            part = inbox / f"{tag}{i:04d}.json.part"
            part.write_text(json.dumps([e.to_json_dict() for e in batch]))
            part.rename(inbox / f"{tag}{i:04d}.json")
        _wait(
            lambda: len(list((inbox / "processed").iterdir())) == before + len(batches),
            timeout=180,
            what=f"every {tag} batch processed",
            proc=proc,
        )

    def report() -> dict:  # type: ignore[type-arg]
        r = httpx.get(f"{base}/analytics/report", params={"until": end.isoformat()}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    proc = start("service-1.log")
    try:
        _wait(lambda: (inbox / "processed").is_dir(), timeout=60, what="the drop folder", proc=proc)
        feed(first, "a", proc)
        assert_matches(report(), brute_force(first, w.since_us, w.until_us, w.now_us))
        # Killed with the status history still unwritten (flush every 30 s): only the event store has it.
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc = start("service-2.log")
        _wait(lambda: httpx.get(f"{base}/healthz", timeout=5).status_code == 200, timeout=60, what="restart", proc=proc)
        reloaded = report()
        assert reloaded["events"] > 0, "the restarted engine must not start empty"
        assert_matches(reloaded, brute_force(first, w.since_us, w.until_us, w.now_us))
        feed(second, "b", proc)
        assert_matches(report(), brute_force(line, w.since_us, w.until_us, w.now_us))
        # A clean stop writes the history, reloaded changes included: every state change is in the table.
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    async def stored() -> int:
        store = HistoryStore(str(db))
        await store.open()
        try:
            return len(await store.intervals(limit=100_000))
        finally:
            await store.close()

    assert asyncio.run(stored()) == len({e.id for e in line if e.type == "asset.state_changed"})
