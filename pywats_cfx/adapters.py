"""IPC-CFX messages -> pyWATS domain events.

``envelope_to_events`` maps one envelope to its events by ``MAPPINGS`` (message name -> event type, one
event per message or per list item, payload keys); ``mapping_table()`` renders it, and docs/cfx.md carries
that table. 37 messages are mapped: tests and inspections, work and units, materials, faults and states,
process data, repair, MES (recipes, operators, stages, loading), maintenance, calibration and energy, and
the endpoint messages. Any other message becomes one event whose type is the CFX message name and whose
payload is the body (``$type`` members removed).

The mapping reads the decoded JSON directly instead of building the pydantic models of
``pywats_cfx.models`` first: decoding is on the hot path of the AMQP consumer and this is several times
faster. It reads every member the typed models declare, by the same rules (``pywats_cfx.enums``,
``pywats_cfx.scalars``), so both accept and refuse the same bodies; ``tests/unit/cfx/test_parity.py`` proves
it on every SDK example, on member-filled bodies and on each one-member breakage. It never raises anything
but ``InvalidMessageBodyError`` (with the field path and the input's origin) for a body that does not fit.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from pywats_events.event import Event, EventType, Severity, derive_event_id

from . import enums
from .enums import CFXEnum, EnumValue, InvalidEnumValue
from .envelope import CFXEnvelope, _kind
from .errors import InvalidMessageBodyError
from .scalars import read_bool, read_timespan_seconds
from .states import state_category, state_code, state_name

__all__ = [
    "ADAPTED_MESSAGES",
    "COMMON_PAYLOAD_KEYS",
    "MAPPINGS",
    "UNKNOWN_ENUM_TAG",
    "MessageMapping",
    "envelope_to_events",
    "mapping_table",
    "strip_type_members",
]

_INFO = Severity.INFO
_trusted_event = Event.trusted
_WARNING = Severity.WARNING

_MISSING: Any = object()

# CFX TestResult member (CFX/Structures/TestResult.cs) -> the project's result words.
_TEST_RESULTS = {
    "Passed": "pass",
    "Failed": "fail",
    "Error": "error",
    "Aborted": "aborted",
    "Skipped": "skipped",
}
# CFX FaultSeverity member (CFX/Structures/FaultSeverity.cs) -> event severity.
_FAULT_SEVERITIES = {
    "Information": Severity.INFO,
    "Warning": Severity.WARNING,
    "Error": Severity.ERROR,
    "Alarm": Severity.CRITICAL,
}
#: Tag of an event whose message held an enumeration value outside the SDK's declaration.
UNKNOWN_ENUM_TAG = "cfx.unknown_enum"
# .NET writes an unset Guid as all zeros; it identifies no transaction.
_NO_GUID = "00000000-0000-0000-0000-000000000000"
# Ids of envelopes without a UniqueID are derived from their content in this namespace (RFC 4122 v5).
_CONTENT_ID_NAMESPACE = uuid.UUID("0f6c1de4-4a3e-5d43-9a0e-7c2b1d5f9e21")


# --- reading the body: case-insensitive names, types checked like the typed models check them ----------


_LOW_KEYS: dict[tuple[Any, ...], dict[str, Any]] = {}


class _Body:
    """Typed access to one JSON object of a message body; errors name the CFX field path.

    Members are looked up by their CFX spelling first: the SDK writes every member, nulls included, so
    that lookup nearly always hits. Producers disagree on casing (``TransactionID``/``TransactionId``)
    and the SDK ignores it, so on a miss the object's names are lower-cased once and matched that way.
    The path for error messages (``TestedUnits[0].Tests``, spelled as the sender spelled it) is only built
    on failure.
    """

    __slots__ = ("index", "key", "low", "obj", "parent", "unknown", "where")

    def __init__(
        self, obj: dict[str, Any], where: str, parent: _Body | None = None, key: str = "", index: int = -1
    ) -> None:
        self.obj = obj
        self.low: dict[str, Any] | None = None
        self.where = where
        self.parent = parent
        self.key = key
        self.index = index
        # Enumeration values outside the SDK tables, shared by every object of one message body.
        self.unknown: list[dict[str, Any]] = parent.unknown if parent is not None else []

    def get(self, name: str) -> Any:
        value = self.obj.get(name, _MISSING)
        return self._fallback(name) if value is _MISSING else value

    def _fallback(self, name: str) -> Any:
        low = self.low
        if low is None:
            # Objects written by one SDK share a few key layouts; the lower-cased key map of each layout
            # is built once, not once per object (absent optional members make misses common).
            shape = tuple(self.obj)
            low = _LOW_KEYS.get(shape)
            if low is None:
                low = {k.lower(): k for k in shape if isinstance(k, str)}
                if len(_LOW_KEYS) < 4096:
                    _LOW_KEYS[shape] = low
            self.low = low
        key = low.get(name.lower())
        return None if key is None else self.obj[key]

    def _spelled(self, name: str) -> str:
        low = name.lower()
        return next((k for k in self.obj if k.lower() == low), name)

    def path(self, name: str = "") -> str:
        """Dotted path of member ``name`` (or of this object) from the body root, original spelling."""
        parts: list[str] = []
        if name:
            parts.append(self._spelled(name))
        node: _Body | None = self
        while node is not None and node.parent is not None:
            step = node.parent._spelled(node.key) + (f"[{node.index}]" if node.index >= 0 else "")
            parts.append(step)
            node = node.parent
        return ".".join(reversed(parts))

    def fail(self, name: str, message: str) -> InvalidMessageBodyError:
        return InvalidMessageBodyError(self.path(name), message, self.where)

    def text(self, name: str) -> str | None:
        value = self.obj.get(name, _MISSING)
        if value.__class__ is str or value is None:
            return value
        if value is _MISSING:
            value = self._fallback(name)
            if value is None or value.__class__ is str:
                return value
        if isinstance(value, str):
            return str(value)
        raise self.fail(name, f"expected a string, got {_kind(value)}")

    def number(self, name: str) -> float | int | str | None:
        """A number; a numeric string is read as the SDK's reader reads it (``"1.5"`` -> 1.5).

        A non-finite value (Newtonsoft writes ``double.NaN`` as ``"NaN"``, infinities as ``"Infinity"``/
        ``"-Infinity"``) is returned as that string, so event JSON stays RFC 8259 JSON on every path.
        """
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if value is None or value.__class__ is int:
            return value
        if value.__class__ is float and math.isfinite(value):
            return value
        number = _as_number(value)
        if number is None:
            raise self.fail(name, f"expected a number, got {_kind(value)}")
        return number

    def integer(self, name: str) -> int | None:
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if value is None or value.__class__ is int:
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise self.fail(name, f"expected an integer, got {_kind(value)}")

    def boolean(self, name: str) -> bool | None:
        """A ``bool`` member, read by ``pywats_cfx.scalars.read_bool`` (``"true"``, numbers, ...)."""
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if value is None or value is True or value is False:
            return value
        try:
            return read_bool(value)
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def time(self, name: str) -> str | None:
        """An ISO 8601 date-time member, checked, returned as sent (with its UTC offset)."""
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(name, f"{value[:60]!r} is not an ISO 8601 date-time") from None
            return value
        raise self.fail(name, f"expected an ISO 8601 date-time string, got {_kind(value)}")

    def enum(self, name: str, table: CFXEnum) -> EnumValue | None:
        """An enumeration member, read in all the SDK's forms (see ``pywats_cfx.enums``).

        A value outside the table is returned with ``known=False`` and recorded (field path, enum,
        value) for the event's ``unknown_enum_values``.
        """
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        try:
            read = table.read(value)
        except InvalidEnumValue as exc:
            raise self.fail(name, str(exc)) from None
        if read is not None and not read.known:
            self.unknown.append({"field": self.path(name), "enum": table.name, "value": value})
        return read

    def child(self, name: str) -> _Body | None:
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if value is None:
            return None
        if isinstance(value, dict):
            return _Body(value, self.where, self, name)
        raise self.fail(name, f"expected an object, got {_kind(value)}")

    def items(self, name: str) -> list[_Body]:
        """The objects of an array member (an absent or null array is empty)."""
        value = self.obj.get(name, _MISSING)
        if value is _MISSING:
            value = self._fallback(name)
        if not value:
            if value is None or value.__class__ is list:
                return []
        if not isinstance(value, list):
            raise self.fail(name, f"expected an array, got {_kind(value)}")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                where = f"{self.path(name)}[{i}]"
                raise InvalidMessageBodyError(where, f"expected an object, got {_kind(item)}", self.where)
            out.append(_Body(item, self.where, self, name, i))
        return out


def _as_number(value: Any) -> float | int | str | None:
    """A JSON number or numeric string as a number, non-finite ones as Newtonsoft's text; None if neither."""
    if value.__class__ is int:
        return value
    if value.__class__ is float:
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else _non_finite(number)
    return None


