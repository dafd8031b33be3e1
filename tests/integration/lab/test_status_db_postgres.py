"""The status DB on PostgreSQL: the same calls, shared by two independent instances (as two processes
would share it), with concurrent moves racing for one position."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta

import pytest

from pywats_lab import structures
from pywats_lab.errors import ContainerNotAtPositionError, PositionOccupiedError
from pywats_lab.status_db import StatusDBImplementation
from pywats_lab.testing import generate_history
from tests.pg import fresh_database

pytestmark = pytest.mark.services


async def test_two_instances_share_positions_and_race_safely() -> None:
    async with fresh_database() as url:
        first, second = await asyncio.gather(
            asyncio.to_thread(StatusDBImplementation, url), asyncio.to_thread(StatusDBImplementation, url)
        )
        try:
            await asyncio.to_thread(_race, first, second)
        finally:
            await first.aclose()
            await second.aclose()


def _race(first: StatusDBImplementation, second: StatusDBImplementation) -> None:
    process = first.add_process_to_db(name="Assay", src="")
    experiment = second.create_experiment(process)
    for i in range(10):
        (first if i % 2 else second).add_container(
            structures.ContainerInfo(name=f"P{i}", current_device="Storage", current_pos=i, barcode=f"P{i}")
        )
    results: list[str] = []
    barrier = threading.Barrier(10)

    def move(i: int) -> None:
        db = first if i % 2 else second
        barrier.wait()
        try:
            db.moved_container("Storage", i, "Reader", 0, f"P{i}")
            results.append("ok")
        except PositionOccupiedError:
            results.append("occupied")

    threads = [threading.Thread(target=move, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["occupied"] * 9 + ["ok"]
    holder = second.get_container_at_position("Reader", 0)
    assert holder is not None
    assert first.get_cont_info_by_barcode(holder.barcode).current_device == "Reader"  # type: ignore[union-attr]
    with pytest.raises(ContainerNotAtPositionError):
        first.moved_container("Storage", 0, "Reader", 1, holder.barcode)

    step = structures.ProcessStep(
        name="Read", main_device=structures.DeviceInfo(name="Reader"), data={"fct": "absorbance"}
    )
    step.start = datetime.now()
    step.finish = step.start + timedelta(seconds=30)
    first.safe_step_to_db(step, holder, experiment)
    summary = second.get_experiment_summary(experiment)
    assert summary.step_count == 1 and summary.duration == pytest.approx(30.0)
    durations = generate_history(
        second, count=200, device="Reader", fct="absorbance", duration=lambda r: r.uniform(5, 6)
    )
    assert first.get_estimated_duration(step, 1.0) == pytest.approx(max([*durations, 30.0]), abs=1e-6)
    second.optimize()  # VACUUM (ANALYZE) on an autocommit connection
    assert first.get_estimated_duration(step, 1.0) == pytest.approx(max([*durations, 30.0]), abs=1e-6)
