"""FileTransport on a real bus: the drop folder as a tester that writes result files meets it.

Every test awaits a condition with a deadline (``wait_until``); no fixed sleep is ever an assertion.
"""

from __future__ import annotations

import asyncio
import gzip
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from pywats_events import Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.store import DeadLetterReason, EventQuery, Store
from pywats_events.transports.file import FileTransport

REPO = Path(__file__).resolve().parents[3]
CFX = REPO / "samples" / "cfx"
UNITS_TESTED = CFX / "CFX.Production.TestAndInspection.UnitsTested__1.json"  # two TestedUnits: two events
HEARTBEAT = CFX / "CFX.Heartbeat__1.json"  # one event

SETTLE = 0.2  # seconds a file must stay unchanged before it is read


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every 50 ms until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def names(folder: Path) -> list[str]:
    """File names in ``folder`` (empty when it does not exist), sorted."""
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def event_body(i: int, *, source: str = "ict-1") -> bytes:
    """One event in the normalized JSON form, with a fixed id."""
    return json.dumps(
        {
            "id": f"00000000-0000-4000-8000-{i:012d}",
            "type": "test.result",
            "source": source,
            "timestamp": "2024-05-01T08:00:00Z",
            "payload": {"unit_id": f"SN{i}", "result": "pass"},
        }
    ).encode()


def make_bus(folder: Path, store: Store | None = None, **options: object) -> tuple[EventBus, FileTransport]:
    """A bus with the event-store handler and a drop folder on ``folder`` (not started)."""
    bus = EventBus(store if store is not None else MemoryStore(), retry=RetryPolicy(max_attempts=1))
    bus.add_event_store()
    transport = FileTransport(path=folder, **{"settle_seconds": SETTLE, **options})  # type: ignore[arg-type]
    bus.add_transport(transport)
    return bus, transport


async def stored(bus: EventBus, type_pattern: str = "test.*") -> list[Event]:
    return [s.event for s in await bus.store.query_events(EventQuery(type_pattern=type_pattern, limit=10_000))]


async def test_files_already_in_the_folder_at_start_are_processed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "early-a.json").write_bytes(UNITS_TESTED.read_bytes())
    (inbox / "early-b.json").write_bytes(HEARTBEAT.read_bytes())
    (inbox / "notes.txt").write_text("not a pattern match: left alone")
    bus, _ = make_bus(inbox)
    async with bus:
        await wait_until(
            lambda: names(inbox / "processed") == ["early-a.json", "early-b.json"], what="both files processed"
        )
        assert len(await stored(bus, "test.result")) == 2
        assert len(await stored(bus, "system.heartbeat")) == 1
    assert names(inbox) == ["notes.txt"]
    assert names(inbox / "failed") == []


