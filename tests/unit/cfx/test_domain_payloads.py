"""The typed domain event models (core, ``pywats_events.domain``) match what the IPC-CFX adapters produce:
every key of every mapping is declared, every SDK sample's payloads validate with nothing undeclared at
any depth and nothing changed, and the exported JSON Schema accepts the same payloads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from pywats_cfx import decode_cfx, encode_envelope, envelope_to_bytes, parse_envelopes
from pywats_cfx.adapters import MAPPINGS, UNKNOWN_ENUM_TAG
from pywats_cfx.decoder import decode_cfx_with_body
from pywats_cfx.models import MESSAGE_MODELS
from pywats_events import DOMAIN_EVENTS, PayloadValidationError, domain_event_schema, typed_payload
from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from tests.cfx_samples import MAPPED_TYPES, VALID
from tests.unit.cfx.test_parity import filled

MAPPED_SAMPLES = [p for p in VALID if parse_envelopes(p.read_bytes())[0].message_name in MAPPED_TYPES]


def _events(path: Path, with_body: bool = False) -> list[Event]:
    decode = decode_cfx_with_body if with_body else decode_cfx
    return decode(path.read_bytes(), DecodeContext(origin=str(path)))


def _undeclared(node: Any, path: str = "") -> list[str]:
    """Paths of members a model kept without declaring them, at any depth."""
    if isinstance(node, BaseModel):
        found = [path + k for k in node.model_extra or {}]
        for name in type(node).model_fields:
            found += _undeclared(getattr(node, name), f"{path}{name}.")
        return found
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _undeclared(item, f"{path}{i}.")]
    return []


# A validator for the JSON Schema subset pydantic writes ($ref, anyOf, type, enum, properties, required,
# additionalProperties, items), used when the jsonschema package is not installed: the test then still
# proves the exported schema accepts what the adapters produce, independently of pydantic.
_JSON_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "") -> list[str]:
    if "$ref" in schema:
        return _schema_errors(value, root["$defs"][schema["$ref"].removeprefix("#/$defs/")], root, where)
    if "anyOf" in schema:
        if any(not _schema_errors(value, option, root, where) for option in schema["anyOf"]):
            return []
        return [f"{where}: {value!r:.60} fits no anyOf option"]
    if "type" in schema and not _JSON_TYPES[schema["type"]](value):
        return [f"{where}: {value!r:.60} is not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r:.60} not in {schema['enum']}"]
    errors: list[str] = []
    if isinstance(value, dict):
        errors += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += _schema_errors(v, props[k], root, f"{where}.{k}")
            elif extra is False:
                errors.append(f"{where}.{k}: not allowed")
            elif isinstance(extra, dict):
                errors += _schema_errors(v, extra, root, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _schema_errors(item, schema["items"], root, f"{where}[{i}]")
    return errors


def _validate_with_schema(payload: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    try:
        import jsonschema
    except ImportError:
        return _schema_errors(payload, schema, schema)
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(payload)]


@pytest.mark.parametrize("mapping", list(MAPPINGS.values()), ids=lambda m: m.message_name.removeprefix("CFX."))
def test_every_key_a_mapping_produces_is_a_declared_field(mapping: Any) -> None:
    model = DOMAIN_EVENTS[mapping.event_type]
    assert mapping.message_name in model.CFX_MESSAGES
    missing = [k for k in mapping.payload_keys() if k not in model.model_fields]
    assert not missing, f"{model.__name__} lacks {missing}"


def test_every_event_type_the_adapters_produce_has_a_model() -> None:
    assert {m.event_type for m in MAPPINGS.values()} == set(DOMAIN_EVENTS)
    assert set(MAPPED_TYPES.values()) == set(DOMAIN_EVENTS)


def _check(event: Event) -> None:
    model = typed_payload(event)
    assert type(model) is DOMAIN_EVENTS[event.type]
    assert _undeclared(model) == []
    # Strict validation changed nothing: dumping what was set gives the adapter's payload back.
    assert model.model_dump(mode="json", exclude_unset=True) == json.loads(json.dumps(event.payload))
    payload = json.loads(event.to_json())["payload"]
    assert _validate_with_schema(payload, domain_event_schema(event.type)) == []


@pytest.mark.parametrize("name", sorted(MAPPINGS), ids=lambda n: n.removeprefix("CFX."))
def test_member_filled_bodies_validate_against_their_model_and_schema(name: str) -> None:
    # Four mapped messages have no SDK example (MaterialsInstalled, ReadingsRecorded, RecipeActivated,
    # EnergyConsumed); a body with every member the SDK declares filled covers them and every member.
    wire = envelope_to_bytes(encode_envelope(name, filled(MESSAGE_MODELS[name]), source="V.M.SN1", unique_id="u-1"))
    events = decode_cfx(wire, DecodeContext(origin=name))
    assert events
    for event in events:
        _check(event)


@pytest.mark.parametrize("path", MAPPED_SAMPLES, ids=lambda p: p.stem)
def test_sdk_sample_payloads_validate_against_their_model_and_schema(path: Path) -> None:
    events = _events(path)
    assert events
    for event in events:
        _check(event)


def test_payloads_with_the_original_body_validate() -> None:
    path = next(p for p in MAPPED_SAMPLES if p.name.startswith("CFX.Production.TestAndInspection.UnitsTested"))
    for event in _events(path, with_body=True):
        model = typed_payload(event)
        assert isinstance(model.cfx_body, dict) and model.cfx_body == event.payload["cfx_body"]


def test_unknown_enumeration_values_are_part_of_the_contract() -> None:
    body = {"TestMethod": 42, "TestedUnits": [{"UnitIdentifier": "U1", "OverallResult": 7, "Tests": []}]}
    wire = envelope_to_bytes(
        encode_envelope("CFX.Production.TestAndInspection.UnitsTested", body, source="V.M.SN1", unique_id="u-1")
    )
    (event,) = decode_cfx(wire, DecodeContext(origin="test"))
    assert event.tags == (UNKNOWN_ENUM_TAG,)
    model = typed_payload(event)
    assert (model.method, model.result) == (42, 7)  # type: ignore[attr-defined]
    assert [(u.field, u.enum, u.value) for u in model.unknown_enum_values or []] == [
        ("TestMethod", "TestMethod", 42),
        ("TestedUnits[0].OverallResult", "TestResult", 7),
    ]
    assert _undeclared(model) == []


def test_a_changed_adapter_output_would_be_caught() -> None:
    # The contract is what the adapters produce today: a payload shaped differently fails, naming the field.
    path = next(p for p in MAPPED_SAMPLES if p.name.startswith("CFX.ResourcePerformance.StationStateChanged"))
    (event,) = _events(path)
    drifted = event.model_copy(update={"payload": {**event.payload, "old_state_duration_s": "00:05:00"}})
    with pytest.raises(PayloadValidationError) as info:
        typed_payload(drifted)
    assert (info.value.event_type, info.value.field) == ("asset.state_changed", "old_state_duration_s")
    assert _validate_with_schema(drifted.payload, domain_event_schema("asset.state_changed")) != []


def test_schemas_written_by_the_cli_accept_the_sample_payloads(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "from pywats_events.cli import main; main()", "schema", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    checked = 0
    for path in MAPPED_SAMPLES:
        for event in _events(path):
            schema = json.loads((tmp_path / f"{event.type}.schema.json").read_text(encoding="utf-8"))
            assert _validate_with_schema(json.loads(event.to_json())["payload"], schema) == [], path.name
            checked += 1
    assert checked >= len(MAPPED_SAMPLES)
