"""The adapters and the typed models accept and refuse the same bodies (issue 11, point 3).

Two sources of bodies: every SDK example of a mapped message (``samples/cfx``), and for every typed model a
body with every member it declares filled, built from the model's own fields (which mirror the SDK classes,
IPCConnectedFactoryExchange/CFX ``CFX/Structures/*.cs``: a ``UnitPosition`` object where the SDK declares one,
enumerations by member name, ``TimeSpan`` as .NET text). Each body is then broken one member at a time
(an object, an array, a boolean, a number, text) and both routes must agree: both accept it, or both refuse it
naming the same field.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Annotated, Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from pywats_cfx import (
    InvalidMessageBodyError,
    decode_cfx,
    encode_envelope,
    envelope_to_bytes,
    parse_envelopes,
    parse_message,
)
from pywats_cfx.adapters import MAPPINGS
from pywats_cfx.models import MESSAGE_MODELS
from pywats_events.codec import DecodeContext
from tests.cfx_samples import VALID

# Members whose value has a form of its own (not derivable from the field type).
_SPECIAL: dict[str, Any] = {
    "NewState": "SBY_NoProduct",
    "OldState": 1100,
    "OldStateDuration": "00:01:25",
    "HeartbeatFrequency": "00:01:00",
    "OfflineDuration": "1.02:03:04.5",
}


def _enum_of(meta: Any) -> Any:
    func = getattr(meta, "func", None)
    for cell in getattr(func, "__closure__", None) or ():
        if type(cell.cell_contents).__name__ == "CFXEnum":
            return cell.cell_contents
    return None


def _value(annotation: Any, name: str, depth: int) -> Any:
    if name in _SPECIAL:
        return _SPECIAL[name]
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *meta = get_args(annotation)
        for m in meta:
            table = _enum_of(m)
            if table is not None:
                return table.members[-1]  # the last member: its number is not 0, the C# default
        return _value(base, name, depth)
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in get_args(annotation) if a is not type(None)), name, depth)
    if origin is list:
        return [_value(get_args(annotation)[0], name, depth + 1)]
    if origin is dict:
        return {"en": "text"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return filled(annotation, depth + 1)
    return {str: f"{name}-1", int: 2, float: 1.5, bool: True, datetime: "2026-01-02T03:04:05.1234567+01:00",
            timedelta: "00:00:05"}.get(annotation, f"{name}-value")  # fmt: skip


def filled(model: type[BaseModel], depth: int = 0) -> dict[str, Any]:
    """A body with every member ``model`` declares filled, named as the SDK spells it."""
    body = {}
    for name, info in model.model_fields.items():
        wire = info.alias or name
        # pydantic keeps an Annotated field's validators in ``metadata``; an enum's table is among them.
        tables = [t for t in map(_enum_of, info.metadata) if t is not None]
        body[wire] = tables[0].members[-1] if tables and wire not in _SPECIAL else _value(info.annotation, wire, depth)
    return body


def leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "$type":
                yield from leaves(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, (*path, i))
    else:
        yield path, obj


def replaced(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(obj)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return out


def outcome(name: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(field the adapter refused, field the typed model refused); None where the route accepted."""
    data = envelope_to_bytes(encode_envelope(name, body, source="Vendor.Model.SN1", unique_id="u-1"))
    fast = typed = None
    try:
        decode_cfx(data, DecodeContext(origin="queue:parity"))
    except InvalidMessageBodyError as exc:
        fast = exc.field
        # point 6: every mapping error names its origin and the field path
        assert exc.where == "queue:parity" and f"MessageBody.{exc.field}" in str(exc)
    try:
        parse_message(parse_envelopes(data)[0], origin="queue:parity")
    except InvalidMessageBodyError as exc:
        typed = exc.field
        assert exc.where == "queue:parity"
    return fast, typed


def assert_same(name: str, body: dict[str, Any], wrongs: tuple[Any, ...]) -> None:
    assert outcome(name, body) == (None, None), "the unbroken body is accepted by both routes"
    for path, _ in leaves(body):
        for wrong in wrongs:
            fast, typed = outcome(name, replaced(body, path, wrong))
            where = ".".join(map(str, path))
            assert (fast is None) == (typed is None), f"{name} {where}={wrong!r}: adapter {fast}, model {typed}"
            if fast is not None and typed is not None:
                assert fast.lower().startswith(typed.lower()) or typed.lower().startswith(fast.lower())


WRONG = ({"x": 1}, [1], True, 1.5, 7, "not-a-thing", "1", None)


@pytest.mark.parametrize("name", sorted(MAPPINGS), ids=lambda n: n.removeprefix("CFX."))
def test_every_member_filled_body_is_judged_alike_by_both_routes(name: str) -> None:
    assert_same(name, filled(MESSAGE_MODELS[name]), WRONG)


SAMPLES_OF_MAPPED = [p for p in VALID if parse_envelopes(p.read_bytes())[0].message_name in MAPPINGS]


@pytest.mark.parametrize("path", SAMPLES_OF_MAPPED, ids=lambda p: p.stem)
def test_every_sdk_example_and_its_broken_variants_are_judged_alike(path: Any) -> None:
    env = parse_envelopes(path.read_bytes())[0]
    assert_same(env.message_name, env.message_body, ({"x": 1}, True, "not-a-thing"))


def test_filled_bodies_follow_the_sdk_shapes() -> None:
    body = filled(MESSAGE_MODELS["CFX.Production.TestAndInspection.UnitsTested"])
    designator = body["TestedUnits"][0]["Tests"][0]["SymptomsFound"][0]["ComponentsOfInterest"][0]
    assert isinstance(designator["UnitPosition"], dict)  # CFX/Structures/ComponentDesignator.cs
    assert body["TestMethod"] == "BST" and body["TestedUnits"][0]["OverallResult"] == "Skipped"
    assert set(MESSAGE_MODELS) == set(MAPPINGS)


def list_paths(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from list_paths(v, (*path, k))
    elif isinstance(obj, list):
        yield path
        for i, v in enumerate(obj):
            yield from list_paths(v, (*path, i))


@pytest.mark.parametrize("name", sorted(MAPPINGS), ids=lambda n: n.removeprefix("CFX."))
def test_a_null_list_reads_as_empty_in_both_routes(name: str) -> None:
    # Newtonsoft writes an unset List<T> as null (CFX/Utilities/JsonConvert.cs, default NullValueHandling).
    body = filled(MESSAGE_MODELS[name])
    paths = list(list_paths(body))
    for path in paths:
        assert outcome(name, replaced(body, path, None)) == (None, None), ".".join(map(str, path))
    for path in (p for p in paths if len(p) == 1):
        data = envelope_to_bytes(encode_envelope(name, replaced(body, path, None), source="Vendor.Model.SN1"))
        model = parse_message(parse_envelopes(data)[0])
        field = next(f for f, info in type(model).model_fields.items() if (info.alias or f) == path[0])
        assert getattr(model, field) == [], f"{name}.{path[0]}: null reads as an empty list"
