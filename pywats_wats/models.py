"""WSJF: the WATS Standard JSON Format UUT report, as pydantic models that serialize to what
``POST /api/Report/WSJF`` takes (``report.to_wsjf()``: camelCase keys, ``None`` left out).

Sources (see ``docs``/WATS.md §1-3): Virinco support "Post WSJF" (article 360014879119: required fields,
200/400 answers), "WATS Standard JSON Format" (article 360015705199: step types, the server does not compare
values with limits), and the field names of the olreppe/pyWATS report model (``report.py``, ``uut_info.py``,
``step.py``, ``measurement.py``, ``shared/enums.py`` CompOp).

Rules the models enforce, because the server rejects the report otherwise:

- measurements are always arrays (``numericMeas``, ``booleanMeas``, ``stringMeas``), one element for a
  single step, named elements for a multi step;
- a ``compOp`` comes with exactly the limits it needs (``COMP_OP_LIMITS``); a single limit goes in
  ``lowLimit`` (the convention of the real server export, even for ``LT``/``LE``);
- ``sn``/``pn`` are non-empty, at most 100 characters and free of ``* % ? [ ] ^ ! / \\``;
- ``start`` carries a UTC offset and ``startUTC`` is the same instant.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator
from pydantic.alias_generators import to_camel

__all__ = [
    "COMP_OP_LIMITS",
    "FORBIDDEN_SN_CHARACTERS",
    "Asset",
    "BooleanMeasurement",
    "CompOp",
    "Failure",
    "KnownStepType",
    "MiscInfo",
    "NumericMeasurement",
    "RepairSubUnit",
    "ReportResult",
    "SeqCall",
    "Step",
    "StepGroup",
    "StepStatus",
    "StringMeasurement",
    "SubUnit",
    "UURInfo",
    "UURReport",
    "UUTInfo",
    "UUTReport",
    "compare_numeric",
    "compare_string",
]

#: Characters WATS refuses in serial and part numbers (olreppe/pyWATS ``core/validation.py``).
FORBIDDEN_SN_CHARACTERS = frozenset("*%?[]^!/\\")


class StepStatus(StrEnum):
    """Step and measurement status letters (``common_types.py`` StepStatus)."""

    PASSED = "P"
    FAILED = "F"
    SKIPPED = "S"
    DONE = "D"
    ERROR = "E"
    TERMINATED = "T"


class ReportResult(StrEnum):
    """Report ``result`` letters the REST API takes (W1: P, F, E, T)."""

    PASSED = "P"
    FAILED = "F"
    ERROR = "E"
    TERMINATED = "T"


class StepGroup(StrEnum):
    """Setup, Main, Cleanup (``common_types.py`` StepGroup)."""

    SETUP = "S"
    MAIN = "M"
    CLEANUP = "C"


class CompOp(StrEnum):
    """Comparison operators (olreppe/pyWATS ``shared/enums.py`` CompOp)."""

    LOG = "LOG"
    EQ = "EQ"
    EQT = "EQT"
    NE = "NE"
    LT = "LT"
    LE = "LE"
    GT = "GT"
    GE = "GE"
    CASESENSIT = "CASESENSIT"
    IGNORECASE = "IGNORECASE"
    GELE = "GELE"
    GELT = "GELT"
    GTLE = "GTLE"
    GTLT = "GTLT"
    LTGT = "LTGT"
    LTGE = "LTGE"
    LEGT = "LEGT"
    LEGE = "LEGE"


#: How many limits each compOp needs: 0 (none), 1 (``lowLimit`` / string ``limit``), 2 (both).
COMP_OP_LIMITS: dict[CompOp, int] = {
    CompOp.LOG: 0,
    **{op: 1 for op in (CompOp.EQ, CompOp.EQT, CompOp.NE, CompOp.LT, CompOp.LE, CompOp.GT, CompOp.GE)},
    CompOp.CASESENSIT: 1,
    CompOp.IGNORECASE: 1,
    **{op: 2 for op in (CompOp.GELE, CompOp.GELT, CompOp.GTLE, CompOp.GTLT)},
    **{op: 2 for op in (CompOp.LTGT, CompOp.LTGE, CompOp.LEGT, CompOp.LEGE)},
}

_STRING_OPS = frozenset({CompOp.LOG, CompOp.EQ, CompOp.CASESENSIT, CompOp.IGNORECASE, CompOp.NE})


def compare_numeric(op: CompOp, value: float, low: float | None, high: float | None) -> bool:
    """Whether ``value`` passes ``op`` with its limits (single limit in ``low``; ``EQT`` is treated as
    ``EQ``, its tolerance is not part of WSJF). ``LOG`` always passes.

    Raises:
        ValueError: a limit the operator needs is missing.
    """
    need = COMP_OP_LIMITS[op]
    if (need >= 1 and low is None) or (need == 2 and high is None):
        raise ValueError(f"compOp {op.value} needs {need} limit(s)")
    lo, hi = float(low or 0.0), float(high or 0.0)
    tests: dict[CompOp, bool] = {
        CompOp.LOG: True,
        CompOp.EQ: value == lo,
        CompOp.EQT: value == lo,
        CompOp.NE: value != lo,
        CompOp.LT: value < lo,
        CompOp.LE: value <= lo,
        CompOp.GT: value > lo,
        CompOp.GE: value >= lo,
        CompOp.GELE: lo <= value <= hi,
        CompOp.GELT: lo <= value < hi,
        CompOp.GTLE: lo < value <= hi,
        CompOp.GTLT: lo < value < hi,
        CompOp.LTGT: value < lo or value > hi,
        CompOp.LTGE: value < lo or value >= hi,
        CompOp.LEGT: value <= lo or value > hi,
        CompOp.LEGE: value <= lo or value >= hi,
    }
    if op not in tests:
        raise ValueError(f"compOp {op.value} does not compare numbers")
    return tests[op]


def compare_string(op: CompOp, value: str, limit: str | None) -> bool:
    """Whether string ``value`` passes ``op`` against ``limit`` (``EQ`` and ``CASESENSIT`` compare exactly).

    Raises:
        ValueError: ``op`` is not a string operator, or its limit is missing.
    """
    if op not in _STRING_OPS:
        raise ValueError(f"compOp {op.value} does not compare strings")
    if op is CompOp.LOG:
        return True
    if limit is None:
        raise ValueError(f"compOp {op.value} needs a limit")
    if op is CompOp.IGNORECASE:
        return value.casefold() == limit.casefold()
    if op is CompOp.NE:
        return value != limit
    return value == limit


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown keys refused so a typo cannot vanish."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Text100 = Annotated[str, Field(max_length=100)]
Name100 = Annotated[str, Field(min_length=1, max_length=100)]


class NumericMeasurement(_Wire):
    """One element of ``numericMeas`` (``measurement.py``): ``value`` with ``compOp`` and the limits it needs."""

    name: Text100 | None = None
    status: StepStatus
    value: float
    unit: Text100 | None = None
    comp_op: CompOp = CompOp.LOG
    low_limit: float | None = None
    high_limit: float | None = None

    @model_validator(mode="after")
    def _limits(self) -> NumericMeasurement:
        need = COMP_OP_LIMITS[self.comp_op]
        if self.comp_op in (CompOp.CASESENSIT, CompOp.IGNORECASE):
            raise ValueError(f"compOp {self.comp_op.value} is for strings")
        have = (self.low_limit is not None) + (self.high_limit is not None)
        if need == 2 and have != 2:
            raise ValueError(f"compOp {self.comp_op.value} needs lowLimit and highLimit")
        if need == 1 and (self.low_limit is None or self.high_limit is not None):
            raise ValueError(f"compOp {self.comp_op.value} takes one limit, in lowLimit")
        if need == 0 and have:
            raise ValueError("compOp LOG takes no limits")
        return self


class BooleanMeasurement(_Wire):
    """One element of ``booleanMeas``: a pass/fail verdict (``name`` only in a multi step)."""

    name: Text100 | None = None
    status: StepStatus


class StringMeasurement(_Wire):
    """One element of ``stringMeas``: ``value`` compared with ``limit`` by ``compOp``."""

    name: Text100 | None = None
    status: StepStatus
    value: str
    comp_op: CompOp = CompOp.LOG
    limit: str | None = None

    @model_validator(mode="after")
    def _limit(self) -> StringMeasurement:
        if self.comp_op not in _STRING_OPS:
            raise ValueError(f"compOp {self.comp_op.value} does not compare strings")
        if (self.comp_op is CompOp.LOG) != (self.limit is None):
            raise ValueError(f"compOp {self.comp_op.value}: limit must be {'absent' if self.limit else 'given'}")
        return self


class SeqCall(_Wire):
    """``seqCall`` of a SequenceCall step: path, name and version are required by the server."""

    path: Name100
    name: Name100
    version: Name100 | None = "1.0.0"  # None only in a loop iteration (``Step.loop``), as servers export it


#: The step types WSJF names (support article 360015705199; each pair is one kind). Others that real
#: servers export (``WATS_XYGMNLT``, a chart with named numeric measurements) are accepted as they are.
KnownStepType = Literal[
    "SequenceCall",
    "WATS_SeqCall",
    "ET_NLT",
    "NumericLimitTest",
    "ET_MNLT",
    "MultiNumericLimitTest",
    "ET_PFT",
    "PassFailTest",
    "ET_MPFT",
    "MultiBooleanTest",
    "ET_SVT",
    "StringValueTest",
    "ET_MSVT",
    "MultiStringTest",
    "Action",
    "ET_A",
]

_SINGLE = frozenset({"ET_NLT", "NumericLimitTest", "ET_PFT", "PassFailTest", "ET_SVT", "StringValueTest"})
_SEQUENCE = frozenset({"SequenceCall", "WATS_SeqCall"})
_KEY_OF = {
    "ET_NLT": "numeric_meas",
    "NumericLimitTest": "numeric_meas",
    "ET_MNLT": "numeric_meas",
    "MultiNumericLimitTest": "numeric_meas",
    "ET_PFT": "boolean_meas",
    "PassFailTest": "boolean_meas",
    "ET_MPFT": "boolean_meas",
    "MultiBooleanTest": "boolean_meas",
    "ET_SVT": "string_meas",
    "StringValueTest": "string_meas",
    "ET_MSVT": "string_meas",
    "MultiStringTest": "string_meas",
}
_MULTI = frozenset({"ET_MNLT", "MultiNumericLimitTest", "ET_MPFT", "MultiBooleanTest", "ET_MSVT", "MultiStringTest"})


class Step(_Wire):
    """One step of the tree (``step.py``). ``SequenceCall`` steps hold ``steps`` and ``seq_call``; test
    steps hold the one measurement array their ``step_type`` names.

    Raises (on construction):
        ValidationError: a measurement array where the type takes none, a missing one, a single step with
            more than one element, or a multi step element without a name.
    """

    step_type: Annotated[str, Field(min_length=1, max_length=100)]
    name: Name100
    group: StepGroup = StepGroup.MAIN
    status: StepStatus
    start: datetime | None = None
    tot_time: float | None = Field(default=None, ge=0)
    error_code: int | None = None
    error_message: str | None = None
    report_text: str | None = None
    caused_uut_failure: bool | None = Field(default=None, alias="causedUUTFailure")
    caused_seq_failure: bool | None = None
    id: int | None = None
    ts_guid: str | None = None
    # Kept as sent (TestStand loop counters, chart series, attachments); the server defines their insides.
    loop: dict[str, Any] | None = None
    chart: dict[str, Any] | None = None
    attachment: dict[str, Any] | None = None
    additional_results: list[Any] | None = None
    call_exe: dict[str, Any] | None = None
    message_popup: dict[str, Any] | None = None
    seq_call: SeqCall | None = None
    steps: list[Step] | None = None
    numeric_meas: list[NumericMeasurement] | None = None
    boolean_meas: list[BooleanMeasurement] | None = None
    string_meas: list[StringMeasurement] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Step:
        present = [k for k in ("numeric_meas", "boolean_meas", "string_meas") if getattr(self, k) is not None]
        key = _KEY_OF.get(self.step_type)
        if key is None and self.step_type not in _SEQUENCE and len(present) == 1:
            key = present[0]  # a step type WSJF does not name: its one measurement array decides
        for other in present:
            if other != key:
                raise ValueError(f"step {self.name!r} ({self.step_type}) cannot carry {to_camel(other)}")
        if self.step_type in _SEQUENCE:
            if self.seq_call is None or self.steps is None:
                raise ValueError(f"SequenceCall {self.name!r} needs seqCall and steps")
            if self.seq_call.version is None and self.loop is None:
                raise ValueError(f"SequenceCall {self.name!r}: seqCall.version is required")
        elif self.steps is not None or self.seq_call is not None:
            raise ValueError(f"step {self.name!r} ({self.step_type}) cannot hold steps")
        if key is not None:
            meas = getattr(self, key)
            if meas is None and self.loop is not None:
                return self  # a loop's summary step: its iterations carry the measurements
            if not meas:
                raise ValueError(f"step {self.name!r} ({self.step_type}) needs {to_camel(key)} (an array)")
            if self.step_type not in _SINGLE:
                if len(meas) > 1 and any(m.name is None for m in meas):
                    raise ValueError(f"multi step {self.name!r}: every measurement needs a name")
            elif len(meas) != 1:
                raise ValueError(f"step {self.name!r} ({self.step_type}) takes one measurement, got {len(meas)}")
        return self

    @field_serializer("start")
    def _iso(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat(timespec="milliseconds")


class MiscInfo(_Wire):
    """``miscInfos`` element: key/value metadata, ``text`` ≤100 or ``numeric``."""

    description: Name100
    text: Text100 | None = None
    numeric: float | None = None


class SubUnit(_Wire):
    """``subUnits`` element: a component or sub-assembly (``sub_unit.py``)."""

    part_type: Annotated[str, Field(min_length=1, max_length=50)]
    sn: Name100
    pn: Name100
    rev: Text100 | None = None
    position: int | None = None


class Asset(_Wire):
    """``assets`` element: equipment used, with its usage count (``report_models/asset.py``)."""

    sn: Name100
    usage_count: int | None = Field(default=None, ge=0)


class UUTInfo(_Wire):
    """``uut``: operator, execution time (seconds) and test-station details (``uut_info.py``,
    ``report_info.py``)."""

    user: Text100 | None = None
    exec_time: float | None = Field(default=None, ge=0)
    comment: str | None = None
    fixture_id: Text100 | None = None
    test_socket_index: int | None = None
    batch_sn: Text100 | None = Field(default=None, alias="batchSN")
    batch_fail_count: int | None = None
    batch_loop_index: int | None = None
    error_code: int | None = None
    error_message: str | None = None
    step_id_caused_uut_failure: int | None = Field(default=None, alias="stepIdCausedUUTFailure")


class _Report(_Wire):
    """Fields every report type shares (``report.py``); see ``UUTReport`` and ``UURReport``."""

    id: str = Field(pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
    pn: Name100
    sn: Name100
    rev: Name100
    process_code: int
    process_name: Text100 | None = None
    result: ReportResult
    machine_name: Name100
    location: Name100
    purpose: Name100
    start: datetime
    start_utc: datetime = Field(alias="startUTC")
    misc_infos: list[MiscInfo] | None = None
    assets: list[Asset] | None = None
    additional_data: list[Any] | None = None

    @field_validator("pn", "sn")
    @classmethod
    def _characters(cls, value: str) -> str:
        bad = sorted(set(value) & FORBIDDEN_SN_CHARACTERS)
        if bad:
            raise ValueError(f"{value!r} contains {''.join(bad)!r}, which WATS refuses in serial/part numbers")
        return value

    @model_validator(mode="after")
    def _times(self) -> _Report:
        if self.start.tzinfo is None:
            raise ValueError("start needs a UTC offset")
        if self.start_utc.tzinfo is None or self.start_utc != self.start:
            raise ValueError("startUTC must be the same instant as start, in UTC")
        return self

    @field_serializer("start")
    def _start(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds")

    @field_serializer("start_utc")
    def _start_utc(self, value: datetime) -> str:
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_wsjf(self) -> dict[str, Any]:
        """The JSON body WATS takes: camelCase keys, ``None`` values left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class UUTReport(_Report):
    """A UUT (test) report, type ``T``. ``to_wsjf()`` gives the body of ``POST /api/Report/WSJF``.

    ``id`` is the caller's: posting the same id again overwrites the stored report (``report.py``), which
    is what makes a redelivered event harmless.

    Raises (on construction):
        ValidationError: a missing or too long field, a forbidden character in ``sn``/``pn``, a ``start``
            without UTC offset, ``startUTC`` another instant than ``start``, or a ``root`` that is not a
            SequenceCall.
    """

    type: Literal["T"] = "T"
    uut: UUTInfo
    root: Step
    sub_units: list[SubUnit] | None = None

    @model_validator(mode="after")
    def _root(self) -> UUTReport:
        if self.root.step_type not in _SEQUENCE:
            raise ValueError("root must be a SequenceCall")
        return self


