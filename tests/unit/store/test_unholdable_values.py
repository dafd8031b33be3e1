"""Values a database cannot hold as text (issue 9 defect 3): U+0000, which PostgreSQL refuses in text
columns, and lone surrogates, which have no UTF-8 form. Stored safely on every backend, recovered unchanged
from the event's JSON body; idempotency lookups still match."""

from __future__ import annotations

from datetime import UTC, datetime

from pywats_events import Event
from pywats_events.store import DeadLetterEntry, EventQuery, Store


def awkward_event(n: int = 0) -> Event:
    return Event(
        id=f"id-{n}\x00tail",
        type="test.result",
        source="station\x00A",
        payload={"serial": "SN\x00123", "note": "lone \udc00 surrogate", "ok": "plain ä"},
        headers={"h": "x\x00y"},
    )


async def test_events_with_nul_and_lone_surrogates_are_stored_and_recovered_unchanged(store: Store) -> None:
    ev = awkward_event()
    await store.write(completed=[(ev.id, "handler-one")], events=[ev])
    (stored,) = await store.query_events(EventQuery(type_pattern="test.result"))
    assert stored.event == ev  # the JSON body keeps the exact original
    assert stored.event.source == "station\x00A"
    assert stored.event.payload["serial"] == "SN\x00123"
    # The same id finds its idempotency record: a redelivered copy is skipped, not run again.
    assert await store.completed_handlers([ev.id, "other"]) == {ev.id: {"handler-one"}}


async def test_dead_letters_with_nul_in_every_text_field_are_stored(store: Store) -> None:
    ev = awkward_event(1)
    now = datetime.now(UTC)
    entry = DeadLetterEntry(
        id="dl-1",
        reason="failed",
        event=ev,
        handler="h\x00",
        error_type="ValueError",
        error_message="bad value 'SN\x00123' \ud800",
        traceback="Traceback\x00",
        attempts=3,
        first_failure_at=now,
        last_failure_at=now,
        origin="file:/in\x00box/a.json",
        transport="file",
    )
    await store.add_dead_letters([entry])
    got = await store.get_dead_letter("dl-1")
    assert got.event == ev
    assert got.attempts == 3
    assert "SN" in got.error_message and "123" in got.error_message
    got.attempts = 4
    got.error_message = "again \x00"
    await store.update_dead_letter(got)
    assert (await store.get_dead_letter("dl-1")).attempts == 4
