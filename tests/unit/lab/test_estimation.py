"""Duration estimates against generated histories with a known distribution (the document's examples)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywats_lab import structures
from pywats_lab.estimation import nearest_rank_quantile
from pywats_lab.status_db import StatusDBImplementation
from pywats_lab.testing import generate_history

READ = structures.ProcessStep(
    name="Read Absorbance",
    main_device=structures.DeviceInfo(name="PlateReader"),
    data={"fct": "absorbance", "method": "endpoint_570nm"},
)
MOVE = structures.MoveStep(
    name="Move to Reader",
    main_device=structures.DeviceInfo(name="RoboticArm"),
    origin_device=structures.DeviceInfo(name="Hamilton_STAR"),
    target_device=structures.DeviceInfo(name="PlateReader"),
    origin_pos=0,
    destination_pos=0,
    data={"fct": "move"},
)


def test_protocol_estimate_is_the_nearest_rank_quantile_of_the_window(db: StatusDBImplementation) -> None:
    durations = generate_history(
        db, count=3000, device="PlateReader", fct="absorbance", data=READ.data, duration=lambda r: r.uniform(60, 120)
    )
    window = durations[-db.settings.history_window :]
    estimate = db.get_estimated_duration(READ, confidence=0.95)
    assert estimate == pytest.approx(nearest_rank_quantile(window, 0.95), abs=1e-6)
    # Uniform(60, 120): the 95th percentile is 117; 1000 samples put the estimate within a second of it.
    assert estimate == pytest.approx(117.0, abs=1.0)
    assert db.get_estimated_duration(READ, confidence=0.5) == pytest.approx(90.0, abs=2.5)
    db.optimize()
    assert db.get_estimated_duration(READ, confidence=0.95) == estimate, "statistics change speed, not answers"


def test_move_estimate_is_the_maximum_observed_for_the_device_pair(db: StatusDBImplementation) -> None:
    pair = generate_history(
        db, count=500, device="RoboticArm", fct="move", kind="move", origin_device="Hamilton_STAR",
        target_device="PlateReader", duration=lambda r: r.gauss(20, 2), seed=1,
    )
    generate_history(
        db, count=50, device="RoboticArm", fct="move", kind="move", origin_device="Incubator",
        target_device="PlateReader", duration=lambda r: 99.0, seed=2,
    )
    assert db.get_estimated_duration(MOVE, confidence=0.95) == pytest.approx(max(pair), abs=1e-6)
    at_half = db.get_estimated_duration(MOVE, confidence=0.5)
    assert at_half == pytest.approx(max(pair), abs=1e-6), "the document's rule: maximum for moves"


def test_general_fallback_ignores_parameters_then_device(db: StatusDBImplementation) -> None:
    other = generate_history(
        db, count=40, device="PlateReader", fct="absorbance", data={"fct": "absorbance", "wavelength": 450},
        duration=lambda r: r.uniform(10, 20),
    )
    expected = pytest.approx(nearest_rank_quantile(other, 0.95), abs=1e-6)
    assert db.get_estimated_duration(READ, 0.95) == expected, "same fct, other params"
    elsewhere = structures.ProcessStep(name="r", main_device=structures.DeviceInfo(name="Reader2"), data=READ.data)
    assert db.get_estimated_duration(elsewhere, 0.95) == expected, "same fct, any device"


def test_few_samples_give_the_maximum_and_none_without_history(db: StatusDBImplementation) -> None:
    small = generate_history(
        db, count=7, device="PlateReader", fct="absorbance", data=READ.data, duration=lambda r: r.uniform(1, 50)
    )
    few = db.get_estimated_duration(READ, 0.95)
    assert few == pytest.approx(max(small), abs=1e-6), "fewer than 1/(1-c) samples: the maximum"
    steps = [
        structures.ProcessStep(name="Dispense", main_device=structures.DeviceInfo(name="Hamilton_STAR"),
                               data={"fct": "dispense", "volume": 50}),
        MOVE,
        READ,
    ]
    durations = db.get_estimated_durations(steps, confidence=0.95)
    assert durations[:2] == [None, None]
    assert durations[2] == pytest.approx(max(small), abs=1e-6)
    with pytest.raises(ValueError, match="confidence"):
        db.get_estimated_duration(READ, confidence=0)
    with pytest.raises(ValueError, match="confidence"):
        db.get_estimated_duration(READ, confidence=1.5)


def test_parameter_order_does_not_matter(db: StatusDBImplementation) -> None:
    generate_history(
        db, count=20, device="PlateReader", fct="absorbance", data={"fct": "absorbance", "a": 1, "b": 2},
        duration=lambda r: 5.0,
    )
    generate_history(
        db, count=20, device="PlateReader", fct="absorbance", data={"fct": "absorbance", "a": 9},
        duration=lambda r: 50.0, seed=3,
    )
    step = structures.ProcessStep(name="r", main_device=structures.DeviceInfo(name="PlateReader"),
                                  data={"b": 2, "fct": "absorbance", "a": 1})
    assert db.get_estimated_duration(step) == pytest.approx(5.0, abs=1e-6)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200), st.floats(0.01, 1.0))
def test_nearest_rank_quantile_bounds(samples: list[float], confidence: float) -> None:
    q = nearest_rank_quantile(samples, confidence)
    assert q in samples
    rank = max(1, math.ceil(confidence * len(samples) - 1e-9))
    assert sum(1 for s in samples if s <= q) >= rank, "at least a share c of the samples are <= the estimate"
    assert sum(1 for s in samples if s < q) < rank, "and it is the smallest such sample"