def _non_finite(value: float) -> str:
    """The text Newtonsoft writes for a non-finite double."""
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def strip_type_members(value: Any) -> Any:
    """Return a copy of decoded JSON without the ``$type`` members the .NET SDK adds to objects."""
    # Scalars are copied without a call each: this runs on every body of an unmapped message.
    if value.__class__ is dict:
        return {
            k: strip_type_members(v) if v.__class__ in _CONTAINERS else v for k, v in value.items() if k != "$type"
        }
    if value.__class__ is list:
        return [strip_type_members(v) if v.__class__ in _CONTAINERS else v for v in value]
    if isinstance(value, dict):
        return strip_type_members(dict(value))
    if isinstance(value, list):
        return strip_type_members(list(value))
    return value


_CONTAINERS = frozenset((dict, list))


def _test_result(body: _Body, name: str) -> str | int | None:
    """A TestResult member as the project's result word (``pass``); an unknown value as sent."""
    value = body.enum(name, enums.TEST_RESULT)
    if value is None:
        return None
    return _TEST_RESULTS[value.name] if value.known and value.name else value.wire


def _lower(body: _Body, name: str, table: CFXEnum) -> str | int | None:
    """An enumeration member's name in lower case (``automated``); an unknown value as sent."""
    value = body.enum(name, table)
    if value is None:
        return None
    return value.name.lower() if value.known and value.name else value.wire


def _member(body: _Body, name: str, table: CFXEnum) -> str | int | None:
    """An enumeration member's SDK name (``MechanicalFailure``); an unknown value as sent."""
    value = body.enum(name, table)
    return None if value is None else value.wire


def _timespan_seconds(body: _Body, name: str) -> float | None:
    try:
        return read_timespan_seconds(body.get(name))
    except ValueError as exc:
        raise body.fail(name, str(exc)) from None


# --- one envelope ------------------------------------------------------------------------------------


class _Message:
    """What every event of one envelope shares: ids, source, time, headers, the body."""

    __slots__ = ("base_id", "body", "correlation_id", "env", "headers", "keep_body", "source", "trusted", "where")

    def __init__(
        self,
        env: CFXEnvelope,
        source: str,
        headers: dict[str, Any] | None,
        where: str,
        keep_body: bool = False,
    ) -> None:
        self.env = env
        self.keep_body = keep_body
        self.source = source
        self.headers = headers
        self.where = where
        self.body = _Body(env.message_body, where)
        self.base_id = env.unique_id or _content_id(env)
        # UnitsTested, UnitsInspected and MaterialsInstalled spell it TransactionId, the others TransactionID.
        body = self.body
        corr = body.text("TransactionId" if "TransactionId" in body.obj else "TransactionID")
        self.correlation_id = corr if corr and corr != _NO_GUID else None
        # Events are built without re-validation when what the adapters do not check themselves holds:
        # the envelope's time is UTC (parse_envelopes makes it so; a hand-built envelope may differ) and
        # the transport's header names are strings (the Event model refuses others).
        self.trusted = env.time_stamp.tzinfo is UTC and (
            not headers or all(k.__class__ is str for k in headers)
        )

    def common(self) -> dict[str, Any]:
        """Payload members every mapped event carries."""
        payload: dict[str, Any] = {
            "cfx_message": self.env.message_name,
            "unique_id": self.env.unique_id,
            "handle": self.env.source,
            "target": self.env.target,
            "request_id": self.env.request_id,
        }
        if self.keep_body:
            payload["cfx_body"] = self.env.message_body
        return payload

    def event(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        index: int | None = None,
        severity: Severity = _INFO,
        subjects: tuple[str, ...] = (),
        correlation_id: str | None = None,
        item: _Body | None = None,
        others: tuple[str, ...] = (),
    ) -> Event:
        tags: tuple[str, ...] = ()
        unknown = self.body.unknown
        if unknown:
            if item is not None:
                # A per-item event reports the message-level values and its own item's, not its siblings'.
                own = item.path()
                if not others and own.endswith("]"):
                    others = (own[: own.rfind("[")] + "[",)
                unknown = [
                    u
                    for u in unknown
                    if not u["field"].startswith(others) or u["field"] == own or u["field"].startswith(own + ".")
                ]
            if unknown:
                payload["unknown_enum_values"] = [dict(u) for u in unknown]
                tags = (UNKNOWN_ENUM_TAG,)
        event_id = self.base_id if index is None else derive_event_id(self.base_id, index)
        headers = dict(self.headers) if self.headers else {}
        # Trusted: every value was checked above (ids, source, time, type, strings of subjects): no second
        # pass; the trusted constructor takes the type as a plain string.
        make = _trusted_event if self.trusted else Event
        return make(
            id=event_id,
            type=str(type_) if self.trusted and type_.__class__ is not str else type_,
            source=self.source,
            timestamp=self.env.time_stamp,
            payload=payload,
            correlation_id=correlation_id or self.correlation_id,
            severity=severity,
            subjects=subjects,
            tags=tags,
            headers=headers,
        )


def _content_id(env: CFXEnvelope) -> str:
    """A stable id for an envelope that has no UniqueID: redelivered copies have the same content."""
    wire = env.to_wire_dict()
    return str(uuid.uuid5(_CONTENT_ID_NAMESPACE, json.dumps(wire, sort_keys=True, default=str)))


