"""FileTransport on a real bus: the drop folder as a tester that writes result files meets it.

Every test awaits a condition with a deadline (``wait_until``); no fixed sleep is ever an assertion.
"""

from __future__ import annotations

import asyncio
import errno
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


# -- JSON Lines (issue 9, defect 4) ------------------------------------------------------------------
def _cfx_lines(n: int) -> bytes:
    from pywats_cfx.explorer import generate_envelope

    return b"".join(json.dumps(generate_envelope("heartbeat", seq=i)).encode() + b"\n" for i in range(n))


async def test_jsonl_file_each_line_is_its_own_message_and_the_file_settles(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    lines = [event_body(1), event_body(2), event_body(3)]
    (inbox / "batch.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (inbox / "cfx.jsonl").write_bytes(_cfx_lines(3))  # what `explorer --generate --count 3` prints
    bus, _ = make_bus(inbox, store=_sqlite(tmp_path))
    async with bus:
        await wait_until(lambda: names(inbox / "processed") == ["batch.jsonl", "cfx.jsonl"], what="both settled")
        assert sorted(e.id for e in await stored(bus, "test.result")) == [
            f"00000000-0000-4000-8000-{i:012d}" for i in (1, 2, 3)
        ]
        assert len(await stored(bus, "system.heartbeat")) == 3
        assert await bus.store.count_dead_letters() == 0


async def test_jsonl_bad_lines_are_each_their_own_dead_letter_and_the_good_lines_are_routed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    deep = b'{"type": "test.result", "source": "x", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    body = b"\n".join([event_body(1), b'{"type": "test.result",,}', event_body(2), deep, b"", event_body(3)])
    (inbox / "mixed.jsonl").write_bytes(body)
    bus, transport = make_bus(inbox, store=_sqlite(tmp_path))
    async with bus:
        await wait_until(lambda: "mixed.jsonl" in names(inbox / "processed"), what="mixed.jsonl settled")
        assert len(await stored(bus, "test.result")) == 3
        entries = sorted(
            await bus.store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR), key=lambda e: e.origin
        )
        assert [e.origin for e in entries] == [f"{inbox / 'mixed.jsonl'}:line 2", f"{inbox / 'mixed.jsonl'}:line 4"]
        assert entries[0].raw_body == b'{"type": "test.result",,}'
        assert "nested too deeply" in entries[1].error_message
        assert entries[1].raw_body == deep
        outcome = transport.outcomes[0]
        assert [b.number for b in outcome.bad_lines] == [2, 4]
        note = (inbox / "processed" / "mixed.jsonl.error.txt").read_text(encoding="utf-8")
        assert "line 2" in note and "line 4" in note
    assert names(inbox) == []


async def test_jsonl_with_only_bad_lines_goes_to_failed_with_one_entry_per_line(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "bad.jsonl").write_bytes(b"not json\n[1, 2\n")
    bus, _ = make_bus(inbox, store=_sqlite(tmp_path))
    async with bus:
        await wait_until(lambda: "bad.jsonl" in names(inbox / "failed"), what="bad.jsonl failed")
        entries = await bus.store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR)
        assert sorted(e.raw_body for e in entries) == [b"[1, 2", b"not json"]


