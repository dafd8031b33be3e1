"""``pywats-events run`` killed with SIGKILL part-way through a drop folder, then started again.

Proves the settlement contract across a real crash: no file is lost, every event is handled at least
once, the event store holds each exactly once, only the deliveries in flight at the kill run twice, and
the SQLite store keeps what was committed before the kill.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).parent / "pywats-events"
N_FILES = 300
FILE_CONCURRENCY = 4  # FileSettings.concurrency of the service under test

RECORDER = '''\
"""A slow handler: records every event id it is called with, durably, then takes 20 ms."""
import asyncio
import os

RECORD = os.environ["CRASH_TEST_RECORD"]


async def record(event):
    with open(RECORD, "a", encoding="utf-8") as f:
        f.write(f"{event.id} {os.getpid()}\\n")
        f.flush()
        os.fsync(f.fileno())
    await asyncio.sleep(0.02)
'''


def event_id(i: int) -> str:
    return f"5e1f0000-0000-4000-8000-{i:012d}"


def event_file(i: int) -> bytes:
    """One event in the normalized JSON form, with a fixed id; eight sources spread it over lanes."""
    return json.dumps(
        {
            "id": event_id(i),
            "type": "test.result",
            "source": f"tester-{i % 8}",
            "timestamp": "2024-05-01T08:00:00Z",
            "payload": {"unit_id": f"SN{i:05d}", "result": "pass"},
        }
    ).encode()


def read_records(path: Path) -> list[tuple[str, int]]:
    """``(event id, pid)`` per complete line of the handler's record (a torn last line is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        parts = line.split()
        if line.endswith("\n") and len(parts) == 2:
            out.append((parts[0], int(parts[1])))
    return out


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"service exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def stored_ids(db: Path) -> list[str]:
    async def query() -> list[str]:
        async with open_store(str(db)) as store:
            rows = await store.query_events(EventQuery(type_pattern="test.*", limit=100_000))
            return [r.event.id for r in rows]

    return asyncio.run(query())


def test_kill_9_mid_folder_then_restart_loses_nothing_and_stores_each_event_once(tmp_path: Path) -> None:
    inbox, db, record = tmp_path / "inbox", tmp_path / "service.db", tmp_path / "handled.txt"
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "crash_recorder.py").write_text(RECORDER)
    (tmp_path / "service.toml").write_text(
        f'db = "{db}"\n'
        'log_level = "WARNING"\n'
        "[[transports]]\n"
        'kind = "file"\n'
        f'path = "{inbox}"\n'
        "settle_seconds = 0.05\n"
        f"concurrency = {FILE_CONCURRENCY}\n"
        "[[handlers]]\n"
        'kind = "event-store"\n'
        "[[handlers]]\n"
        'kind = "python"\n'
        'name = "recorder"\n'
        'target = "crash_recorder:record"\n'
        'event_types = ["test.*"]\n'
        "[http]\n"
        "enabled = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path / "mods"), env.get("PYTHONPATH")]))
    env["CRASH_TEST_RECORD"] = str(record)
    all_ids = {event_id(i) for i in range(N_FILES)}
    all_names = {f"result-{i:04d}.json" for i in range(N_FILES)}

    def start(log_name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log_name).open("wb") as log:
            return subprocess.Popen(
                [str(CLI), "run", "--config", "service.toml"], cwd=tmp_path, env=env, stdout=log, stderr=log
            )

    # -- first run: drop the files, kill -9 part-way ------------------------------------------------
    first = start("first.log")
    try:
        wait_until(lambda: (inbox / "processed").is_dir(), timeout=60, what="the drop folder", proc=first)
        for i in range(N_FILES):
            tmp = inbox / f"result-{i:04d}.json.part"  # written aside, renamed in: how testers drop files
            tmp.write_bytes(event_file(i))
            tmp.rename(inbox / f"result-{i:04d}.json")
        wait_until(lambda: len(read_records(record)) >= 40, timeout=60, what="some events handled", proc=first)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == -signal.SIGKILL

    at_kill = read_records(record)
    processed_at_kill = {p.name for p in (inbox / "processed").iterdir()}
    assert 0 < len({i for i, _ in at_kill}) < N_FILES, "the kill must land part-way through the folder"
    assert len(processed_at_kill) < N_FILES

    # Durable before the kill: every file already moved to processed/ was settled, so its event is in
    # the store as read straight after the crash.
    before_restart = set(stored_ids(db))
    assert before_restart, "events committed before the kill are in the SQLite file"
    settled_ids = {event_id(int(name[7:11])) for name in processed_at_kill}
    assert settled_ids <= before_restart

    # -- second run: picks up what is left ---------------------------------------------------------
    second = start("second.log")
    try:
        wait_until(
            lambda: {p.name for p in (inbox / "processed").iterdir()} >= all_names and not any(inbox.glob("*.json")),
            timeout=90,
            what="every file in processed/",
            proc=second,
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()

    # no file lost, none failed, none processed twice into a second copy
    assert {p.name for p in (inbox / "processed").iterdir()} == all_names
    assert list((inbox / "failed").iterdir()) == []

    records = read_records(record)
    handled = Counter(i for i, _ in records)
    assert set(handled) == all_ids  # every event handled at least once
    assert len({pid for _, pid in records}) == 2  # by the two processes
    assert first.pid in {pid for _, pid in records} and second.pid in {pid for _, pid in records}

    # Duplicates: only deliveries in flight at the kill may run again. A file holds one of the
    # FILE_CONCURRENCY slots from its read until its settlement (handler done and the idempotency record
    # committed), so at most FILE_CONCURRENCY events had run their handler without a committed record.
    # Twice that allows for the lanes and the group commit overlapping the slot accounting; a broken
    # idempotency record would instead re-run every event of every file left in the inbox (tens to
    # hundreds).
    twice = {i for i, n in handled.items() if n > 1}
    assert max(handled.values()) <= 2
    assert len(twice) <= 2 * FILE_CONCURRENCY, sorted(twice)
    first_run_ids = {i for i, pid in at_kill if pid == first.pid}
    assert twice <= first_run_ids  # a duplicate is a first-run call repeated by the second run
    assert not twice & settled_ids  # a settled (moved) file's events never run again

    # the store holds each event exactly once, including those written before the kill
    proc = subprocess.run(
        [str(CLI), "events", "list", "--db", str(db), "--type", "test.*", "--limit", "1000", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    listed = [r["id"] for r in json.loads(proc.stdout)]
    assert len(listed) == N_FILES
    assert set(listed) == all_ids
    assert before_restart <= set(listed)  # the SQLite store survived the crash and the restart
