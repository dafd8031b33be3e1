"""``Event.trusted``: the constructor for values already validated (adapters, the store's own rows) gives
the same frozen event as validation does; the SQL store reads its rows through it and falls back to
validation for bodies it did not write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pydantic
import pytest
import sqlalchemy as sa

from pywats_events.event import Event, Severity
from pywats_events.sql_store import SQLStore, _stored_event
from pywats_events.store import EventQuery

T = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_trusted_equals_the_validated_event_from_the_same_values() -> None:
    kw = dict(id="e-1", type="test.result", source="ict-1", timestamp=T, payload={"result": "pass"},
              correlation_id="tx", causation_id="c", subjects=("SN1",), tags=("t",), headers={"h": 1})
    validated = Event(severity="warning", **kw)  # type: ignore[arg-type]
    trusted = Event.trusted(severity=Severity.WARNING, **kw)  # type: ignore[arg-type]
    assert trusted == validated
    assert trusted.category == "test" and trusted.severity_rank == 1
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert Event.from_json_dict(trusted.to_json_dict()) == validated
    with pytest.raises(pydantic.ValidationError):
        trusted.type = "other"  # type: ignore[misc]  # frozen like any event


def test_trusted_fills_defaults_like_the_model() -> None:
    before = datetime.now(UTC)
    e = Event.trusted(type="asset.fault")
    assert len(e.id) == 36 and e.source == "unknown" and e.payload == {} and e.headers == {}
    assert e.timestamp.tzinfo is UTC and before <= e.timestamp <= datetime.now(UTC)
    assert Event.trusted(type="asset.fault").id != e.id
    assert e.model_copy(update={"headers": {"x": 1}}).headers == {"x": 1} and e.headers == {}


def test_stored_bodies_come_back_equal_and_other_shapes_are_validated() -> None:
    ev = Event(type="test.result", source="s", timestamp=T, severity="error", subjects=("a", "b"))
    import json

    assert _stored_event(json.loads(ev.model_dump_json())) == ev
    # Another offset is converted to UTC, a naive time taken as UTC, as validation does.
    body = json.loads(ev.model_dump_json())
    body["timestamp"] = (T.astimezone(timezone(timedelta(hours=2)))).isoformat()
    assert _stored_event(body).timestamp == T and _stored_event(body).timestamp.tzinfo is UTC
    body["timestamp"] = T.replace(tzinfo=None).isoformat()
    assert _stored_event(body) == ev
    # Not this store's shape: validation decides, and names the field.
    with pytest.raises(pydantic.ValidationError, match="severity"):
        _stored_event({**json.loads(ev.model_dump_json()), "severity": "loud"})
    with pytest.raises(pydantic.ValidationError, match="unexpected"):
        _stored_event({**json.loads(ev.model_dump_json()), "unexpected": 1})


async def test_the_sql_store_reads_back_exactly_the_events_it_wrote(tmp_path: Path) -> None:
    store = SQLStore(str(tmp_path / "t.db"))
    await store.open()
    try:
        events = [
            Event(type="test.result", source=f"s{i}", timestamp=T + timedelta(seconds=i), payload={"n": i, "é": "ü"},
                  severity=("info", "critical")[i % 2], tags=("x",))
            for i in range(5)
        ]
        await store.append_events(events)
        back = [r.event for r in await store.query_events(EventQuery())]
        assert back == events
        # A body edited by hand into another valid shape still reads (through validation).
        engine = store._engine
        assert engine is not None
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("UPDATE events SET body = json_set(body, '$.severity', 'warning') WHERE id = :i"),
                {"i": events[0].id},
            )
        first = (await store.query_events(EventQuery(limit=1)))[0].event
        assert first.severity is Severity.WARNING
    finally:
        await store.close()
