"""The ``pywats-events`` command line as a user runs it: real subprocesses, cwd a scratch folder.

One ``ingest`` of the bundled samples is shared by the module (it takes seconds); tests that change the
store work on a copy of its database, so each test stands alone.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery
from tests.cfx_samples import INVALID, SAMPLES, VALID
from tests.integration.core.test_samples_end_to_end import expected_events

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).parent / "pywats-events"
DB = "pywats-events.db"  # the default store, relative to the working directory


def cli_env() -> dict[str, str]:
    """The caller's environment without PYWATS_EVENTS_* overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``pywats-events ARGS`` in ``cwd``; returns the finished process (output as text)."""
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def cli_json(*args: str, cwd: Path) -> Any:
    """Run a ``--json`` command that must succeed; returns the parsed document."""
    proc = cli(*args, "--json", cwd=cwd)
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stderr}"
    return json.loads(proc.stdout)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def store_count(db: Path, type_pattern: str | None = None) -> int:
    """Stored events in ``db`` (read in-process: cheaper than another subprocess)."""

    async def count() -> int:
        async with open_store(str(db)) as store:
            return await store.count_events(EventQuery(type_pattern=type_pattern))

    return asyncio.run(count())


def dead_letter_count(db: Path) -> int:
    async def count() -> int:
        async with open_store(str(db)) as store:
            return await store.count_dead_letters()

    return asyncio.run(count())


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``condition`` until it holds; fail on timeout or when ``proc`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"service exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A working folder with samples/cfx copied in and ingested once: ``(folder, --json summary)``."""
    work = tmp_path_factory.mktemp("ingested")
    shutil.copytree(SAMPLES, work / "samples" / "cfx")
    return work, cli_json("ingest", "samples/cfx", cwd=work)


def copy_store(ingested: tuple[Path, dict[str, Any]], to: Path) -> Path:
    """Copy the ingested database (with its WAL files, if any) into ``to``; returns ``to``."""
    for f in ingested[0].glob(DB + "*"):
        shutil.copy2(f, to / f.name)
    return to


def test_ingest_samples_counts_every_file_event_and_dead_letter(ingested: tuple[Path, dict[str, Any]]) -> None:
    work, summary = ingested
    expected = sum(expected_events().values())
    assert summary["files"] == len(VALID) + len(INVALID) == len(list((work / "samples" / "cfx").rglob("*.json")))
    assert summary["dead_lettered"] == len(INVALID) == 10
    assert summary["failed_files"] == len(INVALID)
    assert summary["events"] == expected
    assert summary["handled"] == expected  # one handler: the event store
    assert (summary["skipped"], summary["unrouted"], summary["not_settled"]) == (0, 0, 0)
    assert {Path(f["file"]).name for f in summary["failures"]} == {p.name for p in INVALID}
    assert all(f["reason"] for f in summary["failures"])
    # ingest leaves the files where they are
    assert len(list((work / "samples" / "cfx").rglob("*.json"))) == summary["files"]
    assert store_count(work / DB, "test.*") == expected_events()["test.result"]


def test_second_ingest_of_the_same_folder_is_skipped_by_idempotency(
    ingested: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work = copy_store(ingested, tmp_path)
    shutil.copytree(SAMPLES, work / "samples" / "cfx")
    before = store_count(work / DB, "test.*")
    again = cli_json("ingest", "samples/cfx", cwd=work)
    expected = sum(expected_events().values())
    assert again["events"] == expected
    assert again["skipped"] == expected
    assert again["handled"] == 0
    assert store_count(work / DB, "test.*") == before  # nothing stored twice


def test_events_list_by_type_then_ack_drops_the_event_from_the_unacked_list(
    ingested: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work = copy_store(ingested, tmp_path)
    rows = cli_json("events", "list", "--type", "test.*", "--limit", "10000", cwd=work)
    assert len(rows) == expected_events()["test.result"] > 0
    assert store_count(work / DB) > len(rows)  # the filter really left other types out
    assert {r["type"] for r in rows} == {"test.result"}
    for r in rows:
        assert {"id", "type", "source", "timestamp", "category", "severity", "payload", "headers"} <= set(r)
        assert r["category"] == "test" and r["acknowledged_at"] is None

    target = rows[0]["id"]
    assert cli_json("events", "ack", target, "--by", "line-lead", cwd=work) == {"acknowledged": 1}
    unacked = cli_json("events", "list", "--type", "test.*", "--unacked", "--limit", "10000", cwd=work)
    assert {r["id"] for r in unacked} == {r["id"] for r in rows} - {target}


def test_events_purge_keeps_the_newest_and_dlq_purge_all_empties_the_queue(
    ingested: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work = copy_store(ingested, tmp_path)
    total = store_count(work / DB)
    assert total > 5
    assert cli_json("events", "purge", "--keep", "5", cwd=work) == {"deleted": total - 5}
    assert store_count(work / DB) == 5

    assert dead_letter_count(work / DB) == 10
    assert cli_json("dlq", "purge", "--all", cwd=work) == {"deleted": 10}
    assert dead_letter_count(work / DB) == 0


def test_dlq_list_and_show_the_raw_invalid_samples(ingested: tuple[Path, dict[str, Any]]) -> None:
    work = ingested[0]
    rows = cli_json("dlq", "list", "--limit", "1000", cwd=work)
    assert len(rows) == len(INVALID) == 10
    assert {r["reason"] for r in rows} == {"decode_error"}
    assert all(r["error_message"] and r["event"] is None and r["handler"] is None for r in rows)
    assert {Path(r["origin"]).name for r in rows} == {p.name for p in INVALID}

    first = rows[0]
    entry = cli_json("dlq", "show", first["id"], cwd=work)
    original = (work / first["origin"]).read_bytes()
    body = entry["raw_body"].encode("utf-8") if "raw_body" in entry else base64.b64decode(entry["raw_body_base64"])
    assert body == original
    assert entry["error_message"] == first["error_message"]
    assert entry["id"] == first["id"] and entry["reason"] == "decode_error"


def test_ingest_of_a_missing_path_exits_2_naming_it(tmp_path: Path) -> None:
    proc = cli("ingest", "no/such/path", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no/such/path" in one_line_error(proc)
    assert proc.stdout == ""


def test_configuration_with_a_bad_key_exits_2_naming_it(tmp_path: Path) -> None:
    (tmp_path / "svc.toml").write_text("[bus]\nconcurrency = 4\nlanes = 8\n")
    proc = cli("ingest", str(SAMPLES / "CFX.Heartbeat__1.json"), "--config", "svc.toml", "--json", cwd=tmp_path)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "bus.lanes" in line and "svc.toml" in line
    assert not (tmp_path / DB).exists()  # refused before touching the store


def test_run_processes_a_dropped_file_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    db = tmp_path / "service.db"
    (tmp_path / "service.toml").write_text(
        f'db = "{db}"\n'
        "[[transports]]\n"
        'kind = "file"\n'
        f'path = "{inbox}"\n'
        "settle_seconds = 0.2\n"
        "[[handlers]]\n"
        'kind = "event-store"\n'
        "[http]\n"
        "enabled = false\n"
    )
    log = (tmp_path / "service.log").open("wb")
    proc = subprocess.Popen(
        [str(CLI), "run", "--config", "service.toml"], cwd=tmp_path, env=cli_env(), stdout=log, stderr=log
    )
    try:
        wait_until(lambda: (inbox / "processed").is_dir(), timeout=60, what="the drop folder", proc=proc)
        sample = SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json"
        (inbox / "units.json").write_bytes(sample.read_bytes())
        wait_until(
            lambda: (inbox / "processed" / "units.json").is_file(), timeout=30, what="the file processed", proc=proc
        )
        # settled means stored: the events are listed while the service still runs
        rows = cli_json("events", "list", "--db", str(db), "--type", "test.*", cwd=tmp_path)
        assert len(rows) == expected_events([sample])["test.result"] == 2
        assert {r["headers"].get("file") for r in rows} == {"units.json"}
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert (inbox / "processed" / "units.json").read_bytes() == sample.read_bytes()
    assert not (inbox / "units.json").exists()
    assert list((inbox / "failed").iterdir()) == []
    assert "stopped" in (tmp_path / "service.log").read_text()


# -- issue 9: defects 4, 5 and 14 as a user meets them ----------------------------------------------
def _deep_line() -> bytes:
    return b'{"type": "test.result", "source": "x", "payload": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"


def test_ingest_of_json_lines_with_bad_lines_settles_every_file_and_names_each_line(tmp_path: Path) -> None:
    from pywats_cfx.explorer import generate_envelope

    folder = tmp_path / "drop"
    folder.mkdir()
    good = b"".join(json.dumps(generate_envelope("heartbeat", seq=i)).encode() + b"\n" for i in range(3))
    (folder / "a-generated.jsonl").write_bytes(good)  # what `explorer --generate --count 3` writes
    (folder / "b-mixed.jsonl").write_bytes(good.splitlines()[0] + b"\n{oops\n" + _deep_line() + b"\n")
    (folder / "c-after.json").write_bytes(SAMPLES.joinpath("CFX.Heartbeat__1.json").read_bytes())
    summary = cli_json("ingest", "drop", cwd=tmp_path)
    assert summary["files"] == 3 and summary["not_settled"] == 0
    assert summary["events"] == 3 + 1 + 1  # the first line of b repeats seq 0: same event id, skipped
    assert summary["dead_lettered"] == 2
    bad = sorted((Path(f["file"]).name, f["line"]) for f in summary["failures"])
    assert bad == [("b-mixed.jsonl", 2), ("b-mixed.jsonl", 3)]
    rows = cli_json("dlq", "list", cwd=tmp_path)
    assert sorted(r["origin"].rsplit(":", 1)[1] for r in rows) == ["line 2", "line 3"]
    # every dead letter has its system.dead_letter notice stored, the last one included
    notices = cli_json("events", "list", "--type", "system.dead_letter", cwd=tmp_path)
    assert sorted(n["payload"]["entry_id"] for n in notices) == sorted(r["id"] for r in rows)
    # ingesting the same folder again replaces the entries instead of adding copies
    again = cli_json("ingest", "drop", cwd=tmp_path)
    assert again["dead_lettered"] == 2
    assert len(cli_json("dlq", "list", cwd=tmp_path)) == 2


def test_ingest_hint_names_the_same_config_and_reading_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    conf = tmp_path / "plant"
    conf.mkdir()
    (conf / "svc.toml").write_text('db = "sqlite:///' + str(tmp_path / "plant.db") + '"\n')
    (tmp_path / "bad.json").write_bytes(b"{broken")
    proc = cli("ingest", "bad.json", "--config", "plant/svc.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    hint = proc.stdout.split("see: ", 1)[1]
    assert "pywats-events dlq list --config plant/svc.toml" in hint
    # the hinted command, run where the user is, reads the store the ingest wrote
    listed = cli_json("dlq", "list", "--config", "plant/svc.toml", cwd=tmp_path)
    assert [Path(r["origin"]).name for r in listed] == ["bad.json"]
    # without the hint's options: a clear error, and no empty store made next to the user
    bare = cli("dlq", "list", cwd=tmp_path)
    assert bare.returncode == 2
    assert "no store at" in one_line_error(bare) and "--config" in one_line_error(bare)
    assert not (tmp_path / DB).exists()


def test_run_without_configuration_handles_each_file_of_the_relative_inbox_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    no_id = json.dumps({"type": "test.result", "source": "ict-1", "payload": {"unit_id": "SN1"}}).encode()
    (inbox / "early.json").write_bytes(no_id)
    (inbox / "bad.json").write_bytes(b"{broken")
    log = (tmp_path / "service.log").open("wb")
    env = {**cli_env(), "PYWATS_HTTP_PORT": "0"}  # the default HTTP port may be taken on a shared machine
    proc = subprocess.Popen([str(CLI), "run"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        wait_until(lambda: (inbox / "processed" / "early.json").is_file(), timeout=60, what="early.json", proc=proc)
        (inbox / "late.json").write_bytes(no_id)
        wait_until(lambda: (inbox / "processed" / "late.json").is_file(), timeout=30, what="late.json", proc=proc)
        wait_until(lambda: (inbox / "failed" / "bad.json").is_file(), timeout=30, what="bad.json", proc=proc)
        time.sleep(1.5)  # a second scheduling of a file would show within one rescan
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "service.log").read_text()
    assert "FileNotFoundError" not in text and "Traceback" not in text
    assert store_count(tmp_path / DB, "test.*") == 2  # one event per file, not two ids for one file
    assert dead_letter_count(tmp_path / DB) == 1


def test_run_with_open_intake_on_every_interface_exits_2_saying_how_to_fix_it(tmp_path: Path) -> None:
    env = {**cli_env(), "PYWATS_HTTP_HOST": "0.0.0.0", "PYWATS_HTTP_PORT": "0"}
    proc = subprocess.run(
        [str(CLI), "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "refusing to serve open intake" in last
    assert "[http.routes.<group>]" in last and "[http] allow_open_intake = true" in last  # not eaten as markup
    assert "WARNING" in proc.stderr and "'events' is open" in proc.stderr
