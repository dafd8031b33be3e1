"""``DeadLetterReason`` is a ``StrEnum``: every reason the distribution records is a member, stores give the
member back (MemoryStore, SQLite, PostgreSQL), JSON and the HTTP API carry the plain string, and a reason
the enum does not know (a plug-in's own, a row written by another version) still loads as a string."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import httpx

from pywats_events import EventBus, MemoryStore
from pywats_events.dead_letter import DeadLetterEntry, DeadLetterReason
from pywats_events.event import Event
from pywats_events.http.app import create_app
from pywats_events.http.settings import HTTPSettings
from pywats_events.sql_store import SQLStore
from pywats_events.store import Store

#: Every reason string recorded anywhere in this distribution (core, transports, plug-ins).
RECORDED = {
    "failed",
    "unrecoverable",
    "circuit_open",
    "decode_error",
    "unrouted",
    "timeout",
    "store_refused",
    "too_large",
    "symlink_not_followed",
    "max_deliver",
}


def entry(reason: str, *, raw: bool = False) -> DeadLetterEntry:
    if raw:
        return DeadLetterEntry(id=str(uuid.uuid4()), reason=reason, raw_body=b"\x00bad", origin="t/1")
    event = Event(id=str(uuid.uuid4()), type="test.result", source="st1")
    return DeadLetterEntry(id=str(uuid.uuid4()), reason=reason, event=event, handler="h", attempts=1)


def test_every_recorded_reason_is_a_member_equal_to_its_string() -> None:
    assert {r.value for r in DeadLetterReason} == RECORDED
    for value in RECORDED:
        member = DeadLetterReason(value)
        assert member == value and str(member) == value and f"{member}" == value
        assert json.dumps({"reason": member}) == json.dumps({"reason": value})
    assert entry("failed").reason == "failed"
    assert entry("failed").reason is DeadLetterReason.FAILED  # parsed when the entry is built


def test_transports_name_their_reasons_from_the_enum() -> None:
    from pywats_events.transport import TOO_LARGE, too_large_record
    from pywats_events.transports.file import SYMLINK_REASON
    from pywats_nats.transport import REASON_MAX_DELIVER

    assert TOO_LARGE is DeadLetterReason.TOO_LARGE
    assert SYMLINK_REASON is DeadLetterReason.SYMLINK_NOT_FOLLOWED
    assert REASON_MAX_DELIVER is DeadLetterReason.MAX_DELIVER
    record = too_large_record(b"x" * 10, origin="o", transport="t", limit=5)
    assert record.headers["pywats-reason"] is DeadLetterReason.TOO_LARGE


def test_an_unknown_reason_is_kept_as_a_plain_string() -> None:
    e = entry("plugin_specific")
    assert e.reason == "plugin_specific" and type(e.reason) is str
    assert DeadLetterReason.parse("plugin_specific") == "plugin_specific"


async def test_reasons_round_trip_through_every_store(store: Store) -> None:
    entries = [entry(r, raw=r in ("decode_error", "too_large", "unrouted")) for r in sorted(RECORDED)]
    entries.append(entry("plugin_specific"))
    await store.add_dead_letters(entries)
    got = {e.id: e for e in await store.list_dead_letters(limit=100)}
    for e in entries[:-1]:
        back = got[e.id].reason
        assert back is DeadLetterReason(e.reason), (e.reason, back)
        assert type(got[e.id].to_json_dict()["reason"]) is str
    assert got[entries[-1].id].reason == "plugin_specific"
    # Filters take the member or its string alike.
    (by_member,) = await store.list_dead_letters(reason=DeadLetterReason.TOO_LARGE)
    (by_string,) = await store.list_dead_letters(reason="too_large")
    assert by_member.id == by_string.id and by_member.reason is DeadLetterReason.TOO_LARGE
    assert await store.count_dead_letters(reason="plugin_specific") == 1


async def test_a_row_with_a_reason_this_version_does_not_know_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SQLStore(str(path))
    await store.open()
    known, other = entry("failed"), entry("failed")
    await store.add_dead_letters([known, other])
    await store.close()
    with sqlite3.connect(path) as db:  # as a newer version, or a plug-in, would have written it
        db.execute("UPDATE dead_letters SET reason = 'retired_reason' WHERE id = ?", (other.id,))
    store = SQLStore(str(path))
    await store.open()
    try:
        got = {e.id: e.reason for e in await store.list_dead_letters()}
        assert got[known.id] is DeadLetterReason.FAILED
        assert got[other.id] == "retired_reason"
        assert (await store.get_dead_letter(other.id)).to_json_dict()["reason"] == "retired_reason"
    finally:
        await store.close()


async def test_http_api_lists_and_filters_reasons_as_plain_strings() -> None:
    store = MemoryStore()
    too_large, failed = entry("too_large", raw=True), entry("failed")
    await store.add_dead_letters([too_large, failed])
    bus = EventBus(store)
    app = create_app(bus, HTTPSettings(admin_token="reason-token-1"))
    headers = {"Authorization": "Bearer reason-token-1"}
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/admin/dead-letters", params={"reason": "too_large"}, headers=headers)
        assert r.status_code == 200, r.text
        rows = r.json()
        assert [row["id"] for row in rows] == [too_large.id]
        assert rows[0]["reason"] == "too_large"
        assert '"reason":"too_large"' in r.text.replace(" ", "")
        one = await client.get(f"/admin/dead-letters/{failed.id}", headers=headers)
        assert one.status_code == 200 and one.json()["reason"] == "failed"
