"""``events list`` / ``dlq list`` at 80 columns, newest first with a "more" hint, and ids or id prefixes
in every command that takes ids: real subprocesses of the CLI on a store made by ``ingest``."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pywats_events.event import Event
from pywats_events.sql_store import open_store
from tests.integration.core.test_cli import CLI, DB, cli, cli_env, cli_json, copy_store, ingested

pytestmark = pytest.mark.slow
__all__ = ["ingested"]  # the module-scoped fixture, shared with test_cli


def cli80(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as in an 80-column terminal."""
    env = cli_env() | {"COLUMNS": "80"}
    return subprocess.run([str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_dlq_list_is_one_line_per_entry_at_80_columns_newest_first_with_more_hint(
    ingested: tuple[Path, dict[str, Any]],
) -> None:
    work = ingested[0]
    everything = cli_json("dlq", "list", cwd=work)
    assert len(everything) == 10
    stamps = [r["first_failure_at"] for r in everything]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    proc = cli80("dlq", "list", "--limit", "4", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    header, *rows, hint = lines
    assert header.split() == ["id", "reason", "handler", "what", "error"]
    assert len(rows) == 4  # one line per entry, no wrapping
    for row, entry in zip(rows, everything[:4], strict=True):
        short = row.split()[0]
        assert len(short) >= 8 and entry["id"].startswith(short)
        assert "decode_error" in row
    assert hint == "showing 1-4 of 10 (newest first); --offset 4 for more"
    last = cli80("dlq", "list", "--limit", "4", "--offset", "8", cwd=work)
    assert last.stdout.rstrip().splitlines()[-1] == "showing 9-10 of 10 (newest first)"
    assert [r["id"] for r in cli_json("dlq", "list", "--limit", "4", "--offset", "8", cwd=work)] == [
        r["id"] for r in everything[8:]
    ]


def test_events_list_is_one_line_per_event_at_80_columns_newest_first(ingested: tuple[Path, dict[str, Any]]) -> None:
    work = ingested[0]
    total = len(cli_json("events", "list", "--limit", "100000", cwd=work))
    newest = cli_json("events", "list", "--limit", "5", cwd=work)
    stamps = [r["timestamp"] for r in cli_json("events", "list", "--limit", "100000", cwd=work)]
    assert stamps == sorted(stamps, reverse=True)
    proc = cli80("events", "list", "--limit", "5", cwd=work)
    assert proc.returncode == 0, proc.stderr
    header, *rows, hint = proc.stdout.rstrip("\n").splitlines()
    assert header.split() == ["id", "time", "sev", "type", "source", "ack"]
    assert len(rows) == 5 and all(len(line) <= 80 for line in [header, *rows])
    assert [r.split()[0] for r in rows] == [e["id"][: len(r.split()[0])] for e, r in zip(newest, rows, strict=True)]
    assert hint == f"showing 1-5 of {total:,} (newest first); --offset 5 for more"
    oldest = cli_json("events", "list", "--limit", "1", "--oldest-first", cwd=work)
    assert oldest[0]["timestamp"] == min(stamps)


def test_dlq_show_replay_and_purge_take_an_id_prefix(ingested: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    work = copy_store(ingested, tmp_path)
    entry = cli_json("dlq", "list", "--limit", "1", cwd=work)[0]
    shown = cli_json("dlq", "show", entry["id"][:8], cwd=work)
    assert shown["id"] == entry["id"] and "raw_body" in shown  # detail only `show` gives
    # A raw decode error replays to the same decode error: it is attempted (and fails again), exit 1.
    replay = cli("dlq", "replay", entry["id"][:6], "--json", cwd=work)
    assert replay.returncode == 1, replay.stderr
    assert '"replayed": 1' in replay.stdout
    assert cli_json("dlq", "purge", entry["id"][:6], cwd=work) == {"deleted": 1}
    assert entry["id"] not in {r["id"] for r in cli_json("dlq", "list", cwd=work)}


@pytest.mark.parametrize("command", [("dlq", "show"), ("dlq", "replay"), ("dlq", "purge"), ("events", "ack")])
def test_unknown_id_fails_with_exit_2_and_changes_nothing(
    command: tuple[str, ...], ingested: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    work = copy_store(ingested, tmp_path)
    before = cli_json("dlq", "list", cwd=work)
    proc = cli(*command, "zzzz-not-an-id", cwd=work)
    assert proc.returncode == 2
    assert "no " in proc.stderr and "'zzzz-not-an-id'" in proc.stderr
    assert cli_json("dlq", "list", cwd=work) == before


def _store_with_ids(db: Path, ids: list[str]) -> None:
    async def fill() -> None:
        async with open_store(str(db)) as store:
            t0 = datetime(2026, 1, 1, tzinfo=UTC)
            events = [
                Event(id=i, type="test.result", source="FCT1", timestamp=t0 + timedelta(seconds=n))
                for n, i in enumerate(ids)
            ]
            await store.append_events(events)

    asyncio.run(fill())


def test_events_ack_refuses_an_ambiguous_or_too_short_prefix_and_takes_a_unique_one(tmp_path: Path) -> None:
    _store_with_ids(tmp_path / DB, ["abcd-0001", "abcd-0002", "abce-0003"])
    ambiguous = cli("events", "ack", "abcd", cwd=tmp_path)
    assert ambiguous.returncode == 2
    assert "matches more than one" in ambiguous.stderr
    assert "abcd-0001" in ambiguous.stderr and "abcd-0002" in ambiguous.stderr
    short = cli("events", "ack", "abc", cwd=tmp_path)
    assert short.returncode == 2 and "too short" in short.stderr
    assert all(r["acknowledged_at"] is None for r in cli_json("events", "list", cwd=tmp_path))
    assert cli_json("events", "ack", "abce", "abcd-0001", cwd=tmp_path) == {"acknowledged": 2}
    acked = {r["id"] for r in cli_json("events", "list", cwd=tmp_path) if r["acknowledged_at"]}
    assert acked == {"abce-0003", "abcd-0001"}


def test_prefix_lookup_is_case_sensitive_and_literal_in_sqlite(tmp_path: Path) -> None:
    # SQLite's LIKE ignores case and treats % and _ as wildcards: neither may leak into id lookup.
    _store_with_ids(tmp_path / DB, ["ABCD-1", "a_cd-2", "axcd-3"])
    assert cli("events", "ack", "abcd", cwd=tmp_path).returncode == 2
    assert cli_json("events", "ack", "a_cd", cwd=tmp_path) == {"acknowledged": 1}
    acked = {r["id"] for r in cli_json("events", "list", cwd=tmp_path) if r["acknowledged_at"]}
    assert acked == {"a_cd-2"}
    assert os.path.exists(tmp_path / DB)
