"""kill -9 in the middle of a stream of moves leaves no half-written move: every container is where its last
recorded move step put it, and no position holds two containers."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pywats_lab.status_db import StatusDBImplementation

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import random, sys
    from datetime import datetime, timedelta, UTC
    from pywats_lab.status_db import StatusDBImplementation
    from pywats_lab.structures import ContainerInfo, DeviceInfo, MoveStep

    db = StatusDBImplementation(sys.argv[1])
    for i in range(20):
        db.add_container(ContainerInfo(name=f"C{i}", current_device="Storage", current_pos=i, barcode=f"C{i}"))
    where = {f"C{i}": i for i in range(20)}
    rng = random.Random(5)
    t = datetime(2024, 1, 1, tzinfo=UTC)
    print("ready", flush=True)
    while True:
        barcode = rng.choice(sorted(where))
        free = sorted(set(range(40)) - set(where.values()))
        target = rng.choice(free)
        step = MoveStep(name="m", main_device=DeviceInfo("arm"), data={"fct": "move"},
                        origin_device=DeviceInfo("Storage"), target_device=DeviceInfo("Storage"),
                        origin_pos=where[barcode], destination_pos=target, start=t, finish=t + timedelta(seconds=3))
        db.record_move(step, barcode)
        where[barcode] = target
        t += timedelta(seconds=4)
    """
)


def test_kill_9_during_moves_leaves_every_container_consistent(tmp_path: Path) -> None:
    path = tmp_path / "lab.db"
    url = f"sqlite:///{path}"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(path, timeout=30) as con:
                if con.execute("SELECT count(*) FROM lab_steps").fetchone()[0] >= 100:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the worker recorded fewer than 100 moves in 60 s")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    db = StatusDBImplementation(url)
    try:
        containers = db.get_containers()
        assert len(containers) == 20
        positions = [c.current_pos for c in containers]
        assert len(set(positions)) == 20, "no position holds two containers"
        for c in containers:
            history = db.get_container_history(c.barcode)
            expected = history[-1].target_pos if history else c.start_pos
            assert c.current_pos == expected, f"{c.barcode}: the position and its last move step agree"
            for before, after in itertools.pairwise(history):
                assert after.origin_pos == before.target_pos, f"{c.barcode}: moves chain without a gap"
    finally:
        db.close()