# -- relative drop folder (issue 9, defect 5) --------------------------------------------------------
async def test_relative_drop_folder_handles_every_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    inbox = Path("inbox")
    inbox.mkdir()
    no_id = json.dumps({"type": "test.result", "source": "ict-1", "payload": {"unit_id": "SN1"}}).encode()
    (inbox / "a-no-id.json").write_bytes(no_id)
    (inbox / "b-bad.json").write_bytes(b"{broken")
    bus, transport = make_bus(inbox, store=_sqlite(tmp_path))
    assert transport.folder == tmp_path.resolve() / "inbox"
    async with bus:
        await wait_until(lambda: names(inbox / "processed") == ["a-no-id.json"], what="a processed")
        await wait_until(lambda: "b-bad.json" in names(inbox / "failed"), what="b failed")
        (inbox / "c-late.json").write_bytes(no_id)
        await wait_until(lambda: "c-late.json" in names(inbox / "processed"), what="c processed")
        await asyncio.sleep(1.5)  # a second scheduling of the same file would show up within a rescan
        assert len(await stored(bus)) == 2  # one per file, not one per name the file was seen under
        assert await bus.store.count_dead_letters() == 1
    assert sorted(o.path.name for o in transport.outcomes) == ["a-no-id.json", "b-bad.json", "c-late.json"]
    assert "FileNotFoundError" not in caplog.text and "not settled" not in caplog.text


