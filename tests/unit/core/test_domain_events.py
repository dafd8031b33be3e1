"""Typed domain events: the registry, typed payloads (permissive in presence, strict in type), the error that
names the event type and field, dead-lettering from a handler, JSON Schema export and the CLI command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pywats_events import (
    DOMAIN_EVENTS,
    AssetFaultEvent,
    AssetStateChangedEvent,
    DeadLetterReason,
    DomainPayload,
    Event,
    EventBus,
    EventType,
    MaterialInstalledEvent,
    NoPayloadModelError,
    PayloadValidationError,
    RetryPolicy,
    TestResultEvent,
    UnrecoverableError,
    WorkCompletedEvent,
    WorkStartedEvent,
    domain_event_schema,
    payload_model,
    typed_payload,
)
from pywats_events.domain import SCHEMA_DIALECT
from pywats_events.schema_cli import schema_file_name, write_schemas


def ev(type_: str, payload: dict[str, Any], id_: str = "e-1") -> Event:
    return Event(id=id_, type=type_, source="st-1", payload=payload)


# --- the registry --------------------------------------------------------------------------------------


def test_the_documents_typed_events_are_registered_under_the_projects_types() -> None:
    assert payload_model(EventType.TEST_RESULT) is TestResultEvent
    assert payload_model(EventType.MATERIAL_INSTALLED) is MaterialInstalledEvent
    assert payload_model(EventType.ASSET_FAULT) is AssetFaultEvent
    assert payload_model(EventType.ASSET_STATE_CHANGED) is AssetStateChangedEvent
    assert payload_model(EventType.WORK_STARTED) is WorkStartedEvent
    assert payload_model("production.work_completed") is WorkCompletedEvent
    assert all(model.EVENT_TYPE == t and issubclass(model, DomainPayload) for t, model in DOMAIN_EVENTS.items())
    assert len(DOMAIN_EVENTS) == len(set(DOMAIN_EVENTS.values())) == 36


def test_unknown_event_type_raises_naming_it_and_the_known_ones() -> None:
    with pytest.raises(NoPayloadModelError) as info:
        payload_model("test.reslut")
    assert info.value.event_type == "test.reslut"
    assert "'test.reslut'" in str(info.value) and "test.result" in str(info.value)
    assert isinstance(info.value, LookupError)
    with pytest.raises(NoPayloadModelError):
        typed_payload(ev("vendor.custom", {}))


# --- typed payloads --------------------------------------------------------------------------------------


def test_a_producer_with_fewer_fields_validates_with_none_and_empty_lists() -> None:
    # What an MQTT tester might send: the unit, the verdict and one test, none of the CFX envelope members.
    mqtt = {"unit_id": "SN-1", "result": "fail", "tests": [{"name": "Vcc", "result": "fail"}]}
    model = typed_payload(ev("test.result", mqtt))
    assert isinstance(model, TestResultEvent)
    assert (model.unit_id, model.result, model.tests[0].name) == ("SN-1", "fail", "Vcc")
    assert model.tests[0].measurements == [] and model.tests[0].start_time is None
    assert model.cfx_message is None and model.operator_id is None and model.unit_position is None
    assert model.model_dump(mode="json", exclude_unset=True) == mqtt  # nothing added, nothing lost


def test_an_explicit_model_types_the_result_and_serves_custom_types() -> None:
    model = typed_payload(ev("test.result", {"unit_id": "SN-1"}), TestResultEvent)
    assert model.unit_id == "SN-1"  # typed as TestResultEvent, no isinstance needed

    class OvenProfile(DomainPayload):
        zone_temperatures_c: list[float] = []

    custom = typed_payload(ev("vendor.oven_profile", {"zone_temperatures_c": [180.0, 245]}), OvenProfile)
    assert custom.zone_temperatures_c == [180.0, 245]
    with pytest.raises(PayloadValidationError) as info:
        typed_payload(ev("vendor.oven_profile", {"zone_temperatures_c": ["hot"]}), OvenProfile)
    assert (info.value.event_type, info.value.field) == ("vendor.oven_profile", "zone_temperatures_c.0")


def test_members_the_model_does_not_declare_are_kept() -> None:
    model = typed_payload(ev("asset.fault", {"asset_id": "oven-1", "code": "E42", "line": "L3"}))
    assert isinstance(model, AssetFaultEvent)
    assert model.code == "E42" and model.model_extra == {"line": "L3"}


def test_numbers_dates_and_non_finite_values_keep_their_form() -> None:
    payload = {
        "unit_id": "SN-1",
        "unit_position": 2,
        "start_time": "2026-03-01T10:00:00+01:00",
        "tests": [{"measurements": [{"value": 3.3, "low_limit": "-Infinity", "high_limit": 3.6, "sequence": 1}]}],
    }
    model = typed_payload(ev("test.result", payload))
    assert isinstance(model, TestResultEvent)
    m = model.tests[0].measurements[0]
    assert (m.value, m.low_limit, m.high_limit) == (3.3, "-Infinity", 3.6)
    assert model.start_time == "2026-03-01T10:00:00+01:00"  # as sent, offset kept


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"unit_id": 123}, "unit_id"),  # a number is not a string
        ({"unit_position": "3"}, "unit_position"),  # a numeric string is not an integer
        ({"unit_position": True}, "unit_position"),  # a boolean is not an integer
        ({"unit_position": 2.5}, "unit_position"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"tests": {"name": "x"}}, "tests"),  # an object is not a list
        ({"tests": [{"result": "pass", "end_time": "2026-13-01T00:00:00Z"}]}, "tests.0.end_time"),
        ({"tests": [{"measurements": [{"low_limit": "1.5"}]}]}, "tests.0.measurements.0.low_limit"),
    ],
)
def test_a_wrong_type_raises_naming_the_event_type_and_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadValidationError) as info:
        typed_payload(ev("test.result", payload, id_="ev-77"))
    err = info.value
    assert (err.event_type, err.event_id) == ("test.result", "ev-77")
    assert err.field == field or err.field.startswith(field + ".")
    assert str(err).startswith(f"test.result payload of event ev-77: {err.field}: ")
    assert err.reason and isinstance(err, UnrecoverableError) and isinstance(err, ValueError)


def test_state_change_needs_its_new_state() -> None:
    with pytest.raises(PayloadValidationError) as info:
        typed_payload(ev("asset.state_changed", {"asset_id": "oven-1", "old_state": 1000}))
    assert info.value.field == "new_state" and "required" in info.value.reason.lower()
    ok = typed_payload(ev("asset.state_changed", {"asset_id": "oven-1", "new_state": 4100}))
    assert isinstance(ok, AssetStateChangedEvent) and ok.new_state == 4100


def test_several_problems_are_counted_in_the_message() -> None:
    with pytest.raises(PayloadValidationError) as info:
        typed_payload(ev("material.installed", {"unit_id": 1, "lot": 2, "components": "R1"}))
    assert info.value.problems == 3 and "(and 2 more)" in str(info.value)


def test_models_are_immutable() -> None:
    model = typed_payload(ev("asset.online", {"asset_id": "a", "offline_duration_s": 12.5}))
    with pytest.raises(ValueError, match="frozen"):
        model.asset_id = "b"  # type: ignore[attr-defined]


async def test_a_payload_that_does_not_fit_goes_to_the_dead_letter_queue_without_retries() -> None:
    bus = EventBus(retry=RetryPolicy(max_attempts=5, initial_delay=0.01))
    seen: list[str | None] = []
    attempts = 0

    @bus.subscribe("test.result", name="typed")
    async def typed(e: Event) -> None:
        nonlocal attempts
        attempts += 1
        model = typed_payload(e)
        assert isinstance(model, TestResultEvent)
        seen.append(model.unit_id)

    async with bus:
        good = await bus.publish(ev("test.result", {"unit_id": "SN-1", "result": "pass"}, id_="good"))
        bad = await bus.publish(ev("test.result", {"unit_id": "SN-2", "result": ["pass"]}, id_="bad"))
        entries = await bus.dead_letters.list()
    assert seen == ["SN-1"] and attempts == 2  # the bad one was tried once, not five times
    assert good.dead_lettered == 0 and bad.dead_lettered == 1
    (entry,) = entries
    assert entry.reason == DeadLetterReason.UNRECOVERABLE and entry.attempts == 1
    assert entry.event is not None and entry.event.id == "bad" and entry.error_type.endswith("PayloadValidationError")
    assert "test.result payload of event bad: result" in entry.error_message


# --- JSON Schema ---------------------------------------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize("event_type", sorted(DOMAIN_EVENTS))
def test_every_schema_is_a_draft_2020_12_object_schema_of_its_model(event_type: str) -> None:
    schema = domain_event_schema(event_type)
    model = DOMAIN_EVENTS[event_type]
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"] == f"urn:pywats-events:payload:{event_type}" and schema["x-event-type"] == event_type
    assert schema["type"] == "object" and schema["title"] == model.__name__
    assert schema["additionalProperties"] is True
    assert set(schema["properties"]) == set(model.model_fields)
    # Every property says what it is (units included where there are any).
    assert all(p.get("description") for p in schema["properties"].values())
    # Every reference resolves inside the document: a producer needs this one file only.
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"]
    json.dumps(schema)  # plain JSON
    try:
        import jsonschema
    except ImportError:
        return
    jsonschema.Draft202012Validator.check_schema(schema)


def test_schemas_state_units_and_requirements() -> None:
    state = domain_event_schema("asset.state_changed")
    assert state.get("required") == ["new_state"]
    assert "seconds" in state["properties"]["old_state_duration_s"]["description"]
    energy = domain_event_schema("asset.energy_consumed")["properties"]
    assert "kWh" in energy["energy_used"]["description"] and "W" in energy["peak_power"]["description"]
    recipe = domain_event_schema("production.recipe_activated")["properties"]
    assert "milliseconds" in recipe["expected_cycle_time_ms"]["description"]
    dates = domain_event_schema("test.result")["properties"]["start_time"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in dates


def test_write_schemas_writes_one_file_per_type(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "schemas")
    assert [p.name for p in written] == [schema_file_name(t) for t in sorted(DOMAIN_EVENTS)]
    for path in written:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data == domain_event_schema(data["x-event-type"])
    assert not list((tmp_path / "schemas").glob("*.tmp"))


def test_write_schemas_with_an_unknown_type_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(NoPayloadModelError):
        write_schemas(tmp_path / "out", ["test.result", "no.such"])
    assert not (tmp_path / "out").exists()


# --- the command line ------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pywats_events.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prints_one_schema_and_writes_all(tmp_path: Path) -> None:
    one = _cli("schema", "asset.fault")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == domain_event_schema("asset.fault")

    out = tmp_path / "contract"
    every = _cli("schema", "--out", str(out))
    assert every.returncode == 0, every.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(schema_file_name(t) for t in DOMAIN_EVENTS)
    assert every.stdout.split() == [str(out / schema_file_name(t)) for t in sorted(DOMAIN_EVENTS)]
    assert json.loads((out / "test.result.schema.json").read_text())["title"] == "TestResultEvent"


def test_cli_prints_every_schema_by_type() -> None:
    every = _cli("schema")
    assert every.returncode == 0, every.stderr
    assert json.loads(every.stdout) == {t: domain_event_schema(t) for t in DOMAIN_EVENTS}


def test_cli_refuses_an_unknown_type_with_exit_code_2(tmp_path: Path) -> None:
    bad = _cli("schema", "no.such", "--out", str(tmp_path / "x"))
    assert bad.returncode == 2
    assert "no payload model for event type 'no.such'" in bad.stderr and "test.result" in bad.stderr
    assert not (tmp_path / "x").exists() and bad.stdout == ""
