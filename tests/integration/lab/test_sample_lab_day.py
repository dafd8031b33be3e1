"""samples/lab through ``pywats-events run`` as a separate process: the day's files fill the status DB and
the orchestrator assigns the orders once the modules turn Ready."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pywats_lab.status_db import StatusDBImplementation

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "lab"
CLI = Path(sys.executable).parent / "pywats-events"
EXPERIMENT = "6f1c2d3e-0000-4000-8000-000000000001"

pytestmark = pytest.mark.slow


def _wait(condition, timeout: float, proc: subprocess.Popen[bytes], log: Path) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"pywats-events exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out; service log:\n{log.read_text()[-3000:]}")


def test_lab_day_sample_runs_through_the_cli(tmp_path: Path) -> None:
    for name in ("pywats-events.toml", "lab.yaml"):
        shutil.copy(SAMPLE / name, tmp_path / name)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYWATS_EVENTS_", "PYWATS_LAB_"))}
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(CLI), "run", "--config", "pywats-events.toml"], cwd=tmp_path, env=env, stdout=out, stderr=out
        )
    try:
        shutil.copy(SAMPLE / "day" / "01-morning.json", inbox)
        _wait(lambda: (inbox / "processed" / "01-morning.json").exists(), 60, proc, log)
        shutil.copy(SAMPLE / "day" / "02-run.json", inbox)
        _wait(lambda: (inbox / "processed" / "02-run.json").exists(), 60, proc, log)

        db = StatusDBImplementation(f"sqlite:///{tmp_path / 'pywats-lab.db'}")
        try:
            orders = db._run(db.aio.load_orders())
            assert {(o[0], o[2], o[3]) for o in orders} == {
                ("order-001", "assigned", "liquid-handler-001"),
                ("order-002", "assigned", "plate-reader-001"),
            }
            plate = db.get_cont_info_by_barcode("SCREEN_001")
            assert plate is not None and (plate.current_device, plate.current_pos) == ("PlateReader", 0)
            other = db.get_cont_info_by_barcode("SCREEN_002")
            assert other is not None and (other.current_device, other.current_pos) == ("Hamilton_STAR", 1)
            summary = db.get_experiment_summary(EXPERIMENT)
            assert summary.step_count == 5
            assert summary.duration == 4 * 3600 + 8 * 60, "08:00 to 12:08"
            assert [s.duration for s in db.get_container_history("SCREEN_001")] == [120.0, 30.0, 14400.0, 25.0, 180.0]
            assert db.get_all_positions("Incubator") == list(range(20)), "positions from lab.yaml"
        finally:
            db.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert not (inbox / "failed").exists() or not any((inbox / "failed").iterdir())