def _unique(ids: list[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


# --- the table -----------------------------------------------------------------------------------------


def _measurement(m: _Body) -> dict[str, Any]:
    measured = m.get("MeasuredValue")
    value: Any
    if isinstance(measured, dict):
        mv = m.child("MeasuredValue")
        assert mv is not None
        value, units = mv.number("Value"), mv.text("ValueUnits")
        expected, expected_units = mv.number("ExpectedValue"), mv.text("ExpectedValueUnits")
        low, high = mv.number("MinimumAcceptableValue"), mv.number("MaximumAcceptableValue")
    else:
        if measured is not None:
            raise m.fail("MeasuredValue", f"expected an object, got {_kind(measured)}")
        # Measurement subtypes without a NumericValue (CFX/Structures/BooleanMeasurement.cs and
        # TextMeasurement.cs: Value and ExpectedValue; solder paste, offset) keep their own members.
        value = m.get("Value")
        if isinstance(value, dict | list):
            value = strip_type_members(value)
        expected = m.get("ExpectedValue")
        if isinstance(expected, dict | list):
            expected = strip_type_members(expected)
        units = expected_units = low = high = None
    return {
        "name": m.text("MeasurementName"),
        "id": m.text("UniqueIdentifier"),
        "sequence": m.integer("Sequence"),
        "value": value,
        "units": units,
        "expected_value": expected,
        "expected_value_units": expected_units,
        "low_limit": low,
        "high_limit": high,
        "result": _test_result(m, "Result"),
        "ref_designators": m.text("CRDs"),
        "time_recorded": m.time("TimeRecorded"),
    }


def _component(c: _Body | None) -> tuple[str | None, str | None]:
    """(reference designator, part number) of a ``CFX.Structures.ComponentDesignator``.

    Its ``UnitPosition`` (a ``UnitPosition`` object in CFX/Structures/ComponentDesignator.cs) is checked
    as the typed model checks it.
    """
    if c is None:
        return None, None
    position = c.child("UnitPosition")
    if position is not None:
        _unit_position(position)
    return c.text("ReferenceDesignator"), c.text("PartNumber")


def _defect(d: _Body) -> dict[str, Any]:
    ref, part = _component(d.child("ComponentOfInterest"))
    return {
        "id": d.text("UniqueIdentifier"),
        "code": d.text("DefectCode"),
        "category": d.text("DefectCategory"),
        "component": ref,
        "part_number": part,
        "description": d.text("Description"),
        "priority": d.integer("Priority"),
        "confidence": d.number("ConfidenceLevel"),
    }


def _symptom(s: _Body) -> dict[str, Any]:
    return {
        "id": s.text("UniqueIdentifier"),
        "code": s.text("SymptomCode"),
        "category": s.text("SymptomCategory"),
        "description": s.text("Description"),
        "components": [_component(c)[0] for c in s.items("ComponentsOfInterest")],
    }


def _person(op: _Body | None) -> dict[str, Any] | None:
    """A ``CFX.Structures.Operator``: identifier, actor type and names."""
    if op is None:
        return None
    return {
        "operator_id": op.text("OperatorIdentifier"),
        "actor_type": _member(op, "ActorType", enums.ACTOR_TYPE),
        "login_name": op.text("LoginName"),
        "first_name": op.text("FirstName"),
        "last_name": op.text("LastName"),
    }


def _operator_id(body: _Body, name: str) -> str | None:
    person = _person(body.child(name))
    return person["operator_id"] if person else None


def _stage(body: _Body, name: str = "Stage") -> str | None:
    """The ``StageName`` of a ``CFX.Structures.Stage`` member (sequence and type checked too)."""
    stage = body.child(name)
    if stage is None:
        return None
    stage.integer("StageSequence")
    stage.text("StageType")
    return stage.text("StageName")


def _units_tested(msg: _Message) -> list[Event]:
    body = msg.body
    method = _lower(body, "TestMethod", enums.TEST_METHOD)
    recipe, revision = body.text("RecipeName"), body.text("RecipeRevision")
    operator = _operator_id(body, "Tester")
    events = []
    for index, unit in enumerate(body.items("TestedUnits")):
        tests = []
        for t in unit.items("Tests"):
            tests.append(
                {
                    "name": t.text("TestName"),
                    "id": t.text("UniqueIdentifier"),
                    "result": _test_result(t, "Result"),
                    "start_time": t.time("TestStartTime"),
                    "end_time": t.time("TestEndTime"),
                    "measurements": [_measurement(m) for m in t.items("Measurements")],
                    "symptoms": [_symptom(s) for s in t.items("SymptomsFound")],
                    "defects": [_defect(d) for d in t.items("DefectsFound")],
                }
            )
        unit_id = unit.text("UnitIdentifier")
        result = _test_result(unit, "OverallResult")
        starts = [t["start_time"] for t in tests if t["start_time"]]
        ends = [t["end_time"] for t in tests if t["end_time"]]
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=unit.integer("UnitPositionNumber"),
            result=result,
            method=method,
            recipe=recipe,
            recipe_revision=revision,
            operator_id=operator,
            start_time=starts[0] if starts else None,
            end_time=ends[-1] if ends else None,
            tests=tests,
        )
        events.append(
            msg.event(
                EventType.TEST_RESULT,
                payload,
                index=index,
                severity=_INFO if result == "pass" else _WARNING,
                subjects=(unit_id,) if unit_id else (),
                item=unit,
            )
        )
    return events


def _units_inspected(msg: _Message) -> list[Event]:
    body = msg.body
    method = _lower(body, "InspectionMethod", enums.INSPECTION_METHOD)
    recipe, revision = body.text("RecipeName"), body.text("RecipeRevision")
    operator = _operator_id(body, "Inspector")
    units = body.items("InspectedUnits")
    panel = body.child("InspectedPanel")
    # Panel-level AOI reports (CFX 1.6+, CFX/Structures/InspectedPanel.cs) describe the whole panel; a
    # panel sent beside its units has results of its own (panel fiducials, board-level checks), so it
    # gets its own event after the units' events.
    targets = [(u, False) for u in units] + ([(panel, True)] if panel is not None else [])
    events = []
    for index, (unit, is_panel) in enumerate(targets):
        inspections = []
        defects: list[dict[str, Any]] = []
        for insp in unit.items("Inspections"):
            name = insp.text("InspectionName")
            found = [_defect(d) for d in insp.items("DefectsFound")]
            inspections.append(
                {
                    "name": name,
                    "id": insp.text("UniqueIdentifier"),
                    "result": _test_result(insp, "Result"),
                    "start_time": insp.time("InspectionStartTime"),
                    "end_time": insp.time("InspectionEndTime"),
                    "defects": found,
                    "symptoms": [_symptom(sy) for sy in insp.items("Symptoms")],
                    "measurements": [_measurement(m) for m in insp.items("Measurements")],
                }
            )
            defects.extend({**d, "inspection": name} for d in found)
        unit_id = unit.text("UnitIdentifier")
        result = _test_result(unit, "OverallResult")
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=unit.integer("UnitPositionNumber"),
            is_panel=is_panel,
            result=result,
            method=method,
            recipe=recipe,
            recipe_revision=revision,
            operator_id=operator,
            inspections=inspections,
            defects=defects,
        )
        events.append(
            msg.event(
                EventType.INSPECTION_RESULT,
                payload,
                index=index,
                severity=_INFO if result == "pass" else _WARNING,
                subjects=(unit_id,) if unit_id else (),
                item=unit,
                others=("InspectedUnits[",) if is_panel else ("InspectedUnits[", "InspectedPanel."),
            )
        )
    return events


def _unit_position(u: _Body) -> dict[str, Any]:
    """One ``CFX.Structures.UnitPosition`` (X/Y in mm, rotation in degrees, as the SDK documents)."""
    return {
        "unit_id": u.text("UnitIdentifier"),
        "position": u.integer("PositionNumber"),
        "position_name": u.text("PositionName"),
        "status": _lower(u, "Status", enums.UNIT_STATUS),
        "x": u.number("X"),
        "y": u.number("Y"),
        "rotation": u.number("Rotation"),
        "flip_x": u.boolean("FlipX"),
        "flip_y": u.boolean("FlipY"),
    }


def _unit_positions(body: _Body) -> list[dict[str, Any]]:
    return [_unit_position(u) for u in body.items("Units")]


def _work(type_: str) -> Callable[[_Message], list[Event]]:
    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        units = _unit_positions(body)
        primary = body.text("PrimaryIdentifier")
        work_order = body.child("WorkOrderIdentifier")
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            lane=body.integer("Lane"),
            stage=_stage(body),
            units=units,
            unit_count=body.integer("UnitCount"),
            primary_identifier=primary,
            hermes_identifier=body.text("HermesIdentifier"),
            recipe=body.text("RecipeName"),
            recipe_revision=body.text("Revision"),
            work_order_id=work_order.text("WorkOrderId") if work_order else None,
            batch=work_order.text("Batch") if work_order else None,
        )
        if type_ == EventType.PRODUCTION_WORK_COMPLETED:
            payload["result"] = _lower(body, "Result", enums.WORK_RESULT)
        subjects = _unique([u["unit_id"] for u in units]) or _unique([primary])
        return [msg.event(type_, payload, subjects=subjects)]

    return adapt