async def test_file_dropped_while_running_is_processed_and_moved(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    bus, transport = make_bus(inbox)
    async with bus:
        await wait_until(lambda: (inbox / "processed").is_dir(), what="folders created")
        (inbox / "dropped.json").write_bytes(UNITS_TESTED.read_bytes())
        await wait_until(lambda: names(inbox / "processed") == ["dropped.json"], what="dropped.json processed")
        events = await stored(bus)
        assert len(events) == 2
        assert {e.headers.get("file") for e in events} == {"dropped.json"}
        assert [o.status for o in transport.outcomes] == ["processed"]
    assert not (inbox / "dropped.json").exists()
    assert (inbox / "processed" / "dropped.json").read_bytes() == UNITS_TESTED.read_bytes()


async def test_undecodable_file_goes_to_failed_with_reason_and_raw_dead_letter(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    body = b'{"MessageName": "CFX.Heartbeat", "MessageBody": {"CFXHandle": "x",,}}\n\x00trailing'
    bus, _ = make_bus(inbox, store=_sqlite(tmp_path))
    async with bus:
        await wait_until(lambda: (inbox / "failed").is_dir(), what="folders created")
        (inbox / "broken.json").write_bytes(body)
        await wait_until(
            lambda: names(inbox / "failed") == ["broken.json", "broken.json.error.txt"], what="broken.json failed"
        )
        entries = await bus.store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR)
        assert len(entries) == 1
        entry = entries[0]
        assert entry.raw_body == body  # the exact bytes, nothing lost
        assert entry.event is None and entry.handler is None
        assert entry.origin.endswith("broken.json")
        assert "JSON" in entry.error_message
        note = (inbox / "failed" / "broken.json.error.txt").read_text(encoding="utf-8")
        assert "broken.json" in note
        assert f"reason: {entry.error_message}" in note
        assert (inbox / "failed" / "broken.json").read_bytes() == body
        assert names(inbox / "processed") == []
        # the bus keeps running: the next good file still goes through
        (inbox / "good.json").write_bytes(HEARTBEAT.read_bytes())
        await wait_until(lambda: names(inbox / "processed") == ["good.json"], what="good.json after a bad one")


async def test_file_still_being_written_is_never_read_half_way(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    n = 40
    body = json.dumps([json.loads(event_body(i)) for i in range(n)], indent=1).encode()
    chunks = 12
    size = -(-len(body) // chunks)
    gap = 0.08  # < settle_seconds, while the whole write (~1 s) takes longer than settle_seconds
    settle = 0.4

    def slow_writer() -> None:
        with (inbox / "slow.json").open("wb", buffering=0) as f:
            for k in range(0, len(body), size):
                f.write(body[k : k + size])
                time.sleep(gap)

    bus, _ = make_bus(inbox, settle_seconds=settle)
    async with bus:
        await wait_until(lambda: (inbox / "processed").is_dir(), what="folders created")
        started = time.monotonic()
        await asyncio.to_thread(slow_writer)
        assert time.monotonic() - started > settle  # the write really was slower than the settle time
        await wait_until(lambda: names(inbox / "processed") == ["slow.json"], what="slow.json processed")
        assert len(await stored(bus)) == n
        assert names(inbox / "failed") == []
        assert await bus.store.count_dead_letters() == 0
    assert (inbox / "processed" / "slow.json").read_bytes() == body


async def test_redropped_file_with_the_same_name_keeps_the_earlier_one(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    first, second = event_body(1), event_body(2)
    bus, _ = make_bus(inbox)
    async with bus:
        await wait_until(lambda: (inbox / "processed").is_dir(), what="folders created")
        (inbox / "same.json").write_bytes(first)
        await wait_until(lambda: names(inbox / "processed") == ["same.json"], what="first copy processed")
        (inbox / "same.json").write_bytes(second)
        await wait_until(lambda: len(names(inbox / "processed")) == 2, what="second copy processed")
        assert len(await stored(bus)) == 2
    kept = {p.read_bytes() for p in (inbox / "processed").iterdir()}
    assert kept == {first, second}
    assert (inbox / "processed" / "same.json").read_bytes() == first
    assert names(inbox / "failed") == []


async def test_gzip_file_is_detected_by_content_not_by_name(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # a plain ".json" name holding gzip bytes, and a ".json.gz" one
    (inbox / "zipped.json").write_bytes(gzip.compress(UNITS_TESTED.read_bytes()))
    (inbox / "beat.json.gz").write_bytes(gzip.compress(HEARTBEAT.read_bytes()))
    bus, _ = make_bus(inbox)
    async with bus:
        await wait_until(lambda: len(names(inbox / "processed")) == 2, what="gzip files processed")
        assert len(await stored(bus, "test.result")) == 2
        assert len(await stored(bus, "system.heartbeat")) == 1
        assert await bus.store.count_dead_letters() == 0
    assert names(inbox / "failed") == []


async def test_handler_failure_still_settles_the_file_with_deliveries_dead_lettered(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    bus, transport = make_bus(inbox, store=_sqlite(tmp_path))

    calls: list[str] = []

    @bus.subscribe("test.result", name="broken-writer")
    async def broken(event: Event) -> None:
        calls.append(event.id)
        raise RuntimeError("report server refused the write")

    async with bus:
        await wait_until(lambda: (inbox / "processed").is_dir(), what="folders created")
        (inbox / "units.json").write_bytes(UNITS_TESTED.read_bytes())
        # settled means moved: the deliveries are durably in the dead-letter queue, so the file is done
        await wait_until(lambda: names(inbox / "processed") == ["units.json"], what="units.json processed")
        entries = await bus.store.list_dead_letters(handler="broken-writer")
        assert len(entries) == 2 == len(calls)
        assert {e.reason for e in entries} == {DeadLetterReason.FAILED}
        assert {e.event.id for e in entries if e.event} == set(calls)
        assert all("report server refused" in e.error_message for e in entries)
        assert len(await stored(bus)) == 2  # the event store (another handler) still got both
        assert transport.outcomes[0].result.dead_lettered == 2
    assert names(inbox / "failed") == []


def _sqlite(tmp_path: Path) -> Store:
    from pywats_events.sql_store import open_store

    return open_store(str(tmp_path / "events.db"))


async def test_a_file_whose_notification_was_missed_is_found_by_the_idle_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    bus, _ = make_bus(inbox, rescan_seconds=0.3)
    blind = True
    real_wanted = FileTransport.wanted
    # The watcher's filter and the first scan see nothing while blind: the drop below is "missed", as
    # when a file lands between the first scan and the watch starting.
    monkeypatch.setattr(FileTransport, "wanted", lambda self, p: not blind and real_wanted(self, p))
    async with bus:
        (inbox / "missed.json").write_bytes(event_body(1))
        await asyncio.sleep(0.5)
        assert names(inbox / "processed") == []
        blind = False  # no new file event will come: only the rescan can find it
        await wait_until(lambda: names(inbox / "processed") == ["missed.json"], timeout=5, what="the rescan")
        assert [e.id for e in await stored(bus)] == ["00000000-0000-4000-8000-000000000001"]
