"""The store contract, proved alike on MemoryStore, SQLite (a temp file) and PostgreSQL (a fresh DB)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pywats_events.errors import DeadLetterNotFoundError
from pywats_events.event import Event
from pywats_events.store import DeadLetterEntry, DeadLetterReason, EventQuery, Store

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ev(
    type_: str = "test.result",
    *,
    minutes: float = 0,
    source: str = "st1",
    severity: str = "info",
    id_: str | None = None,
    **kw: object,
) -> Event:
    return Event(
        id=id_ or str(uuid.uuid4()),
        type=type_,
        source=source,
        severity=severity,
        timestamp=T0 + timedelta(minutes=minutes),
        **kw,
    )


def ids(stored: list) -> list[str]:
    return [s.event.id for s in stored]


# -- idempotency -----------------------------------------------------------------------------------


async def test_completed_handlers_returns_recorded_pairs_only(store: Store) -> None:
    await store.mark_completed([("e1", "h1"), ("e1", "h2"), ("e2", "h1")])
    got = await store.completed_handlers(["e1", "e2", "e3"])
    assert got == {"e1": {"h1", "h2"}, "e2": {"h1"}}
    assert await store.completed_handlers([]) == {}


async def test_marking_an_existing_pair_again_is_not_an_error(store: Store) -> None:
    await store.mark_completed([("e1", "h1")])
    await store.mark_completed([("e1", "h1"), ("e1", "h1"), ("e1", "h2")])
    assert await store.completed_handlers(["e1"]) == {"e1": {"h1", "h2"}}


async def test_completed_handlers_handles_more_ids_than_one_sql_chunk(store: Store) -> None:
    many = [f"ev-{i}" for i in range(1_234)]
    await store.mark_completed([(i, "h") for i in many[::2]])
    got = await store.completed_handlers(many + many[:10])
    assert set(got) == set(many[::2])


async def test_concurrent_lookups_each_get_their_own_answer(store: Store) -> None:
    await store.mark_completed([(f"e{i}", f"h{i}") for i in range(100)])
    answers = await asyncio.gather(*(store.completed_handlers([f"e{i}", "nope"]) for i in range(100)))
    assert answers == [{f"e{i}": {f"h{i}"}} for i in range(100)]


async def test_write_futures_resolve_in_fifo_order_and_data_is_visible(store: Store) -> None:
    futures = [store.mark_completed([(f"e{i}", "h")]) for i in range(200)]
    order: list[int] = []

    async def watch(i: int) -> None:
        await futures[i]
        order.append(i)

    await asyncio.gather(*(watch(i) for i in reversed(range(200))))
    # every future resolved; once the last one has, every earlier write is committed
    await futures[-1]
    got = await store.completed_handlers([f"e{i}" for i in range(200)])
    assert len(got) == 200


async def test_a_resolved_future_implies_earlier_writes_are_committed(store: Store) -> None:
    first = asyncio.ensure_future(store.append_events([ev(id_="a")]))
    second = store.mark_completed([("a", "h")])
    await second
    await asyncio.sleep(0)
    assert first.done()
    assert await store.count_events() == 1


# -- event store -----------------------------------------------------------------------------------


async def test_append_ignores_an_id_already_stored(store: Store) -> None:
    await store.append_events([ev(id_="x", source="first")])
    await store.append_events([ev(id_="x", source="second"), ev(id_="y")])
    got = await store.query_events(EventQuery())
    assert sorted(ids(got)) == ["x", "y"]
    assert next(s for s in got if s.event.id == "x").event.source == "first"


async def test_events_round_trip_whole_and_with_aware_utc_times(store: Store) -> None:
    e = ev(
        "asset.fault",
        severity="error",
        source='st "7" \\ 🏭',
        payload={"code": 42, "nested": {"a": [1, 2.5, None, "ü", "😀", 'q"\\\n\u0000']}},
        correlation_id="c1",
        causation_id="c0",
        subjects=("u1", "u2"),
        tags=("t",),
        headers={"topic": "a/b"},
    )
    await store.append_events([e])
    (stored,) = await store.query_events(EventQuery())
    assert stored.event == e
    assert stored.event.timestamp == T0 and stored.event.timestamp.tzinfo is not None
    assert stored.stored_at.tzinfo is not None and stored.stored_at.utcoffset() == timedelta(0)
    assert abs(stored.stored_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert stored.acknowledged_at is None and stored.acknowledged_by is None


async def test_query_is_oldest_first_with_limit_and_offset(store: Store) -> None:
    events = [ev(minutes=m) for m in (5, 1, 4, 2, 3)]
    await store.append_events(events)
    by_time = [e.id for e in sorted(events, key=lambda e: e.timestamp)]
    assert ids(await store.query_events(EventQuery())) == by_time
    assert ids(await store.query_events(EventQuery(limit=2, offset=1))) == by_time[1:3]
    assert await store.count_events(EventQuery(limit=1, offset=3)) == 5


async def test_newest_first_pages_from_the_newest_event(store: Store) -> None:
    events = [ev(minutes=m) for m in (5, 1, 4, 2, 3)]
    await store.append_events(events)
    newest = [e.id for e in sorted(events, key=lambda e: e.timestamp, reverse=True)]
    assert ids(await store.query_events(EventQuery(newest_first=True))) == newest
    assert ids(await store.query_events(EventQuery(newest_first=True, limit=2, offset=2))) == newest[2:4]


@pytest.mark.parametrize(
    ("query", "included", "excluded"),
    [
        (EventQuery(type_pattern="asset.*"), ["fault", "state"], ["test", "under"]),
        (EventQuery(type_pattern="asset.fault"), ["fault"], ["state"]),
        (EventQuery(type_pattern="asset.f?ult"), ["fault"], ["state"]),
        # SQL wildcards in the pattern are literal characters
        (EventQuery(type_pattern="my_type.*"), ["under"], ["test"]),
        (EventQuery(category="asset"), ["fault", "state"], ["test"]),
        (EventQuery(min_severity="warning"), ["fault", "test"], ["state", "under"]),
        (EventQuery(min_severity="critical"), ["test"], ["fault"]),
        (EventQuery(since=T0 + timedelta(minutes=2)), ["fault", "under"], ["test", "state"]),
        (EventQuery(until=T0 + timedelta(minutes=2)), ["test", "state"], ["fault", "under"]),
        (EventQuery(source="line2"), ["state"], ["test", "fault"]),
    ],
)
async def test_each_query_filter_includes_and_excludes(
    store: Store, query: EventQuery, included: list[str], excluded: list[str]
) -> None:
    by_name = {
        "test": ev("test.result", minutes=0, severity="critical"),
        "state": ev("asset.state_changed", minutes=1, source="line2"),
        "fault": ev("asset.fault", minutes=2, severity="error"),
        "under": ev("my_type.x", minutes=3),
    }
    by_name["decoy"] = ev("myAtype.x", minutes=4)  # would match my_type.* if _ were a wildcard
    await store.append_events(list(by_name.values()))
    got = set(ids(await store.query_events(query)))
    for name in included:
        assert by_name[name].id in got, name
    for name in excluded:
        assert by_name[name].id not in got, name
    assert by_name["decoy"].id not in got or query.type_pattern is None
    assert await store.count_events(query) == len(got)


async def test_since_is_inclusive_and_until_exclusive(store: Store) -> None:
    e = ev(minutes=10)
    await store.append_events([e])
    at = T0 + timedelta(minutes=10)
    assert ids(await store.query_events(EventQuery(since=at))) == [e.id]
    assert ids(await store.query_events(EventQuery(until=at))) == []
    # an aware time in another zone means the same instant
    cet = at.astimezone(timezone(timedelta(hours=1)))
    assert ids(await store.query_events(EventQuery(since=cet, until=cet + timedelta(seconds=1)))) == [e.id]


async def test_acknowledge_changes_only_unacknowledged_events(store: Store) -> None:
    a, b, c = ev(minutes=1), ev(minutes=2), ev(minutes=3)
    await store.append_events([a, b, c])
    assert await store.acknowledge_events([a.id, b.id, "unknown"], by="operator") == 2
    assert await store.acknowledge_events([a.id, c.id], by="system") == 1
    acked = await store.query_events(EventQuery(acknowledged=True))
    assert ids(acked) == [a.id, b.id, c.id]
    assert [s.acknowledged_by for s in acked] == ["operator", "operator", "system"]
    assert all(s.acknowledged_at is not None and s.acknowledged_at.tzinfo is not None for s in acked)
    assert await store.acknowledge_events([]) == 0


async def test_acknowledged_filter_includes_and_excludes(store: Store) -> None:
    a, b = ev(minutes=1), ev(minutes=2)
    await store.append_events([a, b])
    await store.acknowledge_events([a.id])
    assert ids(await store.query_events(EventQuery(acknowledged=True))) == [a.id]
    assert ids(await store.query_events(EventQuery(acknowledged=False))) == [b.id]
    assert await store.count_events(EventQuery(acknowledged=None)) == 2


async def test_purge_by_age_deletes_old_events_and_old_idempotency_records(store: Store) -> None:
    now = datetime.now(UTC)
    old = Event(type="test.result", timestamp=now - timedelta(days=10))
    new = Event(type="test.result", timestamp=now - timedelta(hours=1))
    await store.append_events([old, new])
    await store.mark_completed([("recent", "h")])
    assert await store.purge_events(older_than_days=7) == 1
    assert ids(await store.query_events(EventQuery())) == [new.id]
    # records made just now are younger than 7 days and stay
    assert await store.completed_handlers(["recent"]) == {"recent": {"h"}}
    await asyncio.sleep(0.05)
    await store.purge_events(older_than_days=0.01 / 86400)
    assert await store.completed_handlers(["recent"]) == {}


async def test_purge_by_cap_keeps_the_newest(store: Store) -> None:
    events = [ev(minutes=m) for m in range(10)]
    await store.append_events(events)
    assert await store.purge_events(keep_at_most=3) == 7
    assert ids(await store.query_events(EventQuery())) == [e.id for e in events[-3:]]
    assert await store.purge_events(keep_at_most=3) == 0
    assert await store.purge_events(keep_at_most=0) == 3
    assert await store.count_events() == 0


async def test_purge_by_ids_and_combined(store: Store) -> None:
    events = [ev(minutes=m) for m in range(6)]
    await store.append_events(events)
    assert await store.purge_events(ids=[events[5].id, "unknown"]) == 1
    # ids first, then the cap counts only what is left
    assert await store.purge_events(ids=[events[4].id], keep_at_most=2) == 3
    assert ids(await store.query_events(EventQuery())) == [events[2].id, events[3].id]


# -- dead letters ----------------------------------------------------------------------------------


def dl(
    *, minutes: float = 0, handler: str | None = "writer", reason: str = DeadLetterReason.FAILED, **kw: object
) -> DeadLetterEntry:
    t = T0 + timedelta(minutes=minutes)
    return DeadLetterEntry(
        id=str(uuid.uuid4()),
        reason=reason,
        handler=handler,
        first_failure_at=t,
        last_failure_at=t + timedelta(seconds=5),
        **kw,  # type: ignore[arg-type]
    )


async def test_dead_letter_with_event_round_trips(store: Store) -> None:
    e = ev("asset.fault", payload={"x": 1})
    entry = dl(
        event=e,
        error_type="ValueError",
        error_message="bad value",
        traceback="Traceback (most recent call last):\n  ...",
        attempts=3,
        transport="mock",
        headers={"k": "v", "n": [1, 2]},
    )
    await store.add_dead_letters([entry])
    got = await store.get_dead_letter(entry.id)
    assert got == entry
    assert got.first_failure_at.tzinfo is not None and got.last_failure_at.utcoffset() == timedelta(0)


async def test_raw_dead_letter_keeps_non_utf8_bytes(store: Store) -> None:
    body = bytes(range(256)) + b"\xff\xfe\x00tail"
    entry = dl(handler=None, reason=DeadLetterReason.DECODE_ERROR, raw_body=body, origin="drop/x.bin")
    await store.add_dead_letters([entry])
    got = await store.get_dead_letter(entry.id)
    assert got.raw_body == body and got.event is None and got.handler is None
    assert got.origin == "drop/x.bin"
    empty = dl(handler=None, reason=DeadLetterReason.DECODE_ERROR, raw_body=b"")
    await store.add_dead_letters([empty])
    assert (await store.get_dead_letter(empty.id)).raw_body == b""


async def test_dead_letters_list_filter_and_count(store: Store) -> None:
    a = dl(minutes=3, handler="a")
    b = dl(minutes=1, handler="b", reason=DeadLetterReason.CIRCUIT_OPEN)
    c = dl(minutes=2, handler="a", reason=DeadLetterReason.CIRCUIT_OPEN)
    await store.add_dead_letters([a, b, c])
    assert [e.id for e in await store.list_dead_letters()] == [b.id, c.id, a.id]
    assert [e.id for e in await store.list_dead_letters(handler="a")] == [c.id, a.id]
    assert [e.id for e in await store.list_dead_letters(reason=DeadLetterReason.CIRCUIT_OPEN)] == [b.id, c.id]
    assert [e.id for e in await store.list_dead_letters(handler="a", reason="failed")] == [a.id]
    assert [e.id for e in await store.list_dead_letters(limit=1, offset=1)] == [c.id]
    assert await store.count_dead_letters() == 3
    assert await store.count_dead_letters(handler="a") == 2
    assert await store.count_dead_letters(reason=DeadLetterReason.CIRCUIT_OPEN) == 2
    assert await store.count_dead_letters(handler="zzz") == 0


async def test_dead_letter_update_and_delete(store: Store) -> None:
    entry = dl(attempts=1)
    await store.add_dead_letters([entry])
    entry.attempts = 4
    entry.last_failure_at = T0 + timedelta(hours=1)
    entry.error_message = "still broken"
    await store.update_dead_letter(entry)
    got = await store.get_dead_letter(entry.id)
    assert (got.attempts, got.last_failure_at, got.error_message) == (
        4,
        entry.last_failure_at,
        "still broken",
    )
    assert await store.delete_dead_letters([entry.id, "unknown"]) == 1
    assert await store.delete_dead_letters([entry.id]) == 0
    assert await store.delete_dead_letters([]) == 0
    with pytest.raises(DeadLetterNotFoundError):
        await store.get_dead_letter(entry.id)
    with pytest.raises(DeadLetterNotFoundError):
        await store.update_dead_letter(entry)


async def test_adding_an_entry_with_an_existing_id_replaces_it(store: Store) -> None:
    entry = dl(attempts=1)
    await store.add_dead_letters([entry])
    await store.add_dead_letters([dataclasses.replace(entry, attempts=2)])
    assert (await store.get_dead_letter(entry.id)).attempts == 2
    assert await store.count_dead_letters() == 1


async def test_combined_write_commits_records_events_and_dead_letters_together(store: Store) -> None:
    ev = Event(type="test.result", source="st-1", payload={"unit_id": "U1"})
    entry = DeadLetterEntry(id="dl-1", reason="failed", event=ev, handler="mes", error_type="RuntimeError")
    await store.write(completed=[(ev.id, "event-store")], events=[ev], dead_letters=[entry])
    assert (await store.completed_handlers([ev.id]))[ev.id] == {"event-store"}
    stored = await store.query_events(EventQuery())
    assert [s.event for s in stored] == [ev]
    assert (await store.get_dead_letter("dl-1")).handler == "mes"
    # a write with only records still works, and writing the same rows again is not an error
    await store.write(completed=[(ev.id, "other")])
    await store.write(completed=[(ev.id, "event-store")], events=[ev])
    assert (await store.completed_handlers([ev.id]))[ev.id] == {"event-store", "other"}
    assert await store.count_events() == 1