def _units(type_: str) -> Callable[[_Message], list[Event]]:
    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        units = _unit_positions(body)
        payload = msg.common()
        payload.update(units=units, unit_count=body.integer("UnitCount"))
        if type_ == EventType.PRODUCTION_UNIT_DISQUALIFIED:
            payload["reason"] = _member(body, "Reason", enums.DISQUALIFICATION_REASON)
            payload["comments"] = body.text("Comments")
        else:
            # CFX/Production/UnitsArrived.cs and UnitsDeparted.cs: lane, carrier/panel id, Hermes id.
            payload["lane"] = body.integer("Lane")
            payload["primary_identifier"] = body.text("PrimaryIdentifier")
            payload["hermes_identifier"] = body.text("HermesIdentifier")
        return [msg.event(type_, payload, subjects=_unique([u["unit_id"] for u in units]))]

    return adapt


def _package(pkg: _Body | None) -> tuple[str | None, str | None, str | None, float | int | str | None]:
    """(material id, part number, lot, quantity) of a MaterialPackage.

    The lot is ``BatchId``: CFX/Structures/MaterialPackage.cs has no lot code member. A
    ``MaterialPackageDetail`` (CFX/Structures/MaterialPackageDetail.cs) also carries the
    ``ManufacturerLotCode``, used when no BatchId is given.
    """
    if pkg is None:
        return None, None, None, None
    pkg.text("InternalPackageName")  # checked as the typed model checks it
    batch, lot_code = pkg.text("BatchId"), pkg.text("ManufacturerLotCode")
    return (pkg.text("UniqueIdentifier"), pkg.text("InternalPartNumber"), batch or lot_code, pkg.number("Quantity"))


def _location(loc: _Body | None) -> dict[str, Any] | None:
    if loc is None:
        return None
    carrier = loc.child("CarrierInformation")
    # A carrier location names its package too; the event carries the installed material's own.
    _package(loc.child("MaterialPackage"))
    return {
        "location_id": loc.text("LocationIdentifier"),
        "location_name": loc.text("LocationName"),
        "carrier_id": carrier.text("UniqueIdentifier") if carrier else None,
        "carrier_name": carrier.text("Name") if carrier else None,
    }


def _materials_installed(msg: _Message) -> list[Event]:
    events = []
    for index, item in enumerate(msg.body.items("InstalledMaterials")):
        material_id, part_number, lot, _ = _package(item.child("Material"))
        components = [
            {
                "ref_designator": c.text("ReferenceDesignator"),
                "part_number": part_number,
                "lot": lot,
                "material_id": material_id,
                "installed_at": c.time("InstallationTime"),
            }
            for c in item.items("InstalledComponents")
        ]
        unit_id = item.text("UnitIdentifier")
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=item.integer("UnitPositionNumber"),
            material_id=material_id,
            part_number=part_number,
            lot=lot,
            quantity_installed=item.number("QuantityInstalled"),
            quantity_non_installed=item.number("QuantityNonInstalled"),
            location=_location(item.child("CarrierLocation")),
            components=components,
        )
        events.append(
            msg.event(
                EventType.MATERIAL_INSTALLED,
                payload,
                index=index,
                subjects=(unit_id,) if unit_id else (),
                item=item,
            )
        )
    return events


def _materials_loaded(msg: _Message) -> list[Event]:
    materials = []
    for loc in msg.body.items("Materials"):
        material_id, part_number, lot, quantity = _package(loc.child("MaterialPackage"))
        place = _location(loc)
        assert place is not None
        materials.append(
            {
                "material_id": material_id,
                "part_number": part_number,
                "lot": lot,
                "quantity": quantity,
                **place,
            }
        )
    payload = msg.common()
    payload.update(materials=materials)
    return [msg.event(EventType.MATERIAL_LOADED, payload, subjects=(msg.source,))]


# Members of CFX/Structures/Fault.cs, lower-cased; anything else in a Fault is a subtype's or a vendor's.
_FAULT_MEMBERS = frozenset(
    m.lower()
    for m in (
        "TransactionID",
        "Cause",
        "Severity",
        "FaultCode",
        "FaultOccurrenceId",
        "Lane",
        "Stage",
        "SideLocation",
        "AccessType",
        "Description",
        "DescriptionTranslations",
        "OccurredAt",
        "DueDateTime",
        "$type",
    )
)


def _translations(body: _Body, name: str) -> dict[str, str]:
    """A ``Dictionary<string, string>`` member (language -> text); null or absent reads as empty."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise body.fail(name, f"expected an object (language -> text), got {_kind(value)}")
    for key, text in value.items():
        if text is not None and not isinstance(text, str):
            raise body.fail(name, f"translation {key!r:.40}: expected a string, got {_kind(text)}")
    return {k: v for k, v in value.items() if k != "$type"}


def _extra_members(body: _Body, known: frozenset[str]) -> dict[str, Any]:
    """Members a structure's SDK declaration does not name (subtype or vendor members), as sent."""
    return {k: strip_type_members(v) for k, v in body.obj.items() if k.lower() not in known}


def _fault(fault: _Body) -> tuple[dict[str, Any], Severity]:
    """The payload members of one ``CFX.Structures.Fault`` (subtype members kept under ``details``)."""
    read_severity = fault.enum("Severity", enums.FAULT_SEVERITY)
    severity = _FAULT_SEVERITIES.get(read_severity.name or "", _INFO) if read_severity else _INFO
    transaction = fault.text("TransactionID")
    return {
        "fault_id": fault.text("FaultOccurrenceId"),
        "transaction_id": transaction if transaction and transaction != _NO_GUID else None,
        "code": fault.text("FaultCode"),
        "cause": _member(fault, "Cause", enums.FAULT_CAUSE),
        "severity": severity.value,
        "fault_severity": None if read_severity is None else read_severity.wire,
        "description": fault.text("Description"),
        "description_translations": _translations(fault, "DescriptionTranslations"),
        "lane": fault.integer("Lane"),
        "stage": _stage(fault),
        "side_location": _member(fault, "SideLocation", enums.SIDE_LOCATION),
        "access_type": _member(fault, "AccessType", enums.ACCESS_TYPE),
        "occurred_at": fault.time("OccurredAt"),
        "due_at": fault.time("DueDateTime"),
        "fault_type": fault.text("$type"),
        "details": _extra_members(fault, _FAULT_MEMBERS),
    }, severity


def _fault_occurred(msg: _Message) -> list[Event]:
    fault = msg.body.child("Fault")
    if fault is None:
        raise msg.body.fail("Fault", "missing; FaultOccurred must carry a Fault")
    members, severity = _fault(fault)
    payload = msg.common()
    payload["asset_id"] = msg.source
    payload.update(members)
    return [
        msg.event(
            EventType.ASSET_FAULT,
            payload,
            severity=severity,
            subjects=(msg.source,),
            correlation_id=members["transaction_id"],
        )
    ]


def _fault_follow_up(type_: str) -> Callable[[_Message], list[Event]]:
    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        payload = msg.common()
        payload.update(
            asset_id=msg.source,
            fault_id=body.text("FaultOccurrenceId"),
            operator_id=_operator_id(body, "Operator"),
        )
        return [msg.event(type_, payload, subjects=(msg.source,))]

    return adapt


def _state(body: _Body, name: str, required: bool) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise body.fail(name, "missing; a SEMI E10 state code is required")
        return None
    return state_code(value, field=body.path(name), where=body.where)


def _station_state_changed(msg: _Message) -> list[Event]:
    body = msg.body
    old = _state(body, "OldState", False)
    new = _state(body, "NewState", True)
    assert new is not None
    fault = body.child("RelatedFault")
    new_category = state_category(new)
    payload = msg.common()
    payload.update(
        asset_id=msg.source,
        old_state=old,
        old_state_name=state_name(old) if old is not None else None,
        old_category=state_category(old) if old is not None else None,
        new_state=new,
        new_state_name=state_name(new),
        new_category=new_category,
        old_state_duration_s=_timespan_seconds(body, "OldStateDuration"),
        related_fault_id=fault.text("FaultOccurrenceId") if fault else None,
        related_fault=_fault(fault)[0] if fault else None,
    )
    severity = _WARNING if new_category == "USD" else _INFO
    return [msg.event(EventType.ASSET_STATE_CHANGED, payload, severity=severity, subjects=(msg.source,))]


