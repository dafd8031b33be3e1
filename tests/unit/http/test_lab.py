"""Lab models: ModuleStatusUpdateEvent validation and serialization, lab event message -> Event."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from pywats_events import Event, EventType, Severity
from pywats_events.codec import DecodeContext, get_decoder
from pywats_events.http.errors import InvalidLabMessageError
from pywats_events.lab import (
    LabEventMessage,
    ModuleStatus,
    ModuleStatusUpdateEvent,
    event_to_lab_message,
    lab_message_to_event,
    parse_lab_body,
)

READY = {"Id": 7, "ModuleIdentifier": "lh-1", "ModuleName": "Liquid handler", "Status": 0}


def test_status_is_serialized_as_its_integer_and_read_from_names() -> None:
    update = ModuleStatusUpdateEvent.model_validate({**READY, "Status": "busy", "OrdersBeingProcessed": ["o1", 2]})
    assert update.status is ModuleStatus.BUSY
    wire = update.to_wire_dict()
    assert wire["Status"] == 1
    assert wire["OrdersBeingProcessed"] == ["o1", "2"]
    assert "StatusDetails" not in wire, "None values are left out"
    assert ModuleStatusUpdateEvent.model_validate(wire) == update


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"Status": 1}, "OrdersBeingProcessed", "at least one order"),
        ({"Status": 2}, "StatusDetails", "what is wrong"),
        ({"Status": 2, "StatusDetails": "   "}, "StatusDetails", "what is wrong"),
        ({"ModuleIdentifier": "  "}, "ModuleIdentifier", "at least 1"),
        ({"ModuleName": ""}, "ModuleName", "at least 1"),
        ({"Id": 0}, "Id", "greater than 0"),
        ({"Status": 9}, "Status", "Input should be"),
        ({"Status": "sleeping"}, "Status", "not a module status"),
    ],
)
def test_invalid_module_status_names_the_field(change: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidLabMessageError) as info:
        parse_lab_body({**READY, **change})
    assert info.value.field == field
    assert words in str(info.value)


def test_module_status_accepts_camel_and_snake_case() -> None:
    camel = {"id": 1, "moduleIdentifier": "m", "moduleName": "M", "status": 3}
    snake = {"id": 1, "module_identifier": "m", "module_name": "M", "status": 3}
    assert ModuleStatusUpdateEvent.model_validate(camel) == ModuleStatusUpdateEvent.model_validate(snake)


def test_module_status_in_a_message_becomes_asset_state_changed() -> None:
    data = {**READY, "Status": 2, "StatusDetails": "tip jam", "Capabilities": ["dispense"]}
    message = LabEventMessage.model_validate(
        {"Topic": "Lab.Events.ModuleStatusUpdateEvent", "Data": json.dumps(data), "SourceTraceIds": ["r1"]}
    )
    event = lab_message_to_event(message)
    assert event.type == EventType.ASSET_STATE_CHANGED
    assert event.source == "lh-1"
    assert event.severity is Severity.ERROR
    assert event.correlation_id == "r1"
    assert event.subjects == ("lh-1",)
    p = event.payload
    assert (p["asset_id"], p["new_state"], p["new_state_name"], p["new_category"]) == ("lh-1", 2, "Error", "USD")
    assert p["status_details"] == "tip jam"
    assert p["capabilities"] == ["dispense"]
    assert event.headers["lab.topic"] == "Lab.Events.ModuleStatusUpdateEvent"


def test_ordinary_message_maps_topic_subjects_tags_and_trace() -> None:
    (event,) = parse_lab_body(
        {
            "topic": "Plates.Moved",
            "subjects": ["plate-1"],
            "tags": ["robot"],
            "data": [1, 2],
            "createdDateUtc": "2024-03-01T12:00:00+01:00",
            "sourceTraceIds": ["t-1", "t-0"],
            "organizationId": "org",
            "vendorField": "kept",
        },
        source="scheduler",
    )
    assert (event.type, event.source, event.subjects, event.tags) == (
        "Plates.Moved",
        "scheduler",
        ("plate-1",),
        ("robot",),
    )
    assert event.payload == {"value": [1, 2]}
    assert event.timestamp.isoformat() == "2024-03-01T11:00:00+00:00"
    assert event.correlation_id == "t-1"
    assert event.headers["lab.source_trace_ids"] == ["t-1", "t-0"]
    assert event.headers["lab.organization_id"] == "org"
    assert event.headers["lab.vendorField"] == "kept"


def test_topic_with_whitespace_is_refused_naming_topic() -> None:
    with pytest.raises(InvalidLabMessageError) as info:
        parse_lab_body([{"topic": "ok.one"}, {"topic": "not ok"}])
    assert info.value.field == "[1].topic"


def test_idempotency_seed_gives_stable_ids() -> None:
    first = parse_lab_body([{"topic": "a.b"}, READY], id_seed="req-1")
    again = parse_lab_body([{"topic": "a.b"}, READY], id_seed="req-1")
    assert [e.id for e in first] == [e.id for e in again]
    assert first[0].id != first[1].id


def test_event_to_lab_message_round_trips_and_drops_none() -> None:
    event = Event(
        type="asset.fault",
        source="ict-1",
        payload={"code": "E1", "detail": None, "nested": {"x": None, "y": 1}},
        subjects=("ict-1",),
        tags=("line-2",),
        correlation_id="tx",
        headers={"lab.user_id": "op-7"},
    )
    message = event_to_lab_message(event)
    assert message["topic"] == "asset.fault"
    assert message["data"] == {"code": "E1", "nested": {"y": 1}}
    assert message["sourceTraceIds"] == ["tx"]
    assert message["userId"] == "op-7"
    assert "organizationId" not in message
    (back,) = parse_lab_body(message)
    assert (back.type, back.subjects, back.tags, back.correlation_id) == ("asset.fault", ("ict-1",), ("line-2",), "tx")
    assert back.timestamp == event.timestamp


def test_lab_event_decoder_is_registered_for_other_transports() -> None:
    decode = get_decoder("lab-event")
    events = decode(json.dumps(READY).encode(), DecodeContext(origin="lab/topic", headers={"transport": "mqtt"}))
    assert events[0].type == EventType.ASSET_STATE_CHANGED
    assert events[0].headers["transport"] == "mqtt"
    with pytest.raises(InvalidLabMessageError):
        decode(b"{not json", DecodeContext(origin="x"))


def test_module_status_model_raises_validation_error_directly() -> None:
    with pytest.raises(ValidationError, match="OrdersBeingProcessed"):
        ModuleStatusUpdateEvent(Id=1, ModuleIdentifier="m", ModuleName="M", Status=ModuleStatus.BUSY)