class Failure(_Wire):
    """One failure found and repaired on a (sub)unit (olreppe/pyWATS ``uur/uur_failure.py``): a fail code
    of the server's repair categories, the component, the repair comment."""

    category: Name100
    code: Name100
    comment: str | None = None
    com_ref: Text100 | None = None
    ref_step_id: int | None = None


class RepairSubUnit(SubUnit):
    """``subUnits`` element of a repair report: ``idx`` 0 is the repaired unit itself (``uur_sub_unit.py``)."""

    idx: int = Field(default=0, ge=0)
    failures: list[Failure] | None = None


class UURInfo(_Wire):
    """``uur`` of a repair report (``uur/uur_info.py``): who repaired, how long (seconds), the test operation
    that found the failure (``processCode``) and the failed UUT report (``refUUT``)."""

    user: Text100 | None = None
    comment: str | None = None
    exec_time: float | None = Field(default=None, ge=0)
    process_code: int | None = None
    process_name: Text100 | None = None
    ref_uut: str | None = Field(default=None, alias="refUUT")
    confirm_date: datetime | None = None
    finalize_date: datetime | None = None
    active: bool | None = None

    @field_serializer("confirm_date", "finalize_date")
    def _iso(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat(timespec="milliseconds")


class UURReport(_Report):
    """A UUR (repair) report, type ``R``: the report's ``processCode`` is the repair operation, ``uur`` names
    the test operation that failed, ``subUnits`` carry the failures (``uur/uur_report.py``).

    Raises (on construction):
        ValidationError: as ``UUTReport``, or no sub-unit with ``idx`` 0.
    """

    type: Literal["R"] = "R"
    uur: UURInfo
    sub_units: list[RepairSubUnit]

    @model_validator(mode="after")
    def _main_unit(self) -> UURReport:
        if not any(u.idx == 0 for u in self.sub_units):
            raise ValueError("subUnits needs the repaired unit itself, idx 0")
        return self