def _active_recipe(item: _Body) -> dict[str, Any]:
    """One ``CFX.Structures.ActiveRecipe``: lane, stage and the recipe's name and revision."""
    ident = item.child("RecipeIdentifier")
    recipe = item.child("Recipe")
    ident_name, ident_revision = (ident.text("RecipeName"), ident.text("Revision")) if ident else (None, None)
    recipe_name, recipe_revision = (recipe.text("Name"), recipe.text("Revision")) if recipe else (None, None)
    return {
        "lane": item.integer("Lane"),
        "stage": _stage(item),
        "recipe": ident_name or recipe_name,
        "recipe_revision": ident_revision or recipe_revision,
    }


def _endpoint(type_: str) -> Callable[[_Message], list[Event]]:
    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        handle = body.text("CFXHandle")
        payload = msg.common()
        payload["handle"] = handle or msg.env.source
        if type_ == EventType.SYSTEM_ENDPOINT_CONNECTED:
            payload.update(
                request_uri=body.text("RequestNetworkUri"), request_target=body.text("RequestTargetAddress")
            )
        elif type_ == EventType.SYSTEM_HEARTBEAT:
            payload["heartbeat_frequency_s"] = _timespan_seconds(body, "HeartbeatFrequency")
            # CFX/Heartbeat.cs (added in CFX 1.7): the faults and recipes active at the sender.
            payload["active_faults"] = [_fault(f)[0] for f in body.items("ActiveFaults")]
            payload["active_recipes"] = [_active_recipe(r) for r in body.items("ActiveRecipes")]
        subject = payload["handle"] or msg.source
        return [msg.event(type_, payload, subjects=(subject,))]

    return adapt


# --- more of the standard: process data, repair, MES, maintenance and energy (issue 11, point 7) --------


def _typed_data(body: _Body, name: str) -> tuple[str | None, dict[str, Any] | None]:
    """A polymorphic member (``ProcessData``, ``Tool``): its .NET ``$type`` and its members as sent."""
    data = body.child(name)
    if data is None:
        return None, None
    return data.text("$type"), strip_type_members(data.obj)


def _units_processed(msg: _Message) -> list[Event]:
    """``CFX.Production.Processing.UnitsProcessed`` (CFX/Production/Processing/UnitsProcessed.cs)."""
    body = msg.body
    overall = _lower(body, "OverallResult", enums.PROCESSING_RESULT)
    common_type, common_data = _typed_data(body, "CommonProcessData")
    units = body.items("UnitProcessData")
    events = []
    # One event per processed unit; a message with common process data only still gives one event.
    for index, unit in enumerate(units or [None]):
        unit_type, unit_data = _typed_data(unit, "UnitProcessData") if unit is not None else (None, None)
        unit_id = unit.text("UnitIdentifier") if unit is not None else None
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=unit.integer("UnitPositionNumber") if unit is not None else None,
            result=_lower(unit, "UnitResult", enums.PROCESSING_RESULT) if unit is not None else overall,
            overall_result=overall,
            process_data_type=common_type,
            process_data=common_data,
            unit_process_data_type=unit_type,
            unit_process_data=unit_data,
        )
        events.append(
            msg.event(
                "production.unit_processed",
                payload,
                index=index if units else None,
                severity=_INFO if payload["result"] in ("succeeded", None) else _WARNING,
                subjects=(unit_id,) if unit_id else (),
                item=unit,
            )
        )
    return events


def _placements(body: _Body, name: str) -> list[str | None]:
    """Reference designators of a ``List<InstalledComponent>`` (``InstallationTime`` checked)."""
    out = []
    for c in body.items(name):
        c.time("InstallationTime")
        out.append(c.text("ReferenceDesignator"))
    return out


def _repair(r: _Body) -> dict[str, Any]:
    ref, part = _component(r.child("ComponentOfInterest"))
    return {
        "id": r.text("UniqueIdentifier"),
        "name": r.text("RepairName"),
        "result": _member(r, "Result", enums.REPAIR_RESULT),
        "start_time": r.time("RepairStartTime"),
        "end_time": r.time("RepairEndTime"),
        "comments": r.text("Comments"),
        "component": ref,
        "part_number": part,
        "related_defects": _texts(r, "RelatedDefectIdentifiers"),
        "related_symptoms": _texts(r, "RelatedSymptomIdentifiers"),
        "error": r.text("Error"),
    }


