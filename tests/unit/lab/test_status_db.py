"""The LARA status DB document's examples with only the prefix changed, and the errors it must refuse."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pywats_lab import structures
from pywats_lab.errors import (
    ContainerNotAtPositionError,
    DuplicateContainerError,
    LabConfigError,
    PositionOccupiedError,
    StepTimeError,
    UnknownContainerError,
    UnknownDeviceError,
    UnknownExperimentError,
    UnknownProcessError,
)
from pywats_lab.status_db import StatusDBImplementation


def _sleep_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    # The document sleeps 2 s to simulate each operation; a tenth of that keeps the test short.
    real = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: real(s / 10))


def test_complete_experiment_example(lab_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _sleep_scaled(monkeypatch)
    # --- the document's "Complete Experiment Example", prefix changed ---
    db = StatusDBImplementation()

    process_code = """
Cell culture screening workflow:
1. Prepare plates with cells
2. Add compounds
3. Incubate
4. Read absorbance
"""
    process_uuid = db.add_process_to_db(name="Cell Screening", src=process_code)
    experiment_uuid = db.create_experiment(process_uuid)

    container_info = structures.ContainerInfo(
        name="ScreenPlate_01", current_device="Hamilton_STAR", current_pos=0, barcode="SCREEN_001",
        lidded=True, filled=True,
    )
    db.add_container(container_info)

    step1 = structures.ProcessStep(
        name="Add Compounds", main_device=structures.DeviceInfo(name="Hamilton_STAR"),
        data={"fct": "dispense", "volume": 50, "reagent": "compound_library"},
    )
    step1.start = datetime.now()
    time.sleep(2)
    step1.finish = datetime.now()
    step1.status = "completed"
    db.safe_step_to_db(step1, container_info, experiment_uuid)

    move_step = structures.MoveStep(
        name="Move to Incubator", main_device=structures.DeviceInfo(name="RoboticArm"),
        origin_device=structures.DeviceInfo(name="Hamilton_STAR"),
        target_device=structures.DeviceInfo(name="Incubator"),
        origin_pos=0, destination_pos=5, data={"fct": "move"},
    )
    move_step.start = datetime.now()
    db.moved_container("Hamilton_STAR", 0, "Incubator", 5, "SCREEN_001")
    container_info = db.get_cont_info_by_barcode("SCREEN_001")
    move_step.finish = datetime.now()
    move_step.status = "completed"
    db.safe_step_to_db(move_step, container_info, experiment_uuid)

    step3 = structures.ProcessStep(
        name="Incubate", main_device=structures.DeviceInfo(name="Incubator"),
        data={"fct": "incubate", "temperature": 37, "duration": 14400},
    )
    step3.start = datetime.now()
    time.sleep(2)
    step3.finish = datetime.now()
    step3.status = "completed"
    db.safe_step_to_db(step3, container_info, experiment_uuid)

    move_step2 = structures.MoveStep(
        name="Move to Reader", main_device=structures.DeviceInfo(name="RoboticArm"),
        origin_device=structures.DeviceInfo(name="Incubator"),
        target_device=structures.DeviceInfo(name="PlateReader"),
        origin_pos=5, destination_pos=0, data={"fct": "move"},
    )
    move_step2.start = datetime.now()
    db.moved_container("Incubator", 5, "PlateReader", 0, "SCREEN_001")
    container_info = db.get_cont_info_by_barcode("SCREEN_001")
    move_step2.finish = datetime.now()
    move_step2.status = "completed"
    db.safe_step_to_db(move_step2, container_info, experiment_uuid)

    step5 = structures.ProcessStep(
        name="Read Absorbance", main_device=structures.DeviceInfo(name="PlateReader"),
        data={"fct": "absorbance", "wavelength": 570},
    )
    step5.start = datetime.now()
    time.sleep(2)
    step5.finish = datetime.now()
    step5.status = "completed"
    db.safe_step_to_db(step5, container_info, experiment_uuid)
    # --- end of the document's code ---

    assert lab_db_url.endswith("lab.db") and Path(lab_db_url.removeprefix("sqlite:///")).exists()
    where = db.get_cont_info_by_barcode("SCREEN_001")
    assert where is not None and (where.current_device, where.current_pos) == ("PlateReader", 0)
    assert (where.start_device, where.start_pos) == ("Hamilton_STAR", 0)
    assert db.position_empty("Hamilton_STAR", 0) and db.position_empty("Incubator", 5)
    assert not db.position_empty("PlateReader", 0)
    assert db.get_container_at_position("PlateReader", 0).barcode == "SCREEN_001"  # type: ignore[union-attr]
    assert db.get_all_positions("Incubator") == [5]

    summary = db.get_experiment_summary(experiment_uuid)
    assert summary.step_count == 5 and summary.process_name == "Cell Screening"
    expected = (step5.finish - step1.start).total_seconds()
    assert summary.duration == pytest.approx(expected, abs=1e-3)
    assert summary.duration >= 0.6

    history = db.get_container_history("SCREEN_001")
    names = ["Add Compounds", "Move to Incubator", "Incubate", "Move to Reader", "Read Absorbance"]
    assert [s.name for s in history] == names
    assert history[1].kind == "move"
    assert (history[1].origin_device, history[1].target_device) == ("Hamilton_STAR", "Incubator")
    assert history[0].duration == pytest.approx(step1.duration, abs=1e-3) and history[0].duration >= 0.2

    stats = db.get_device_statistics("PlateReader")
    assert stats.count == 1 and stats.min == stats.max == pytest.approx(step5.duration, abs=1e-3)

    assert db.get_available_processes() == [("Cell Screening", process_uuid)]
    assert db.get_experiments(process_uuid) == [experiment_uuid] == db.get_experiments()
    assert db.get_process(process_uuid) == process_code
    # The estimate of a step identical to one in the history is that duration; an unseen fct has none.
    assert db.get_estimated_duration(step5, confidence=0.95) == pytest.approx(step5.duration, abs=1e-3)
    reader = structures.DeviceInfo(name="PlateReader")
    unseen = structures.ProcessStep(name="x", main_device=reader, data={"fct": "shake"})
    assert db.get_estimated_duration(unseen) is None
    db.close()

    reopened = StatusDBImplementation()
    assert reopened.get_cont_info_by_barcode("SCREEN_001").current_device == "PlateReader"  # type: ignore[union-attr]
    reopened.close()


def _plate(barcode: str, device: str = "Hamilton_STAR", pos: int = 0) -> structures.ContainerInfo:
    return structures.ContainerInfo(name=barcode, current_device=device, current_pos=pos, barcode=barcode)


def test_moves_that_cannot_happen_are_refused_and_change_nothing(db: StatusDBImplementation) -> None:
    db.add_container(_plate("A", "Hamilton_STAR", 0))
    db.add_container(_plate("B", "Incubator", 5))
    with pytest.raises(PositionOccupiedError, match="'Incubator' position 5 already holds 'B'"):
        db.moved_container("Hamilton_STAR", 0, "Incubator", 5, "A")
    with pytest.raises(ContainerNotAtPositionError, match="is at Hamilton_STAR\\[0\\], not Hamilton_STAR\\[3\\]"):
        db.moved_container("Hamilton_STAR", 3, "PlateReader", 0, "A")
    with pytest.raises(UnknownContainerError, match="'NOPE'"):
        db.moved_container("Hamilton_STAR", 0, "PlateReader", 0, "NOPE")
    a = db.get_cont_info_by_barcode("A")
    assert a is not None and (a.current_device, a.current_pos) == ("Hamilton_STAR", 0)
    assert db.get_all_positions("PlateReader") == [], "a refused move creates no position"
    with pytest.raises(DuplicateContainerError):
        db.add_container(_plate("A", "PlateReader", 1))
    with pytest.raises(PositionOccupiedError):
        db.add_container(_plate("C", "Incubator", 5))
    assert db.get_cont_info_by_barcode("C") is None
    assert db.get_cont_info_by_barcode("missing") is None


def test_steps_with_bad_times_or_references_are_refused(db: StatusDBImplementation) -> None:
    process = db.add_process_to_db(name="P", src="")
    experiment = db.create_experiment(process)
    db.add_container(_plate("A"))
    step = structures.ProcessStep(name="Read", main_device=structures.DeviceInfo(name="Reader"), data={"fct": "read"})
    with pytest.raises(StepTimeError, match="start is not set"):
        db.safe_step_to_db(step, None, experiment)
    now = datetime.now()
    step.start, step.finish = now, now - timedelta(seconds=1)
    with pytest.raises(StepTimeError, match="before start"):
        db.safe_step_to_db(step, None, experiment)
    step.finish = now + timedelta(seconds=3)
    with pytest.raises(UnknownExperimentError):
        db.safe_step_to_db(step, None, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(UnknownContainerError):
        db.safe_step_to_db(step, _plate("ghost"), experiment)
    with pytest.raises(UnknownProcessError):
        db.create_experiment("no-such-process")
    with pytest.raises(UnknownProcessError):
        db.get_process("no-such-process")
    assert db.get_experiment_summary(experiment).step_count == 0, "refused steps wrote nothing"
    db.safe_step_to_db(step, db.get_cont_info_by_barcode("A"), experiment)
    step.status = "completed"
    db.safe_step_to_db(step, db.get_cont_info_by_barcode("A"), experiment)
    summary = db.get_experiment_summary(experiment)
    assert summary.step_count == 1, "the same step uuid recorded twice is one step"
    assert summary.duration == pytest.approx(3.0)


def test_devices_from_the_lab_configuration_file(tmp_path: Path) -> None:
    config = tmp_path / "lab.yaml"
    config.write_text("devices:\n  Incubator: {positions: 3}\n  PlateReader: {positions: 1}\n")
    db = StatusDBImplementation(f"sqlite:///{tmp_path / 's.db'}", config_file=config, strict_devices=True)
    try:
        assert db.get_all_positions("Incubator") == [0, 1, 2]
        db.add_container(_plate("A", "Incubator", 2))
        with pytest.raises(UnknownDeviceError, match=r"positions 0\.\.0, not 1"):
            db.moved_container("Incubator", 2, "PlateReader", 1, "A")
        with pytest.raises(UnknownDeviceError, match="not in the lab configuration"):
            db.add_container(_plate("B", "Centrifuge", 0))
    finally:
        db.close()
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  Incubator: {positions: 0}\n")
    with pytest.raises(LabConfigError, match=r"bad\.yaml.*positions"):
        StatusDBImplementation(f"sqlite:///{tmp_path / 't.db'}", config_file=bad)


def test_concurrent_moves_into_one_position_let_exactly_one_in(db: StatusDBImplementation) -> None:
    for i in range(8):
        db.add_container(_plate(f"P{i}", "Storage", i))
    results: list[str] = []
    barrier = threading.Barrier(8)

    def move(i: int) -> None:
        barrier.wait()
        try:
            db.moved_container("Storage", i, "PlateReader", 0, f"P{i}")
            results.append("ok")
        except PositionOccupiedError:
            results.append("occupied")

    threads = [threading.Thread(target=move, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["occupied"] * 7 + ["ok"]
    holder = db.get_container_at_position("PlateReader", 0)
    assert holder is not None
    others = [c for c in db.get_containers() if c.barcode != holder.barcode]
    assert all(c.current_device == "Storage" for c in others), "losers stayed where they were"


async def test_async_api_serves_a_running_loop(db: StatusDBImplementation) -> None:
    await db.aio.add_container(_plate("A"))
    moved = await db.aio.moved_container("Hamilton_STAR", 0, "Incubator", 1, "A")
    assert (moved.current_device, moved.current_pos) == ("Incubator", 1)
    assert (await db.aio.get_cont_info_by_barcode("A")).current_pos == 1  # type: ignore[union-attr]
    assert db.get_cont_info_by_barcode("A").current_device == "Incubator"  # type: ignore[union-attr]


def test_default_database_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYWATS_LAB_DB", raising=False)
    monkeypatch.setenv("PYWATS_EVENTS_DB", f"sqlite:///{tmp_path / 'bus.db'}")
    shared = StatusDBImplementation()
    assert shared.settings.db.endswith("bus.db"), "beside the bus's own store"
    shared.close()
    monkeypatch.setenv("PYWATS_LAB_DB", f"sqlite:///{tmp_path / 'lab-only.db'}")
    own = StatusDBImplementation()
    assert own.settings.db.endswith("lab-only.db")
    own.close()
    monkeypatch.delenv("PYWATS_LAB_DB")
    monkeypatch.setenv("PYWATS_EVENTS_DB", "memory://")
    monkeypatch.chdir(tmp_path)
    default = StatusDBImplementation()
    default.get_devices()
    assert default.settings.db == "sqlite:///pywats-lab.db" and (tmp_path / "pywats-lab.db").exists()
    default.close()
    with pytest.raises(LabConfigError, match="unsupported database"):
        StatusDBImplementation("mysql://x/y")


def test_unreachable_database_is_a_status_db_error_without_the_password() -> None:
    from pywats_lab.errors import StatusDBError

    db = StatusDBImplementation("postgresql://lab:s3cret@127.0.0.1:1/lab")
    try:
        with pytest.raises(StatusDBError) as info:
            db.get_cont_info_by_barcode("A")
        assert "s3cret" not in str(info.value)
    finally:
        db.close()
