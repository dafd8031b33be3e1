"""Test and inspection results → WSJF UUT reports (WATS.md §6).

The input contract (``TestResultPayload``, JSON Schema from ``input_schema()``, published as
``samples/wats/test-result.schema.json``) is the payload of ``test.result`` and ``inspection.result``
events as the CFX adapters make them from ``CFX.Production.TestAndInspection.UnitsTested`` /
``UnitsInspected``, plus the optional product keys an MQTT or webhook producer may send (``part_number``,
``revision``, ``process_code``, ``station``, ``location``, ``purpose``). A payload with a ready-made report
under ``wsjf`` is validated and passed through.

Mapping, in short: report ``id`` = event id (posting it again overwrites, so a redelivered message never
duplicates); ``sn`` = ``unit_id``; every status is set here, because the WATS REST API does not compare
values with limits (Virinco support article 360015705199); a failing step makes its parents and the report
fail and is marked ``causedUUTFailure``; symptoms and defects become ``errorMessage`` (``CODE: description``)
and ``reportText``; the CFX transaction id, unique id, recipe and unit position become ``miscInfos``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pywats_events import jsonsafe
from pywats_events.event import Event

from .errors import ReportBuildError, WatsConfigError
from .models import (
    FORBIDDEN_SN_CHARACTERS,
    Asset,
    BooleanMeasurement,
    CompOp,
    Failure,
    MiscInfo,
    NumericMeasurement,
    RepairSubUnit,
    ReportResult,
    SeqCall,
    Step,
    StepStatus,
    StringMeasurement,
    UURInfo,
    UURReport,
    UUTInfo,
    UUTReport,
    compare_numeric,
)
from .settings import Product, ReportSettings

__all__ = [
    "InspectionInput",
    "MeasurementInput",
    "RepairInput",
    "RepairResultPayload",
    "ReportBuilder",
    "TestInput",
    "TestResultPayload",
    "input_schema",
]

Outcome = Literal["pass", "fail", "error", "aborted", "skipped"]


class _Input(BaseModel):
    # Producers add their own keys (the CFX adapters carry cfx_message, handle, ...): kept, not refused.
    model_config = ConfigDict(extra="allow")


class DefectInput(_Input):
    """A defect or symptom: ``code``, ``description``, ``category``, ``component`` / ``components``."""

    code: str | None = None
    description: str | None = None
    category: str | None = None
    component: str | None = None
    components: list[str] = Field(default_factory=list)


class MeasurementInput(_Input):
    """One measurement of a test: a number (limits optional) or any other value (logged as text)."""

    name: str | None = None
    value: Any = None
    units: str | None = None
    expected_value: float | None = None
    low_limit: float | None = None
    high_limit: float | None = None
    result: Outcome | None = None


class TestInput(_Input):
    """One test of a unit (CFX ``Test``); without a name the step is named by ``id`` or position."""

    name: str | None = None
    id: str | None = None
    result: Outcome | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    measurements: list[MeasurementInput] = Field(default_factory=list)
    symptoms: list[DefectInput] = Field(default_factory=list)
    defects: list[DefectInput] = Field(default_factory=list)


class InspectionInput(_Input):
    """One inspection of a unit (CFX ``Inspection``); without a name the step is named by ``id`` or position."""

    name: str | None = None
    id: str | None = None
    result: Outcome | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    defects: list[DefectInput] = Field(default_factory=list)


class TestResultPayload(_Input):
    """The payload of a ``test.result`` / ``inspection.result`` event that the ``wats-report`` handler takes.

    ``unit_id`` and ``result`` are required unless ``wsjf`` holds a ready-made report. Times are ISO 8601
    with offset (a time without one is taken as UTC).
    """

    unit_id: str | None = None
    result: Outcome | None = None
    unit_position: int | None = None
    is_panel: bool = False
    method: str | None = None
    recipe: str | None = None
    recipe_revision: str | None = None
    operator_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    transaction_id: str | None = None
    unique_id: str | None = None
    handle: str | None = None
    tests: list[TestInput] = Field(default_factory=list)
    inspections: list[InspectionInput] = Field(default_factory=list)
    part_number: str | None = None
    revision: str | None = None
    process_code: int | None = None
    station: str | None = None
    location: str | None = None
    purpose: str | None = None
    wsjf: dict[str, Any] | None = None


class RepairInput(_Input):
    """One repair of a unit (CFX ``UnitsRepaired`` ``Repair``): ``code``/``category`` name the WATS fail
    code (default: ``name`` and the handler's ``failure_category``)."""

    name: str | None = None
    code: str | None = None
    category: str | None = None
    comments: str | None = None
    component: str | None = None
    part_number: str | None = None


class RepairResultPayload(_Input):
    """The payload of a ``repair.result`` event, for a repair report (type ``R``).

    ``failed_report_id`` is the id of the UUT report the repair answers (WSJF ``uur.refUUT``);
    ``test_process_code`` the test operation that found the failure (default: the product's process code).
    """

    unit_id: str | None = None
    result: Outcome | None = None
    operator_id: str | None = None
    comment: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    failed_report_id: str | None = None
    test_process_code: int | None = None
    transaction_id: str | None = None
    unique_id: str | None = None
    recipe: str | None = None
    method: str | None = None
    repairs: list[RepairInput] = Field(default_factory=list)
    part_number: str | None = None
    revision: str | None = None
    process_code: int | None = None
    station: str | None = None
    location: str | None = None
    purpose: str | None = None


def input_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``TestResultPayload``, the documented input contract."""
    schema = TestResultPayload.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pyWATS events test.result / inspection.result payload"
    return schema


_STATUS: dict[str, StepStatus] = {
    "pass": StepStatus.PASSED,
    "fail": StepStatus.FAILED,
    "error": StepStatus.ERROR,
    "aborted": StepStatus.TERMINATED,
    "skipped": StepStatus.SKIPPED,
}
_RESULT: dict[str, ReportResult] = {
    "pass": ReportResult.PASSED,
    "fail": ReportResult.FAILED,
    "error": ReportResult.ERROR,
    "aborted": ReportResult.TERMINATED,
    "skipped": ReportResult.TERMINATED,
}
# Which child status decides the parent's, strongest first.
_RANK = (StepStatus.FAILED, StepStatus.ERROR, StepStatus.TERMINATED, StepStatus.PASSED, StepStatus.DONE)
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def _cut(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parent_status(children: Iterable[StepStatus]) -> StepStatus:
    seen = set(children)
    for status in _RANK:
        if status in seen:
            return status
    return StepStatus.SKIPPED if seen else StepStatus.DONE


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z"):
        return UTC
    m = _OFFSET.match(name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WatsConfigError(f"timezone: {name!r} is neither UTC, +HH:MM nor an IANA zone name") from None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _defect_text(defects: Iterable[DefectInput]) -> tuple[str | None, str | None]:
    """``(errorMessage, reportText)``: ``CODE: description`` joined, and the long form with components."""
    short, long = [], []
    for d in defects:
        head = ": ".join(p for p in (d.code, d.description) if p) or d.category or "defect"
        short.append(head)
        where = [d.component] if d.component else d.components
        extra = ", ".join(p for p in (d.category, " ".join(where) if where else None) if p)
        long.append(f"{head} ({extra})" if extra else head)
    if not short:
        return None, None
    return "; ".join(short), "\n".join(long)


class ReportBuilder:
    """Builds the WSJF report of one ``test.result`` / ``inspection.result`` event.

    Args:
        settings: the ``wats-report`` options (product defaults, maps, time zone, verdict).

    Raises:
        WatsConfigError: the time zone or the resolver cannot be used.
    """

    def __init__(self, settings: ReportSettings) -> None:
        self.settings = settings
        self.zone = _zone(settings.timezone)
        self._defaults = settings.defaults()
        self._resolver: Callable[[Event], Mapping[str, Any] | None] | None = None
        if settings.resolver:
            module_name, _, attr = settings.resolver.partition(":")
            try:
                self._resolver = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise WatsConfigError(f"resolver: cannot load {settings.resolver!r}: {exc}") from None

    # -- product fields ----------------------------------------------------------------------
    def product(self, event: Event, payload: TestResultPayload) -> Product:
        """The product fields of ``event``: defaults < method < station < recipe < resolver < payload.

        Raises:
            ReportBuildError: the resolver returned something that is not product fields.
        """
        fields = self._defaults.model_dump()

        def merge(values: Mapping[str, Any] | Product | None) -> None:
            if values is None:
                return
            items = values.model_dump() if isinstance(values, Product) else values
            fields.update({k: v for k, v in items.items() if v is not None})

        s = self.settings
        if payload.method and payload.method.lower() in s.process_codes:
            fields["process_code"] = s.process_codes[payload.method.lower()]
        merge(s.stations.get(event.source))
        if payload.recipe:
            merge(s.recipes.get(payload.recipe))
        if self._resolver is not None:
            resolved = self._resolver(event)
            try:
                merge(Product.model_validate(dict(resolved or {})))
            except (ValidationError, TypeError, ValueError) as exc:
                raise ReportBuildError(
                    f"resolver {s.resolver} returned invalid product fields: {exc}", event.id
                ) from None
        merge(
            {
                "part_number": payload.part_number,
                "revision": payload.revision,
                "process_code": payload.process_code,
                "machine_name": payload.station,
                "location": payload.location,
                "purpose": payload.purpose,
            }
        )
        return Product(**fields)

    # -- report ------------------------------------------------------------------------------
    def build_repair(self, event: Event) -> UURReport:
        """The repair report (type ``R``) of a ``repair.result`` event: ``processCode`` = the configured
        ``repair_process_code``, the repaired unit as sub-unit 0 with one failure per repair.

        Raises:
            ReportBuildError: no ``repair_process_code`` configured, or the payload breaks its contract.
        """
        try:
            payload = RepairResultPayload.model_validate(event.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise ReportBuildError(f"payload.{where}: {first['msg']}", event.id) from None
        s = self.settings
        if s.repair_process_code is None:
            raise ReportBuildError("no repair_process_code configured for repair reports", event.id)
        sn = self._serial(event, payload.unit_id)
        product = self.product(event, TestResultPayload.model_validate(payload.model_dump()))
        self._require(event, product, ("part_number", "revision", "location", "purpose"))
        start = _aware(payload.start_time or event.timestamp)
        end = payload.end_time
        failures = [
            Failure(
                category=_cut(r.category or s.failure_category),
                code=_cut(r.code or r.name or "Repair"),
                comment=r.comments,
                com_ref=_cut(r.component) if r.component else None,
            )
            for r in payload.repairs
        ]
        misc = [
            MiscInfo(description=k, text=_cut(v))
            for k, v in (("cfx.transaction_id", payload.transaction_id), ("cfx.unique_id", payload.unique_id))
            if v
        ]
        try:
            return UURReport(
                id=event.id,
                pn=product.part_number or "",
                sn=sn,
                rev=product.revision or "",
                process_code=s.repair_process_code,
                process_name=s.repair_process_name,
                result=_RESULT[payload.result or "pass"],
                machine_name=_cut(product.machine_name or event.source),
                location=product.location or "",
                purpose=product.purpose or "",
                start=start.astimezone(self.zone),
                start_utc=start.astimezone(UTC),
                uur=UURInfo(
                    user=_cut(payload.operator_id) if payload.operator_id else None,
                    comment=payload.comment,
                    exec_time=max(0.0, (_aware(end) - start).total_seconds()) if end else None,
                    process_code=payload.test_process_code or product.process_code,
                    ref_uut=payload.failed_report_id,
                ),
                sub_units=[
                    RepairSubUnit(
                        part_type="Main",
                        sn=sn,
                        pn=product.part_number or "",
                        rev=product.revision,
                        idx=0,
                        failures=failures or None,
                    )
                ],
                misc_infos=misc or None,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ReportBuildError(f"report field {where}: {first['msg']}", event.id) from None

    @staticmethod
    def _serial(event: Event, sn: str | None) -> str:
        if not sn:
            raise ReportBuildError("payload.unit_id is missing: WATS needs a serial number", event.id)
        bad = sorted(set(sn) & FORBIDDEN_SN_CHARACTERS)
        if bad or len(sn) > 100:
            why = f"contains {''.join(bad)!r}" if bad else "is longer than 100 characters"
            raise ReportBuildError(f"payload.unit_id {sn[:40]!r} {why}, which WATS refuses", event.id)
        return sn

    @staticmethod
    def _require(event: Event, product: Product, keys: Iterable[str]) -> None:
        hints = {
            "part_number": "part_number, or map it by station/recipe",
            "process_code": "process_code, or process_codes by method",
        }
        for key in keys:
            if getattr(product, key) in (None, ""):
                raise ReportBuildError(f"no {key} for this report: configure {hints.get(key, key)}", event.id)

    def build(self, event: Event) -> UUTReport | UURReport | None:
        """The report for ``event`` (a UUR for ``repair.result``, else a UUT); ``None`` when the settings
        drop it (a skipped unit with ``skipped = "drop"``).

        Raises:
            ReportBuildError: the payload breaks the input contract, or lacks what a report needs
                (serial number, part number, revision, process code, location, purpose); the message
                names the field.
        """
        try:
            payload = TestResultPayload.model_validate(event.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise ReportBuildError(f"payload.{where}: {first['msg']}", event.id) from None
        if event.type == "repair.result":
            return self.build_repair(event)
        if payload.wsjf is not None:
            return self._passthrough(event, payload.wsjf)
        if payload.result == "skipped" and self.settings.skipped == "drop":
            return None
        sn = self._serial(event, payload.unit_id)
        if payload.result is None:
            raise ReportBuildError("payload.result is missing (pass, fail, error, aborted, skipped)", event.id)
        product = self.product(event, payload)
        self._require(event, product, ("part_number", "revision", "process_code", "location", "purpose"))

        if event.type == "inspection.result" or (payload.inspections and not payload.tests):
            steps, times = self._inspection_steps(payload)
            seq_name = "UnitsInspected"
        else:
            steps, times = self._test_steps(payload)
            seq_name = "UnitsTested"
        cfx_message = str(event.payload.get("cfx_message") or "")
        if cfx_message:
            seq_name = cfx_message.rsplit(".", 1)[-1]
        root_status = _parent_status(s.status for s in steps)
        root = Step(
            step_type="SequenceCall",
            name="MainSequence Callback",
            status=root_status,
            seq_call=SeqCall(path=_cut(f"cfx://{payload.handle or event.source}"), name=_cut(seq_name)),
            steps=steps,
        )
        result = ReportResult.FAILED if root_status is StepStatus.FAILED else _RESULT[payload.result]
        starts = [t for t, _ in times if t is not None]
        ends = [t for _, t in times if t is not None]
        start = _aware(min(starts) if starts else payload.start_time or event.timestamp)
        end = max(ends) if ends else payload.end_time
        exec_time = max(0.0, (_aware(end) - start).total_seconds()) if end is not None else None
        failing = next((s for s in steps if s.status is StepStatus.FAILED), None)
        try:
            return UUTReport(
                id=event.id,
                pn=product.part_number or "",
                sn=sn,
                rev=product.revision or "",
                process_code=product.process_code or 0,
                process_name=product.process_name,
                result=result,
                machine_name=_cut(product.machine_name or event.source),
                location=product.location or "",
                purpose=product.purpose or "",
                start=start.astimezone(self.zone),
                start_utc=start.astimezone(UTC),
                uut=UUTInfo(
                    user=_cut(payload.operator_id) if payload.operator_id else None,
                    exec_time=exec_time,
                    fixture_id=_cut(product.fixture) if product.fixture else None,
                    test_socket_index=payload.unit_position,
                    error_message=failing.error_message if failing is not None else None,
                ),
                root=root,
                misc_infos=self._misc(payload, result) or None,
                assets=[Asset(sn=product.fixture, usage_count=self.settings.fixture_usage)]
                if product.fixture
                else None,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ReportBuildError(f"report field {where}: {first['msg']}", event.id) from None

    def _passthrough(self, event: Event, wsjf: dict[str, Any]) -> UUTReport:
        body = {"id": event.id, **wsjf}
        try:
            return UUTReport.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ReportBuildError(f"payload.wsjf.{where}: {first['msg']}", event.id) from None

    @staticmethod
    def _misc(payload: TestResultPayload, result: ReportResult) -> list[MiscInfo]:
        # The tester's own verdict, when the limits overruled it, so nobody has to guess why WATS differs.
        overruled = payload.result if payload.result and _RESULT[payload.result] is not result else None
        pairs = (
            ("tester_result", overruled),
            ("cfx.transaction_id", payload.transaction_id),
            ("cfx.unique_id", payload.unique_id),
            ("recipe", payload.recipe),
            ("recipe_revision", payload.recipe_revision),
            ("unit_position", None if payload.unit_position is None else str(payload.unit_position)),
        )
        return [MiscInfo(description=k, text=_cut(v)) for k, v in pairs if v]

    # -- steps -------------------------------------------------------------------------------
    def _test_steps(self, payload: TestResultPayload) -> tuple[list[Step], list[tuple[Any, Any]]]:
        steps = [self._test_step(t, t.name or t.id or f"Test {i + 1}") for i, t in enumerate(payload.tests)]
        times = [(t.start_time, t.end_time) for t in payload.tests]
        return steps, times

    def _inspection_steps(self, payload: TestResultPayload) -> tuple[list[Step], list[tuple[Any, Any]]]:
        steps = []
        for i, insp in enumerate(payload.inspections):
            status = _STATUS[insp.result] if insp.result else (StepStatus.FAILED if insp.defects else StepStatus.PASSED)
            message, text = _defect_text(insp.defects)
            steps.append(
                Step(
                    step_type="ET_PFT",
                    name=_cut(insp.name or insp.id or f"Inspection {i + 1}"),
                    status=status,
                    start=_aware(insp.start_time) if insp.start_time else None,
                    error_message=message,
                    report_text=text,
                    caused_uut_failure=True if status is StepStatus.FAILED else None,
                    boolean_meas=[BooleanMeasurement(status=status)],
                )
            )
        return steps, [(i.start_time, i.end_time) for i in payload.inspections]

    def _test_step(self, test: TestInput, name: str) -> Step:
        own = _STATUS[test.result] if test.result else None
        message, text = _defect_text([*test.symptoms, *test.defects])
        start = _aware(test.start_time) if test.start_time else None
        tot = (
            max(0.0, (_aware(test.end_time) - _aware(test.start_time)).total_seconds())
            if test.start_time and test.end_time
            else None
        )
        common: dict[str, Any] = {"name": _cut(name), "start": start, "tot_time": tot}
        if not test.measurements:
            status = own or StepStatus.DONE
            return Step(
                step_type="ET_PFT",
                status=status,
                error_message=message,
                report_text=text,
                caused_uut_failure=True if status is StepStatus.FAILED else None,
                boolean_meas=[BooleanMeasurement(status=status)],
                **common,
            )
        if len(test.measurements) == 1:
            step = self._measurement_step(test.measurements[0], name, own)
            status = _parent_status([step.status, *([own] if own is StepStatus.FAILED else [])])
            return step.model_copy(
                update={
                    **common,
                    "status": status,
                    "error_message": message or step.error_message,
                    "report_text": text,
                    "caused_uut_failure": True if status is StepStatus.FAILED else None,
                }
            )
        children = [
            self._measurement_step(m, m.name or f"{name} #{i + 1}", own) for i, m in enumerate(test.measurements)
        ]
        status = _parent_status([c.status for c in children] + ([own] if own is StepStatus.FAILED else []))
        return Step(
            step_type="SequenceCall",
            status=status,
            seq_call=SeqCall(path="cfx", name=_cut(name)),
            steps=children,
            error_message=message,
            report_text=text,
            **common,
        )

    def _measurement_step(self, m: MeasurementInput, name: str, test_status: StepStatus | None) -> Step:
        reported = _STATUS[m.result] if m.result else (test_status or StepStatus.PASSED)
        value = m.value
        if value is None or isinstance(value, bool):
            status = reported
            if isinstance(value, bool) and m.result is None:
                status = StepStatus.PASSED if value else StepStatus.FAILED
            return self._leaf("ET_PFT", name, status, boolean_meas=[BooleanMeasurement(status=status)])
        if isinstance(value, int | float):
            op, low, high = self._comp_op(m)
            status = reported
            if self.settings.verdict == "limits" and op is not CompOp.LOG:
                status = StepStatus.PASSED if compare_numeric(op, float(value), low, high) else StepStatus.FAILED
            meas = NumericMeasurement(
                status=status,
                value=float(value),
                unit=_cut(m.units) if m.units else None,
                comp_op=op,
                low_limit=low,
                high_limit=high,
            )
            detail = None
            if status is StepStatus.FAILED and low is not None:
                limits = f"{low:g}" + (f"..{high:g}" if high is not None else "")
                reading = f"{value:g} {m.units}" if m.units else f"{value:g}"
                detail = f"{m.name or name}: {reading} outside {op.value} {limits}"
            return self._leaf("ET_NLT", name, status, numeric_meas=[meas], error_message=detail)
        text = value if isinstance(value, str) else jsonsafe.dumps(value)
        meas_s = StringMeasurement(status=reported, value=text)
        return self._leaf("ET_SVT", name, reported, string_meas=[meas_s])

    @staticmethod
    def _comp_op(m: MeasurementInput) -> tuple[CompOp, float | None, float | None]:
        low, high = m.low_limit, m.high_limit
        if low is not None and high is not None:
            return CompOp.GELE, low, high
        if low is not None:
            return CompOp.GE, low, None
        if high is not None:
            return CompOp.LE, high, None  # the single limit goes in lowLimit (the real server export does)
        if m.expected_value is not None:
            return CompOp.EQ, m.expected_value, None
        return CompOp.LOG, None, None

    @staticmethod
    def _leaf(step_type: Any, name: str, status: StepStatus, **fields: Any) -> Step:
        return Step(
            step_type=step_type,
            name=_cut(name),
            status=status,
            caused_uut_failure=True if status is StepStatus.FAILED else None,
            **fields,
        )
