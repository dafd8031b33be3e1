"""Non-finite numbers (issue 11.4): every JSON the project emits is RFC 8259 JSON, NaN and the infinities
written as the strings Newtonsoft writes ("NaN", "Infinity", "-Infinity"), and the JSON intake reads the
bare tokens into the same strings. Each emitter's output is parsed with a strict parser that refuses the
bare tokens (``json.loads(..., parse_constant=<raise>)``)."""

from __future__ import annotations

import gzip
import json
import logging
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from pywats_events import Event, EventBus, jsonsafe
from pywats_events.http import HTTPSettings, Server
from pywats_events.logging_setup import JSONFormatter
from pywats_events.sql_store import open_store
from pywats_events.store import EventQuery, MemoryStore
from pywats_events.transports.file import FileTransport
from tests.integration.core.test_cli import cli
from tests.pg import fresh_database, pg_available, require_postgres
from tests.waiting import wait_for

NAN_PAYLOAD: dict[str, Any] = {"value": math.nan, "limits": [-math.inf, math.inf], "nested": {"x": (math.nan, 1.5)}}
EXPECTED = {"value": "NaN", "limits": ["-Infinity", "Infinity"], "nested": {"x": ["NaN", 1.5]}}


def strict(text: str | bytes) -> Any:
    """RFC 8259 only: a bare NaN / Infinity / -Infinity token fails the test."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"bare {token} in emitted JSON: not RFC 8259")

    return json.loads(text, parse_constant=refuse)


def nan_event(**kw: Any) -> Event:
    return Event(type="test.measured", source="ict-1", payload=NAN_PAYLOAD, **kw)


def test_helper_rule_and_its_fast_path() -> None:
    assert strict(jsonsafe.dumps(NAN_PAYLOAD)) == EXPECTED
    plain = {"a": [1, 2.5, "x"], "b": None}
    assert jsonsafe.finite(plain) is plain, "nothing copied when there is nothing to change"
    assert jsonsafe.dumps(plain) == json.dumps(plain, separators=(",", ":"))
    assert jsonsafe.dumps(plain, compact=False) == json.dumps(plain)
    assert jsonsafe.loads('{"v": NaN, "w": [Infinity, -Infinity]}') == {"v": "NaN", "w": ["Infinity", "-Infinity"]}
    with pytest.raises(TypeError):
        jsonsafe.dumps({"o": object()}, default=None)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        jsonsafe.dumps(loop)


def test_event_json_and_model_json() -> None:
    event = nan_event()
    assert strict(event.to_json())["payload"] == EXPECTED
    assert strict(event.model_dump_json())["payload"] == EXPECTED  # pydantic would write null


async def test_sqlite_store_rows_are_strict_json_and_read_back_as_the_strings(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    store = open_store(str(db))
    bus = EventBus(store)
    bus.add_event_store()

    @bus.subscribe("test.*", name="fails")
    async def fails(event: Event) -> None:
        raise RuntimeError("no")

    async with bus:
        result = await bus.publish(nan_event(headers={"reading": math.inf}))
        assert result.dead_lettered == 1
        (stored,) = await store.query_events(EventQuery(type_pattern="test.*"))
    assert stored.event.payload == EXPECTED
    with sqlite3.connect(db) as con:
        bodies = [r[0] for r in con.execute("SELECT body FROM events WHERE type = 'test.measured'")]
        letters = [r for r in con.execute("SELECT event, headers FROM dead_letters WHERE handler = 'fails'")]
    assert len(bodies) == 1 and len(letters) == 1
    assert strict(bodies[0])["payload"] == EXPECTED
    assert strict(letters[0][0])["payload"] == EXPECTED
    assert strict(letters[0][0])["headers"] == {"reading": "Infinity"}
    strict(letters[0][1])


async def test_postgres_store_takes_a_nan_event() -> None:
    """JSONB refuses the bare tokens: before the rule, a NaN payload was a store failure on PostgreSQL."""
    reason = await pg_available()
    if reason is not None:
        require_postgres(reason)
    async with fresh_database() as url:
        store = open_store(url)
        bus = EventBus(store)
        bus.add_event_store()
        async with bus:
            result = await bus.publish(nan_event())
            assert result.handled == 1 and result.dead_lettered == 0
            (stored,) = await store.query_events(EventQuery(type_pattern="test.*"))
        assert stored.event.payload == EXPECTED


async def test_http_intake_and_answers(tmp_path: Path) -> None:
    """POST /events with bare NaN tokens (as Python's json writes them): the event holds the strings, the
    admin API's answer is strict JSON."""
    bus = EventBus(MemoryStore())
    bus.add_event_store()
    seen: list[Event] = []
    bus.subscribe("test.*")(seen.append)  # type: ignore[arg-type]
    server = Server(bus, HTTPSettings(port=0, admin_token="adm"))
    body = '{"id": "nan-1", "type": "test.measured", "source": "ict-1", "payload": {"value": NaN, "hi": Infinity}}'
    async with bus:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as c:
                zipped = gzip.compress(body.encode())
                posted = await c.post("/events", content=zipped, headers={"Content-Encoding": "gzip"})
                assert posted.status_code == 200, posted.text
                strict(posted.content)
                await bus.publish(nan_event(id="nan-2"))  # from Python, float NaN
                listed = await c.get("/admin/events", headers={"Authorization": "Bearer adm"})
                assert listed.status_code == 200
                docs = {d["id"]: d for d in strict(listed.content)}
        finally:
            await server.stop()
    assert seen[0].payload == {"value": "NaN", "hi": "Infinity"}
    assert docs["nan-1"]["payload"] == {"value": "NaN", "hi": "Infinity"}
    assert docs["nan-2"]["payload"] == EXPECTED


async def test_drop_folder_intake_reads_the_bare_tokens_as_strings(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    bus = EventBus(MemoryStore())
    seen: list[Event] = []
    bus.subscribe("test.*")(seen.append)  # type: ignore[arg-type]
    bus.add_transport(FileTransport(path=inbox, settle_seconds=0.05))  # type: ignore[arg-type]
    async with bus:
        await wait_for(lambda: (inbox / "processed").is_dir(), 10)
        (inbox / "m.json").write_text(json.dumps({"type": "test.measured", "source": "s", "payload": NAN_PAYLOAD}))
        await wait_for(lambda: len(seen) == 1, 20)
    assert seen[0].payload == EXPECTED
    assert strict(seen[0].to_json())["payload"] == EXPECTED


async def test_cli_json_output(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "pywats-events.db"))
    bus = EventBus(store)
    bus.add_event_store()
    async with bus:
        await bus.publish(nan_event())
    proc = cli("events", "list", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (doc,) = [strict(line) for line in proc.stdout.splitlines() if line.strip()] or [None]
    items = doc if isinstance(doc, list) else doc.get("items", doc)
    assert any(e["payload"] == EXPECTED for e in items)


def test_json_logs() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "reading %s", (math.nan,), None)
    record.reading = math.inf
    doc = strict(JSONFormatter().format(record))
    assert doc["reading"] == "Infinity" and doc["message"] == "reading nan"


async def test_wats_client_body() -> None:
    from pywats_wats.client import WatsClient

    bodies: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200, json={"id": "r-1"})

    client = WatsClient("http://wats.test", "tok", transport=httpx.MockTransport(answer))
    try:
        await client.submit_report({"type": "T", "pn": "P", "sn": "S", "measured": math.nan})
    finally:
        await client.aclose()
    assert strict(bodies[0])["measured"] == "NaN"


def test_cfx_envelope_publishing_bytes() -> None:
    from pywats_cfx.envelope import envelope_to_bytes
    from pywats_cfx.explorer import generate_envelope

    env = generate_envelope("units-tested", seq=1, source="L.1", tests=1)
    env["MessageBody"]["Reading"] = math.nan
    assert strict(envelope_to_bytes(env))["MessageBody"]["Reading"] == "NaN"


def test_explorer_convert_json_output(tmp_path: Path) -> None:
    """``python -m pywats_cfx.explorer --convert FILE --json`` prints event JSON: strict JSON for a
    generated envelope whose body holds a Python NaN written with bare tokens."""
    from pywats_cfx.explorer import generate_envelope

    env = generate_envelope("units-tested", seq=1, source="L.1", tests=1)
    env["MessageBody"]["Reading"] = math.nan
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(env))  # Python writes a bare NaN token, as some senders do
    assert "NaN" in path.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "pywats_cfx.explorer", "--convert", str(path), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines
    for line in lines:
        strict(line)
