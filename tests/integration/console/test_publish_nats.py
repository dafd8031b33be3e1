"""``pywats-events publish --to <nats transport>`` as a user runs it (a real subprocess) against the real
NATS JetStream server: the event lands on the transport's ``publish_subject`` with ``Nats-Msg-Id`` set to
its id and is read back from the stream; publishing the same file again is stored once (de-duplication);
no consumer is made; a CFX envelope needs ``--topic``; a subject no stream captures fails with exit 2."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import nats.js.errors
import pytest

from pywats_events import Event
from tests.integration.core.test_cli import cli
from tests.integration.nats.conftest import NATS_HOST, NATS_PORT, Run
from tests.services import require_service


@pytest.fixture
async def run() -> AsyncIterator[Run]:
    require_service("NATS JetStream", (NATS_HOST, NATS_PORT))
    r = Run(f"nats://{NATS_HOST}:{NATS_PORT}")
    try:
        await r.create_stream()
        yield r
    finally:
        await r.cleanup()


def config(run: Run, path: Path) -> Path:
    path.write_text(
        f"""
[[transports]]
kind = "nats"
name = "line"
servers = ["{run.url}"]
stream = "{run.stream}"
durable = "{run.durable}"
publish_subject = "{run.prefix}.events.{{category}}.{{type}}"
connect_timeout = 3.0
send_timeout = 5.0

[[transports.rules]]
subject = "{run.prefix}.results.{{station}}"
type = "test.result"
source = "{{station}}"
""",
        encoding="utf-8",
    )
    return path


async def read_back(run: Run, seq: int) -> tuple[str, bytes, dict[str, str]]:
    async with run.client() as nc:
        msg = await nc.jetstream().get_msg(run.stream, seq)
        return msg.subject, msg.data, dict(msg.headers or {})


async def test_publish_an_event_file_to_a_nats_subject_with_msg_id(run: Run, tmp_path: Path) -> None:
    cfg = config(run, tmp_path / "line.toml")
    ev = Event(type="asset.fault", source="ict-1", payload={"code": "E42"}, correlation_id="tx-9")
    file = tmp_path / "fault.json"
    file.write_text(ev.to_json(), encoding="utf-8")

    proc = await asyncio.to_thread(cli, "publish", str(file), "--to", "line", "--config", str(cfg), "--json",
                                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    subject = f"{run.prefix}.events.asset.asset.fault"
    assert report["subjects"] == [subject] and report["message_ids"] == [ev.id] and report["duplicates"] == 0
    assert run.stream in report["destination"]
    got_subject, body, headers = await read_back(run, report["sequences"][0])
    assert got_subject == subject and headers["Nats-Msg-Id"] == ev.id
    assert Event.from_json_dict(json.loads(body)) == ev

    again = await asyncio.to_thread(cli, "publish", str(file), "--to", "line", "--config", str(cfg), "--json",
                                    cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["duplicates"] == 1
    assert (await run.stream_info()).state.messages == 1  # stored once
    with pytest.raises(nats.js.errors.NotFoundError):  # publishing made no consumer
        await run.consumer_info()
    text = await asyncio.to_thread(cli, "publish", str(file), "--to", "line", "--config", str(cfg), cwd=tmp_path)
    assert text.returncode == 0 and f"published event asset.fault to line: {run.url}" in text.stdout


async def test_publish_a_cfx_envelope_needs_a_subject_and_a_stream_that_captures_it(run: Run, tmp_path: Path) -> None:
    cfg = config(run, tmp_path / "line.toml")
    args = ("publish", "--sample", "fault", "--to", "line", "--config", str(cfg))
    no_topic = await asyncio.to_thread(cli, *args, cwd=tmp_path)
    assert no_topic.returncode == 2 and "--topic: required to publish a CFX envelope over NATS" in no_topic.stderr
    subject = f"{run.prefix}.cfx.line1"
    sent = await asyncio.to_thread(cli, *args, "--topic", subject, "--json", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    report = json.loads(sent.stdout)
    got_subject, body, headers = await read_back(run, report["sequences"][0])
    envelope = json.loads(body)
    assert got_subject == subject and envelope["MessageName"].startswith("CFX.")
    assert headers["Nats-Msg-Id"] == envelope["UniqueID"] == report["message_ids"][0]
    nowhere = await asyncio.to_thread(cli, *args, "--topic", "pywats-nowhere.x", cwd=tmp_path)
    assert nowhere.returncode == 2 and "no JetStream stream captures subject 'pywats-nowhere.x'" in nowhere.stderr