def _texts(body: _Body, name: str) -> list[str | None]:
    """A ``List<string>`` member (null reads as empty)."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise body.fail(name, f"expected an array of strings, got {_kind(value)}")
    for i, item in enumerate(value):
        if item is not None and not isinstance(item, str):
            raise InvalidMessageBodyError(
                f"{body.path(name)}[{i}]", f"expected a string, got {_kind(item)}", body.where
            )
    return list(value)


def _units_repaired(msg: _Message) -> list[Event]:
    """``CFX.Production.ReworkAndRepair.UnitsRepaired``: one ``repair.result`` per repaired unit."""
    body = msg.body
    operator = _operator_id(body, "RepairOperator")
    events = []
    for index, unit in enumerate(body.items("RepairedUnits")):
        unit_id = unit.text("UnitIdentifier")
        result = _member(unit, "OverallResult", enums.REPAIR_RESULT)
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=unit.integer("UnitPositionNumber"),
            result=result,
            operator_id=operator,
            repairs=[_repair(r) for r in unit.items("Repairs")],
        )
        events.append(
            msg.event(
                "repair.result",
                payload,
                index=index,
                severity=_INFO if result == "RepairSuccessful" else _WARNING,
                subjects=(unit_id,) if unit_id else (),
                item=unit,
            )
        )
    return events


def _units_initialized(msg: _Message) -> list[Event]:
    """``CFX.Production.UnitsInitialized`` (CFX/Production/UnitsInitialized.cs)."""
    body = msg.body
    units = _unit_positions(body)
    work_order = body.child("WorkOrderIdentifier")
    primary = body.text("PrimaryIdentifier")
    payload = msg.common()
    payload.update(
        transaction_id=msg.correlation_id,
        primary_identifier=primary,
        hermes_identifier=body.text("HermesIdentifier"),
        work_order_id=work_order.text("WorkOrderId") if work_order else None,
        batch=work_order.text("Batch") if work_order else None,
        unit_count=body.integer("UnitCount"),
        units=units,
    )
    subjects = _unique([u["unit_id"] for u in units]) or _unique([primary])
    return [msg.event("production.unit_initialized", payload, subjects=subjects)]


def _work_stage(type_: str) -> Callable[[_Message], list[Event]]:
    """``CFX.Production.WorkStageStarted`` / ``WorkStageCompleted`` (CFX/Production/WorkStage*.cs)."""

    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        stage = body.child("Stage")
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            stage=_stage(body),
            stage_sequence=stage.integer("StageSequence") if stage else None,
            stage_type=stage.text("StageType") if stage else None,
        )
        if type_ == "production.stage_completed":
            payload["result"] = _lower(body, "Result", enums.WORK_RESULT)
            payload["performance_impacts"] = [
                _member(p, "Cause", enums.PERFORMANCE_IMPACT_CAUSE) for p in body.items("PerformanceImpacts")
            ]
        return [msg.event(type_, payload, subjects=(msg.source,))]

    return adapt


def _units_loading(type_: str) -> Callable[[_Message], list[Event]]:
    """``CFX.Production.LoadingAndUnloading.UnitsLoaded`` / ``UnitsUnloaded``: units into or out of a carrier."""

    def adapt(msg: _Message) -> list[Event]:
        body = msg.body
        units = _unit_positions(body)
        carrier = body.text("UniqueIdentifier")
        payload = msg.common()
        payload.update(carrier_id=carrier, unit_count=body.integer("UnitCount"), units=units)
        subjects = _unique([u["unit_id"] for u in units]) or _unique([carrier])
        return [msg.event(type_, payload, subjects=subjects)]

    return adapt


def _tools_used(msg: _Message) -> list[Event]:
    """``CFX.Production.ToolsUsed`` (CFX/Production/ToolsUsed.cs, CFX/Structures/ToolUsed.cs)."""
    tools: list[dict[str, Any]] = []
    for used in msg.body.items("UsedTools"):
        tool = used.child("Tool")
        tool_type, tool_data = _typed_data(used, "Tool")
        tools.append(
            {
                "unit_id": used.text("UnitIdentifier"),
                "unit_position": used.integer("UnitPositionNumber"),
                "tool_id": tool.text("UniqueIdentifier") if tool else None,
                "tool_name": tool.text("Name") if tool else None,
                "tool_type": tool_type,
                "tool": tool_data,
                "usage_cycles": used.integer("UsageCycles"),
                "components": _placements(used, "InstalledComponents"),
            }
        )
    payload = msg.common()
    payload.update(transaction_id=msg.correlation_id, tools=tools)
    subjects = _unique([t["tool_id"] for t in tools]) or (msg.source,)
    return [msg.event("asset.tool_used", payload, subjects=subjects)]


def _recipe_activated(msg: _Message) -> list[Event]:
    """``CFX.Production.RecipeActivated`` (CFX/Production/RecipeActivated.cs; cycle and work times in ms)."""
    body = msg.body
    work_order = body.child("WorkOrderIdentifier")
    payload = msg.common()
    payload.update(
        recipe=body.text("RecipeName"),
        recipe_revision=body.text("Revision"),
        lane=body.integer("Lane"),
        stage=_stage(body),
        expected_cycle_time_ms=body.number("ExpectedCycleTime"),
        expected_work_time_ms=body.number("ExpectedWorkTime"),
        expected_units_per_work_transaction=body.number("ExpectedUnitsPerWorkTransaction"),
        components_per_unit=body.number("NumberOfComponentsPerUnit"),
        work_order_id=work_order.text("WorkOrderId") if work_order else None,
        batch=work_order.text("Batch") if work_order else None,
        target_quantity=body.number("TargetQuantity"),
        relevant_surface=body.get("RelevantSurface"),
    )
    return [msg.event("production.recipe_activated", payload, subjects=(msg.source,))]


def _operator(type_: str) -> Callable[[_Message], list[Event]]:
    """``CFX.Production.OperatorActivated`` / ``OperatorDeactivated`` (``Operator``: CFX/Structures/Operator.cs)."""

    def adapt(msg: _Message) -> list[Event]:
        person = _person(msg.body.child("Operator")) or dict.fromkeys(
            ("operator_id", "actor_type", "login_name", "first_name", "last_name")
        )
        payload = msg.common()
        payload["asset_id"] = msg.source
        payload.update(person)
        subjects = _unique([payload["operator_id"]]) or (msg.source,)
        return [msg.event(type_, payload, subjects=subjects)]

    return adapt


def _reading(r: _Body) -> dict[str, Any]:
    return {
        "id": r.text("ReadingIdentifier"),
        "time_recorded": r.time("TimeRecorded"),
        "sequence": r.integer("ReadingSequence"),
        "result": _test_result(r, "Result"),
        "unit_id": r.text("UnitIdentifier"),
        "unit_position": r.integer("UnitPositionNumber"),
        "components": [_component(c)[0] for c in r.items("Components")],
        "data_type": _member(r, "ValueDataType", enums.DATA_TYPE),
        "value": r.get("Value"),
        "units": r.text("ValueUnits"),
        "mime_type": r.text("ValueMimeType"),
        "binary_value": r.text("BinaryValue"),
        "expected_value": r.get("ExpectedValue"),
        "expected_value_units": r.text("ExpectedValueUnits"),
        "low_limit": r.get("MinimumAcceptableValue"),
        "high_limit": r.get("MaximumAcceptableValue"),
    }


def _readings_recorded(msg: _Message) -> list[Event]:
    """``CFX.Production.ReadingsRecorded`` (CFX/Structures/Reading.cs: values as text, ``BinaryValue`` base64)."""
    readings = [_reading(r) for r in msg.body.items("Readings")]
    payload = msg.common()
    payload.update(
        transaction_id=msg.correlation_id,
        readings=readings,
        process_data_type=None,
        process_data=None,
    )
    subjects = _unique([r["unit_id"] for r in readings]) or (msg.source,)
    return [msg.event("sensor.reading", payload, subjects=subjects)]


def _process_data_recorded(msg: _Message) -> list[Event]:
    """``CFX.ResourcePerformance.ProcessDataRecorded``: station-level process data (``ProcessData`` subtype)."""
    data_type, data = _typed_data(msg.body, "ProcessData")
    payload = msg.common()
    payload.update(transaction_id=msg.correlation_id, readings=[], process_data_type=data_type, process_data=data)
    return [msg.event("sensor.reading", payload, subjects=(msg.source,))]


def _consumed(item: _Body) -> dict[str, Any]:
    """One ``CFX.Structures.ConsumedMaterial``: quantities and the package it came from."""
    loc = item.child("MaterialLocation")
    material_id, part_number, lot, _ = _package(loc.child("MaterialPackage") if loc else None)
    place = _location(loc)
    return {
        "material_id": material_id,
        "part_number": part_number,
        "lot": lot,
        "location_id": place["location_id"] if place else None,
        "location_name": place["location_name"] if place else None,
        "quantity_used": item.number("QuantityUsed"),
        "quantity_spoiled": item.number("QuantitySpoiled"),
        "remaining_quantity": item.number("RemainingQuantity"),
    }


def _maintenance_performed(msg: _Message) -> list[Event]:
    """``CFX.ResourcePerformance.MaintenancePerformed`` (CFX/Structures/MaintenanceTask.cs: man-hours)."""
    body = msg.body
    tasks = [
        {
            "task": t.text("Task"),
            "task_id": t.text("TaskId"),
            "operator_id": _operator_id(t, "Operator"),
            "man_hours": t.number("ManHoursConsumed"),
        }
        for t in body.items("Tasks")
    ]
    payload = msg.common()
    payload.update(
        asset_id=msg.source,
        maintenance_type=_member(body, "MaintenanceType", enums.MAINTENANCE_TYPE),
        order_number=body.text("MaintenanceOrderNumber"),
        job_code=body.text("MaintenanceJobCode"),
        tasks=tasks,
        consumed_materials=[_consumed(c) for c in body.items("ConsumedMaterials")],
    )
    return [msg.event("asset.maintenance", payload, subjects=(msg.source,))]


def _calibration_performed(msg: _Message) -> list[Event]:
    """``CFX.ResourcePerformance.CalibrationPerformed`` (CFX/Structures/Calibration.cs)."""
    cal = msg.body.child("Calibration")
    payload = msg.common()
    status = _member(cal, "Status", enums.OPERATION_STATUS) if cal else None
    payload.update(
        asset_id=msg.source,
        transaction_id=msg.correlation_id,
        code=cal.text("CalibrationCode") if cal else None,
        calibration_type=_member(cal, "CalibrationType", enums.CALIBRATION_TYPE) if cal else None,
        status=status,
        comments=cal.text("Comments") if cal else None,
        calibration_time=cal.time("CalibrationTime") if cal else None,
        measurements=[strip_type_members(m.obj) for m in cal.items("Measurements")] if cal else [],
    )
    severity = _WARNING if status == "Failed" else _INFO
    return [msg.event("asset.calibration", payload, severity=severity, subjects=(msg.source,))]


def _station_online(type_: str) -> Callable[[_Message], list[Event]]:
    """``CFX.ResourcePerformance.StationOffline`` / ``StationOnline`` (``OfflineDuration``, a TimeSpan)."""

    def adapt(msg: _Message) -> list[Event]:
        payload = msg.common()
        payload["asset_id"] = msg.source
        if type_ == "asset.online":
            payload["offline_duration_s"] = _timespan_seconds(msg.body, "OfflineDuration")
        return [msg.event(type_, payload, subjects=(msg.source,))]

    return adapt


# CFX/ResourcePerformance/EnergyConsumed.cs, in declaration order: energy in kWh, power in W, current in A,
# voltage in V, frequency in Hz; the *RYB lists hold one value per phase (red, yellow, blue).
_ENERGY_NUMBERS = (
    "EnergyUsed", "PeakPower", "MinimumPower", "MeanPower", "PowerNow", "PowerFactorNow", "PeakCurrent",
    "MinimumCurrent", "MeanCurrent", "CurrentNow", "PeakVoltage", "MinimumVoltage", "MeanVoltage", "VoltageNow",
    "PeakFrequency", "MinimumFrequency", "MeanFrequency", "FrequencyNow", "ThreePhaseNeutralCurrentNow",
)  # fmt: skip
_ENERGY_LISTS = (
    "PeakPowerRYB", "MinimumPowerRYB", "MeanPowerRYB", "PowerNowRYB", "PowerFactorNowRYB", "PeakCurrentRYB",
    "MinimumCurrentRYB", "MeanCurrentRYB", "CurrentNowRYB", "PeakVoltageRYB", "MinimumVoltageRYB",
    "MeanVoltageRYB", "VoltageNowRYB",
)  # fmt: skip
_SNAKE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _snake(name: str) -> str:
    return _SNAKE.sub("_", name.replace("RYB", "_ryb")).lower().replace("__", "_")


def _numbers(body: _Body, name: str) -> list[float | int | str | None]:
    """A ``List<double>`` member (null reads as empty; non-finite values as Newtonsoft's text)."""
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise body.fail(name, f"expected an array of numbers, got {_kind(value)}")
    out: list[float | int | str | None] = []
    for i, item in enumerate(value):
        number = None if item is None else _as_number(item)
        if number is None and item is not None:
            raise InvalidMessageBodyError(
                f"{body.path(name)}[{i}]", f"expected a number, got {_kind(item)}", body.where
            )
        out.append(number)
    return out


def _energy_consumed(msg: _Message) -> list[Event]:
    """``CFX.ResourcePerformance.EnergyConsumed``: every member, snake_case, units as in the SDK."""
    body = msg.body
    payload = msg.common()
    payload.update(asset_id=msg.source, start_time=body.time("StartTime"), end_time=body.time("EndTime"))
    for name in _ENERGY_NUMBERS:
        payload[_snake(name)] = body.number(name)
    for name in _ENERGY_LISTS:
        payload[_snake(name)] = _numbers(body, name)
    payload["subsystem_name"] = body.text("SubsystemName")
    payload["consumption_details"] = [strip_type_members(d.obj) for d in body.items("ConsumptionDetails")]
    return [msg.event("asset.energy_consumed", payload, subjects=(msg.source,))]


def _materials_consumed(msg: _Message) -> list[Event]:
    """``CFX.Materials.Management.MaterialsConsumed`` (CFX/Structures/ConsumedMaterial.cs)."""
    payload = msg.common()
    payload["materials"] = [_consumed(c) for c in msg.body.items("ConsumedMaterials")]
    subjects = _unique([m["material_id"] for m in payload["materials"]]) or (msg.source,)
    return [msg.event("material.consumed", payload, subjects=subjects)]


def _materials_uninstalled(msg: _Message) -> list[Event]:
    """``CFX.Production.Assembly.MaterialsUninstalled``: one ``material.uninstalled`` per unit."""
    events = []
    for index, item in enumerate(msg.body.items("UninstalledMaterials")):
        material_id, part_number, lot, _ = _package(item.child("Material"))
        unit_id = item.text("UnitIdentifier")
        payload = msg.common()
        payload.update(
            transaction_id=msg.correlation_id,
            unit_id=unit_id,
            unit_position=item.integer("UnitPositionNumber"),
            material_id=material_id,
            part_number=part_number,
            lot=lot,
            quantity_uninstalled=item.number("QuantityUninstalled"),
            reason=_member(item, "Reason", enums.UNINSTALLED_REASON),
            components=_placements(item, "UninstalledComponents"),
        )
        events.append(
            msg.event(
                "material.uninstalled", payload, index=index, subjects=(unit_id,) if unit_id else (), item=item
            )
        )
    return events


def _materials_unloaded(msg: _Message) -> list[Event]:
    """``CFX.Materials.Storage.MaterialsUnloaded``: the packages taken off the station."""
    ids = _texts(msg.body, "MaterialPackageIdentifiers")
    payload = msg.common()
    payload["material_ids"] = ids
    return [msg.event("material.unloaded", payload, subjects=_unique(ids) or (msg.source,))]


def _other(msg: _Message) -> list[Event]:
    payload = strip_type_members(msg.env.message_body)
    if msg.keep_body:
        payload["cfx_body"] = msg.env.message_body
    # Requests and responses share the envelope's RequestID: it is what pairs them on every path.
    return [msg.event(msg.env.message_name, payload, correlation_id=msg.env.request_id)]


@dataclass(frozen=True, slots=True)
class MessageMapping:
    """How one CFX message becomes events.

    Attributes:
        message_name: the full CFX message name (``CFX.Production.TestAndInspection.UnitsTested``).
        event_type: the type of the events it gives (``test.result``).
        one_per: the body's list member that gives one event per item (``TestedUnits``), or None for one
            event per message.
        probe: the smallest body that yields an event (what ``payload_keys`` maps), an empty one by default.
        note: what else gives an event, for the documentation table (``plus one for InspectedPanel``).
    """

    message_name: str
    event_type: str
    adapt: Callable[[_Message], list[Event]]
    one_per: str | None = None
    probe: dict[str, Any] | None = None
    note: str = ""

    def payload_keys(self) -> tuple[str, ...]:
        """The payload keys of its events, in order, found by running the mapping itself on ``probe``.

        ``COMMON_PAYLOAD_KEYS`` lead; the optional ``unknown_enum_values`` and ``cfx_body`` are not listed.
        """
        body = dict(self.probe or {})
        if self.one_per:
            body.setdefault(self.one_per, [{}])
        env = CFXEnvelope._trusted(
            {
                "message_name": self.message_name,
                "version": None,
                "time_stamp": datetime(2000, 1, 1, tzinfo=UTC),
                "unique_id": None,
                "source": None,
                "target": None,
                "request_id": None,
                "message_body": body,
            }
        )
        (first, *_) = self.adapt(_Message(env, "probe", None, "mapping probe"))
        return tuple(first.payload)


def _m(
    name: str,
    event_type: str,
    adapt: Callable[[_Message], list[Event]],
    one_per: str | None = None,
    probe: dict[str, Any] | None = None,
    note: str = "",
) -> MessageMapping:
    return MessageMapping(name, event_type, adapt, one_per, probe, note)


#: Payload keys every mapped event starts with (envelope members and the message name).
COMMON_PAYLOAD_KEYS: tuple[str, ...] = ("cfx_message", "unique_id", "handle", "target", "request_id")

#: Every CFX message with a dedicated mapping, by message name; any other name gives one event whose type is
#: the message name and whose payload is the body (``$type`` members removed).
MAPPINGS: dict[str, MessageMapping] = {
    m.message_name: m
    for m in (
        _m("CFX.Production.TestAndInspection.UnitsTested", "test.result", _units_tested, one_per="TestedUnits"),
        _m(
            "CFX.Production.TestAndInspection.UnitsInspected",
            "inspection.result",
            _units_inspected,
            one_per="InspectedUnits",
            note="plus one for `InspectedPanel`",
        ),
        _m("CFX.Production.WorkStarted", "production.work_started", _work(EventType.PRODUCTION_WORK_STARTED)),
        _m("CFX.Production.WorkCompleted", "production.work_completed", _work(EventType.PRODUCTION_WORK_COMPLETED)),
        _m("CFX.Production.UnitsArrived", "production.unit_arrived", _units(EventType.PRODUCTION_UNIT_ARRIVED)),
        _m("CFX.Production.UnitsDeparted", "production.unit_departed", _units(EventType.PRODUCTION_UNIT_DEPARTED)),
        _m(
            "CFX.Production.UnitsDisqualified",
            "production.unit_disqualified",
            _units(EventType.PRODUCTION_UNIT_DISQUALIFIED),
        ),
        _m(
            "CFX.Production.Assembly.MaterialsInstalled",
            "material.installed",
            _materials_installed,
            one_per="InstalledMaterials",
        ),
        _m("CFX.Materials.Storage.MaterialsLoaded", "material.loaded", _materials_loaded),
        _m("CFX.ResourcePerformance.FaultOccurred", "asset.fault", _fault_occurred, probe={"Fault": {}}),
        _m(
            "CFX.ResourcePerformance.FaultCleared",
            "asset.fault_cleared",
            _fault_follow_up(EventType.ASSET_FAULT_CLEARED),
        ),
        _m(
            "CFX.ResourcePerformance.FaultAcknowledged",
            "asset.fault_acknowledged",
            _fault_follow_up(EventType.ASSET_FAULT_ACKNOWLEDGED),
        ),
        _m(
            "CFX.ResourcePerformance.StationStateChanged",
            "asset.state_changed",
            _station_state_changed,
            probe={"NewState": 1000},
        ),
        _m("CFX.EndpointConnected", "system.endpoint_connected", _endpoint(EventType.SYSTEM_ENDPOINT_CONNECTED)),
        _m(
            "CFX.EndpointShuttingDown",
            "system.endpoint_shutting_down",
            _endpoint(EventType.SYSTEM_ENDPOINT_SHUTTING_DOWN),
        ),
        _m("CFX.Heartbeat", "system.heartbeat", _endpoint(EventType.SYSTEM_HEARTBEAT)),
        _m(
            "CFX.Production.Processing.UnitsProcessed",
            "production.unit_processed",
            _units_processed,
            one_per="UnitProcessData",
            note="(one if the list is empty)",
        ),
        _m("CFX.Production.ReworkAndRepair.UnitsRepaired", "repair.result", _units_repaired, one_per="RepairedUnits"),
        _m("CFX.Production.UnitsInitialized", "production.unit_initialized", _units_initialized),
        _m("CFX.Production.WorkStageStarted", "production.stage_started", _work_stage("production.stage_started")),
        _m(
            "CFX.Production.WorkStageCompleted",
            "production.stage_completed",
            _work_stage("production.stage_completed"),
        ),
        _m(
            "CFX.Production.LoadingAndUnloading.UnitsLoaded",
            "production.unit_loaded",
            _units_loading("production.unit_loaded"),
        ),
        _m(
            "CFX.Production.LoadingAndUnloading.UnitsUnloaded",
            "production.unit_unloaded",
            _units_loading("production.unit_unloaded"),
        ),
        _m("CFX.Production.ToolsUsed", "asset.tool_used", _tools_used),
        _m("CFX.Production.RecipeActivated", "production.recipe_activated", _recipe_activated),
        _m(
            "CFX.Production.OperatorActivated",
            "production.operator_activated",
            _operator("production.operator_activated"),
        ),
        _m(
            "CFX.Production.OperatorDeactivated",
            "production.operator_deactivated",
            _operator("production.operator_deactivated"),
        ),
        _m("CFX.Production.ReadingsRecorded", "sensor.reading", _readings_recorded),
        _m("CFX.ResourcePerformance.ProcessDataRecorded", "sensor.reading", _process_data_recorded),
        _m("CFX.ResourcePerformance.MaintenancePerformed", "asset.maintenance", _maintenance_performed),
        _m("CFX.ResourcePerformance.CalibrationPerformed", "asset.calibration", _calibration_performed),
        _m("CFX.ResourcePerformance.StationOffline", "asset.offline", _station_online("asset.offline")),
        _m("CFX.ResourcePerformance.StationOnline", "asset.online", _station_online("asset.online")),
        _m("CFX.ResourcePerformance.EnergyConsumed", "asset.energy_consumed", _energy_consumed),
        _m("CFX.Materials.Management.MaterialsConsumed", "material.consumed", _materials_consumed),
        _m(
            "CFX.Production.Assembly.MaterialsUninstalled",
            "material.uninstalled",
            _materials_uninstalled,
            one_per="UninstalledMaterials",
        ),
        _m("CFX.Materials.Storage.MaterialsUnloaded", "material.unloaded", _materials_unloaded),
    )
}

_ADAPTERS: dict[str, Callable[[_Message], list[Event]]] = {name: m.adapt for name, m in MAPPINGS.items()}

#: CFX message names with a dedicated mapping; any other name maps to one generic event.
ADAPTED_MESSAGES: frozenset[str] = frozenset(_ADAPTERS)


def envelope_to_events(
    env: CFXEnvelope,
    *,
    source_hint: str | None = None,
    headers: dict[str, Any] | None = None,
    origin: str = "",
    keep_body: bool = False,
) -> list[Event]:
    """Map one CFX envelope to pyWATS events.

    Args:
        env: the envelope (``parse_envelopes``).
        source_hint: the sender as the transport knows it (AMQP ``cfx-handle``), used when the envelope's
            ``Source`` is null.
        headers: transport metadata copied into every event's ``headers``.
        origin: where the envelope came from, for error messages.
        keep_body: also put the original ``MessageBody`` (as received, ``$type`` and vendor members
            included) under the payload key ``cfx_body``; off by default, so the hot path copies nothing.

    Returns:
        The events, in body order. Messages with one event per item (UnitsTested, UnitsInspected,
        MaterialsInstalled) give none for an empty list. Event ids: the envelope's ``UniqueID`` for
        one-event messages, ``derive_event_id(UniqueID, index)`` for per-item ones (an envelope without a
        UniqueID uses a UUID5 of its content instead), so a redelivered message gives the same ids.

    Raises:
        InvalidMessageBodyError: the body does not fit its message (the message names the field path,
            e.g. ``TestedUnits[0].Tests``); ``InvalidResourceStateError`` for a bad E10 state.
    """
    source = env.source or (source_hint if source_hint and len(source_hint) <= 500 else None) or "unknown"
    adapt = _ADAPTERS.get(env.message_name, _other)
    try:
        return adapt(_Message(env, source, headers, origin, keep_body))
    except ValidationError as exc:
        # The fields above are checked one by one; this only guards a value the Event model still refuses.
        first = exc.errors()[0]
        raise InvalidMessageBodyError("", f"cannot build the event: {first['msg']}", origin) from None


def mapping_table() -> str:
    """The mapping as a Markdown table: CFX message, event type, events per message, payload keys.

    Generated from ``MAPPINGS`` (each row's keys by running its mapping), so it cannot drift from the code;
    ``python -m pywats_cfx.explorer --mapping`` prints it and docs/cfx.md carries it.
    """
    common = ", ".join(f"`{k}`" for k in COMMON_PAYLOAD_KEYS)
    lines = [
        f"Every mapped payload starts with {common}; `unknown_enum_values` is added when an enumeration value is",
        "outside the SDK's declaration, `cfx_body` with the `cfx-with-body` decoder.",
        "",
        "| CFX message | event type | events | payload keys |",
        "|---|---|---|---|",
    ]
    for m in sorted(MAPPINGS.values(), key=lambda m: (m.event_type, m.message_name)):
        keys = ", ".join(f"`{k}`" for k in m.payload_keys() if k not in COMMON_PAYLOAD_KEYS)
        per = f"one per `{m.one_per}` item" if m.one_per else "one"
        if m.note:
            per += " " + m.note
        lines.append(f"| `{m.message_name.removeprefix('CFX.')}` | `{m.event_type}` | {per} | {keys} |")
    return "\n".join(lines) + "\n"
