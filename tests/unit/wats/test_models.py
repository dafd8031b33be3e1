"""WSJF models: what they refuse (as the REST API would) and the exact wire shape they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from pywats_wats.models import (
    BooleanMeasurement,
    CompOp,
    NumericMeasurement,
    SeqCall,
    Step,
    StepStatus,
    StringMeasurement,
    UUTInfo,
    UUTReport,
    compare_numeric,
    compare_string,
)

START = datetime(2024, 5, 2, 10, 15, 30, tzinfo=timezone(timedelta(hours=2)))


def report(**changes: Any) -> UUTReport:
    fields: dict[str, Any] = {
        "id": "3f0c1a52-9b1e-4c1e-8a51-2f6f4b6c9d10",
        "pn": "PCBA-1000",
        "sn": "SN-000123",
        "rev": "A",
        "process_code": 10,
        "result": "P",
        "machine_name": "ICT-01",
        "location": "Line 3",
        "purpose": "Production",
        "start": START,
        "start_utc": START.astimezone(UTC),
        "uut": UUTInfo(user="BADGE489499", exec_time=12.5),
        "root": Step(
            step_type="SequenceCall",
            name="MainSequence Callback",
            status="P",
            seq_call=SeqCall(path="cfx://x", name="UnitsTested"),
            steps=[],
        ),
        **changes,
    }
    return UUTReport(**fields)


def test_report_serializes_to_the_wsjf_wire_names_without_nulls() -> None:
    step = Step(
        step_type="ET_NLT",
        name="Supply current",
        status="F",
        caused_uut_failure=True,
        numeric_meas=[NumericMeasurement(status="F", value=0.6, unit="A", comp_op=CompOp.LE, low_limit=0.5)],
    )
    body = report(
        root=report().root.model_copy(update={"steps": [step], "status": StepStatus.FAILED}), result="F"
    ).to_wsjf()
    assert body["startUTC"] == "2024-05-02T08:15:30.000Z"
    assert body["start"] == "2024-05-02T10:15:30.000+02:00"
    assert body["processCode"] == 10 and body["machineName"] == "ICT-01"
    assert body["uut"] == {"user": "BADGE489499", "execTime": 12.5}
    child = body["root"]["steps"][0]
    assert child["causedUUTFailure"] is True
    assert child["numericMeas"] == [{"status": "F", "value": 0.6, "unit": "A", "compOp": "LE", "lowLimit": 0.5}]
    assert "miscInfos" not in body and "highLimit" not in child["numericMeas"][0]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"sn": "SN*1"}, "sn"),
        ({"pn": "PN/2"}, "pn"),
        ({"pn": ""}, "pn"),
        ({"sn": "S" * 101}, "sn"),
        ({"result": "Q"}, "result"),
        ({"process_code": "ten"}, "process_code"),
        ({"start": START.replace(tzinfo=None)}, "offset"),
        ({"start_utc": START.astimezone(UTC) + timedelta(seconds=1)}, "startUTC"),
        ({"id": "not-a-guid"}, "id"),
    ],
)
def test_report_refuses_what_the_rest_api_refuses(change: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        report(**change)


def test_root_must_be_a_sequence_call() -> None:
    leaf = Step(step_type="ET_PFT", name="x", status="P", boolean_meas=[BooleanMeasurement(status="P")])
    with pytest.raises(ValidationError, match="root must be a SequenceCall"):
        report(root=leaf)


@pytest.mark.parametrize(
    ("op", "low", "high", "ok"),
    [
        (CompOp.GELE, 1.0, 2.0, True),
        (CompOp.GELE, 1.0, None, False),
        (CompOp.LE, 1.0, None, True),
        (CompOp.LE, None, 1.0, False),  # the single limit belongs in lowLimit
        (CompOp.LOG, None, None, True),
        (CompOp.LOG, 1.0, None, False),
        (CompOp.CASESENSIT, 1.0, None, False),
    ],
)
def test_numeric_comp_op_needs_exactly_its_limits(op: CompOp, low: float | None, high: float | None, ok: bool) -> None:
    def make() -> NumericMeasurement:
        return NumericMeasurement(status="P", value=1.5, comp_op=op, low_limit=low, high_limit=high)

    if ok:
        make()
    else:
        with pytest.raises(ValidationError):
            make()


def test_measurements_are_arrays_of_the_right_length_for_single_and_multi_steps() -> None:
    two = [NumericMeasurement(status="P", value=1.0), NumericMeasurement(status="P", value=2.0)]
    with pytest.raises(ValidationError, match="takes one measurement"):
        Step(step_type="ET_NLT", name="x", status="P", numeric_meas=two)
    with pytest.raises(ValidationError, match="every measurement needs a name"):
        Step(step_type="ET_MNLT", name="x", status="P", numeric_meas=two)
    named = [m.model_copy(update={"name": f"m{i}"}) for i, m in enumerate(two)]
    assert len(Step(step_type="ET_MNLT", name="x", status="P", numeric_meas=named).numeric_meas or []) == 2
    with pytest.raises(ValidationError, match="cannot carry booleanMeas"):
        Step(step_type="ET_NLT", name="x", status="P", numeric_meas=two[:1], boolean_meas=[{"status": "P"}])
    with pytest.raises(ValidationError, match="needs stringMeas"):
        Step(step_type="ET_SVT", name="x", status="P")
    with pytest.raises(ValidationError, match="needs seqCall"):
        Step(step_type="SequenceCall", name="x", status="P", steps=[])


def test_string_measurement_limit_follows_its_comp_op() -> None:
    StringMeasurement(status="P", value="1.4.2", comp_op=CompOp.CASESENSIT, limit="1.4.2")
    with pytest.raises(ValidationError):
        StringMeasurement(status="P", value="1.4.2", comp_op=CompOp.CASESENSIT)
    with pytest.raises(ValidationError):
        StringMeasurement(status="P", value="1.4.2", comp_op=CompOp.GELE, limit="x")


@pytest.mark.parametrize(
    ("op", "value", "low", "high", "passes"),
    [
        (CompOp.GELE, 28.3, 28.0, 28.4, True),
        (CompOp.GELE, 28300.0, 28.0, 28.4, False),
        (CompOp.GTLT, 28.0, 28.0, 28.4, False),
        (CompOp.LTGT, 30.0, 28.0, 28.4, True),
        (CompOp.LE, 0.41, 0.5, None, True),
        (CompOp.GE, 0.41, 0.5, None, False),
        (CompOp.EQ, 2.0, 2.0, None, True),
        (CompOp.NE, 2.0, 2.0, None, False),
    ],
)
def test_numeric_comparison(op: CompOp, value: float, low: float, high: float | None, passes: bool) -> None:
    assert compare_numeric(op, value, low, high) is passes


def test_string_comparison() -> None:
    assert compare_string(CompOp.IGNORECASE, "ABC", "abc")
    assert not compare_string(CompOp.CASESENSIT, "ABC", "abc")
    assert compare_string(CompOp.LOG, "anything", None)