# -- symbolic links (issue 9, defect 10) -------------------------------------------------------------
async def test_symlink_in_the_drop_folder_is_not_followed_and_its_target_not_read(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    secret = tmp_path / "secret.json"
    secret.write_bytes(event_body(9))
    (inbox / "link.json").symlink_to(secret)
    bus, _ = make_bus(inbox, store=_sqlite(tmp_path))
    async with bus:
        await wait_until(lambda: (inbox / "failed" / "link.json").is_symlink(), what="link refused")
        entries = await bus.store.list_dead_letters()
        assert len(entries) == 1
        assert entries[0].reason == "symlink_not_followed"
        assert entries[0].raw_body == b""  # the target's content never reaches the store
        assert "symbolic link" in entries[0].error_message
        assert await stored(bus) == []
    assert (inbox / "failed" / "link.json").is_symlink()
    assert secret.read_bytes() == event_body(9)  # the target is untouched


async def test_file_swapped_for_a_link_before_the_read_is_refused(tmp_path: Path) -> None:
    from pywats_events.transports.file import _read_no_follow

    secret = tmp_path / "secret.json"
    secret.write_bytes(b"secret")
    (tmp_path / "link.json").symlink_to(secret)
    with pytest.raises(OSError) as info:
        _read_no_follow(tmp_path / "link.json")
    assert info.value.errno == errno.ELOOP


# -- re-ingest (issue 9, defect 14) ------------------------------------------------------------------
async def test_ingesting_the_same_bad_files_again_does_not_pile_up_dead_letters(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.json").write_bytes(b"{broken")
    (folder / "lines.jsonl").write_bytes(event_body(1) + b"\nnot json\n")
    store = _sqlite(tmp_path)
    for _ in range(3):
        bus = EventBus(store, retry=RetryPolicy(max_attempts=1))
        bus.add_event_store()
        transport = FileTransport(path=folder, move_files=False, name="ingest")
        transport.bind(bus)
        async with bus:
            await transport.ingest([folder / "bad.json", folder / "lines.jsonl"])
            assert await bus.store.count_dead_letters(reason=DeadLetterReason.DECODE_ERROR) == 2


# -- memory in watch mode (issue 10, deliverable 1) --------------------------------------------------
async def test_watcher_keeps_no_per_file_state_after_files_are_processed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    bus, transport = make_bus(inbox, settle_seconds=0.0, outcome_history=50, concurrency=8)
    n = 400
    async with bus:
        await wait_until(lambda: (inbox / "processed").is_dir(), what="folders created")
        for i in range(n):
            (inbox / f"f{i:05d}.json").write_bytes(event_body(i))
        await wait_until(lambda: transport.counts["processed"] == n, timeout=60, what="all files processed")
        assert len(transport.outcomes) == 50  # bounded history, not one record per file ever seen
        assert len(transport._inflight) == 0 and len(transport._tasks) == 0


def test_event_json_decoder_reports_a_deeply_nested_later_line_as_invalid_not_recursion() -> None:
    from pywats_events.codec import DecodeContext, InvalidEventError, decode_event_json

    deep = b'{"type": "test.result", "source": "x", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(InvalidEventError, match="nested too deeply"):
        decode_event_json(event_body(1) + b"\n" + deep + b"\n", DecodeContext(origin="a.json"))


async def test_recursive_watch_never_enters_a_linked_folder_outside_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "line-1").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.json").write_bytes(event_body(7))
    (inbox / "elsewhere").symlink_to(outside, target_is_directory=True)
    (inbox / "line-1" / "ok.json").write_bytes(event_body(1))
    bus, transport = make_bus(inbox, store=_sqlite(tmp_path), recursive=True)
    assert not transport.wanted(inbox / "elsewhere" / "private.json")
    async with bus:
        await wait_until(lambda: len(transport.outcomes) == 1, what="the file in the real sub-folder")
        await asyncio.sleep(1.2)  # one rescan: the linked folder's file must still not be taken
        assert [e.id for e in await stored(bus)] == ["00000000-0000-4000-8000-000000000001"]
        assert await bus.store.count_dead_letters() == 0
    assert (outside / "private.json").exists()


# -- one intake path (issue 10, deliverable 2) -------------------------------------------------------
async def test_a_file_whose_dead_letter_cannot_be_stored_stays_in_place_and_settles_on_the_next_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pywats_events.errors import StoreError

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.json").write_bytes(b"{broken")
    (folder / "lines.jsonl").write_bytes(event_body(1) + b"\nnot json\n" + event_body(2) + b"\n")
    bus = EventBus(_sqlite(tmp_path), retry=RetryPolicy(max_attempts=1))
    bus.add_event_store()
    transport = FileTransport(path=folder, name="ingest")
    transport.bind(bus)
    async with bus:
        real = bus.dead_letter_raw

        async def refuse(record: object) -> str:
            raise StoreError("disk full")

        monkeypatch.setattr(bus, "dead_letter_raw", refuse)
        first = await transport.ingest([folder / "bad.json", folder / "lines.jsonl"])
        assert [(o.status, o.reason) for o in first] == [("error", "disk full"), ("error", "disk full")]
        assert names(folder) == ["bad.json", "lines.jsonl"]  # settle_failed: nothing moved
        assert await bus.store.count_dead_letters() == 0
        monkeypatch.setattr(bus, "dead_letter_raw", real)
        second = await transport.ingest([folder / "bad.json", folder / "lines.jsonl"])
        assert [o.status for o in second] == ["failed", "processed"]
        assert [b.number for b in second[1].bad_lines] == [2]
        assert second[1].result.events == 2 and second[1].result.dead_lettered == 1
        entries = await bus.store.list_dead_letters(reason=DeadLetterReason.DECODE_ERROR)
        assert sorted(e.origin for e in entries) == [str(folder / "bad.json"), f"{folder / 'lines.jsonl'}:line 2"]
        assert second[1].bad_lines[0].entry_id in {e.id for e in entries}
        assert {e.headers["pywats-decoder"] for e in entries} == {"auto"}
        # the good lines of the refused first try were routed then; the retry is skipped by idempotency
        assert sorted(e.id for e in await stored(bus)) == [f"00000000-0000-4000-8000-{i:012d}" for i in (1, 2)]
    assert names(folder / "processed") == ["lines.jsonl", "lines.jsonl.error.txt"]
    assert names(folder / "failed") == ["bad.json", "bad.json.error.txt"]
    assert "reason: " in (folder / "failed" / "bad.json.error.txt").read_text(encoding="utf-8")


async def test_a_file_offered_to_a_stopped_bus_is_left_in_place(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "one.json").write_bytes(event_body(1))
    bus = EventBus(MemoryStore())
    transport = FileTransport(path=folder, name="ingest")
    transport.bind(bus)  # never started: submit raises BusClosedError
    [outcome] = await asyncio.wait_for(transport.ingest([folder / "one.json"]), 5)
    assert outcome.status == "error" and "not running" in outcome.reason
    assert names(folder) == ["one.json"]
