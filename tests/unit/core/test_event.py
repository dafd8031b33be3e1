"""The event model: JSON form, derived category, UTC timestamps, validation, stable derived ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pywats_events import Event, EventType, Severity, derive_event_id

JSON_KEYS = {
    "id",
    "type",
    "source",
    "timestamp",
    "category",
    "severity",
    "payload",
    "correlation_id",
    "causation_id",
    "subjects",
    "tags",
    "headers",
}


def test_json_form_has_exactly_the_documented_keys_and_round_trips() -> None:
    ev = Event(
        type="test.result",
        source="ICT.Model1.SN1",
        payload={"unit_id": "U1", "result": "fail"},
        severity=Severity.WARNING,
        subjects=("U1",),
        tags=("line-3",),
        correlation_id="tx-1",
    )
    data = json.loads(ev.to_json())
    assert set(data) == JSON_KEYS
    assert data["category"] == "test"
    assert data["timestamp"].endswith("Z")
    assert data["severity"] == "warning"
    back = Event.from_json_dict(data)
    assert back == ev


def test_category_is_the_first_segment_of_the_type() -> None:
    assert Event(type="asset.fault_cleared").category == "asset"
    assert Event(type="CFX.Production.WorkStarted").category == "CFX"
    assert Event(type="heartbeat").category == "heartbeat"


def test_timestamps_are_converted_to_utc_and_naive_ones_taken_as_utc() -> None:
    local = datetime(2024, 3, 26, 16, 52, 25, tzinfo=timezone(timedelta(hours=-4)))
    ev = Event(type="x.y", timestamp=local)
    assert ev.timestamp.utcoffset() == timedelta(0)
    assert ev.timestamp == local
    assert ev.timestamp.hour == 20
    naive = Event(type="x.y", timestamp=datetime(2024, 1, 1, 12, 0))
    assert naive.timestamp.tzinfo is not None and naive.timestamp.hour == 12


def test_known_types_are_enumerated_and_other_dotted_types_are_valid() -> None:
    assert EventType.TEST_RESULT == "test.result"
    assert EventType.SYSTEM_DEAD_LETTER == "system.dead_letter"
    assert len(EventType) >= 20
    assert Event(type="my.custom.thing").type == "my.custom.thing"


@pytest.mark.parametrize(
    ("field", "value"),
    [("type", ""), ("type", "has space"), ("severity", "fatal"), ("timestamp", "yesterday"), ("id", "")],
)
def test_invalid_fields_are_rejected(field: str, value: str) -> None:
    data = {"type": "test.result", field: value}
    with pytest.raises(ValidationError) as info:
        Event.model_validate(data)
    assert field in str(info.value)


def test_unknown_keys_are_rejected_but_category_is_accepted_from_json() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Event.model_validate({"type": "a.b", "colour": "red"})
    assert Event.from_json_dict({"type": "a.b", "category": "a"}).category == "a"


def test_events_are_immutable() -> None:
    ev = Event(type="a.b")
    with pytest.raises(ValidationError):
        ev.type = "c.d"  # type: ignore[misc]


def test_derived_ids_are_stable_per_source_id_and_index() -> None:
    a = derive_event_id("f3b2c8ec-50b7-4c63-9cb3-2ed57c01880f", 0)
    assert a == derive_event_id("f3b2c8ec-50b7-4c63-9cb3-2ed57c01880f", 0)
    assert a != derive_event_id("f3b2c8ec-50b7-4c63-9cb3-2ed57c01880f", 1)
    assert a != derive_event_id("another", 0)


def test_severity_order_is_info_warning_error_critical() -> None:
    assert [s.rank for s in (Severity.INFO, Severity.WARNING, Severity.ERROR, Severity.CRITICAL)] == [0, 1, 2, 3]
    assert Event(type="a.b", timestamp=datetime.now(UTC), severity="critical").severity_rank == 3


def test_derived_ids_are_rfc4122_version5_uuids() -> None:
    import uuid

    from pywats_events.event import EVENT_ID_NAMESPACE

    for source_id, index in [("abc", 0), ("f3b2c8ec-50b7-4c63-9cb3-2ed57c01880f", 7), ("ü-ñ", 12345)]:
        assert derive_event_id(source_id, index) == str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{source_id}#{index}"))


def test_generated_ids_are_time_ordered_rfc9562_version7_uuids() -> None:
    import itertools
    import time
    import uuid

    before_ms = time.time_ns() // 1_000_000
    ids = [Event(type="a.b").id for _ in range(2000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids[:50]:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 7 and u.variant == uuid.RFC_4122
        assert before_ms <= u.int >> 80 <= after_ms  # 48-bit Unix milliseconds in front
    # Later ids sort later (sub-millisecond precision; two in the same ~244 ns tick may tie on time).
    out_of_order = sum(a > b for a, b in itertools.pairwise(ids))
    assert out_of_order <= len(ids) // 100
