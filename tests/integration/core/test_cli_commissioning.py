"""Commissioning commands as a user runs them: ``config check``, ``mqtt try``, ``publish`` to real
RabbitMQ and Mosquitto (the message is consumed at the other end), ``--version``, shell completion and
JSON log lines. Real subprocesses of the CLI."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import aio_pika
import pytest

from pywats_events import __version__
from pywats_events.migrations import script_directory
from tests.integration.core.test_cli import CLI, cli, cli_env

pytestmark = pytest.mark.slow

AMQP = "amqp://guest:guest@127.0.0.1:5672/"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_version_and_completion() -> None:
    proc = cli("--version", cwd=Path.cwd())
    # The package version, then the schema head(s) this installation migrates stores to (issue 18.1).
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == f"pywats-events {__version__}"
    script = script_directory()
    heads = sorted(script.get_heads())
    labels = [f"{sorted(script.get_revision(h).branch_labels or ())[0]}@{h}" for h in heads]
    assert proc.stdout.splitlines()[1:] == [f"schema {', '.join(labels)}"]
    assert "pywats_events@0003_query_indexes" in labels
    completion = cli("--show-completion", "bash", cwd=Path.cwd())
    assert completion.returncode == 0 and "_pywats_events_completion" in completion.stdout


def test_config_check_prints_the_resolved_configuration_without_secrets(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "plant.toml",
        """
db = "sqlite:///plant.db"
[[transports]]
kind = "cfx"
name = "line"
url = "amqp://plant:s3cret-amqp@127.0.0.1:5672/"
[[transports]]
kind = "mqtt"
name = "sensors"
password = "s3cret-mqtt"
username = "u"
rules = [{topic = "s/{station}/t", type = "sensor.temp"}]
[[handlers]]
kind = "event-store"
[http]
enabled = true
admin_token = "s3cret-admin"
[http.console]
enabled = true
admin_tokens = ["s3cret-console"]
session_secret = "s3cret-session-0123456789abcdef0123456789"
""",
    )
    proc = cli("config", "check", "--config", str(cfg), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout
    report = json.loads(proc.stdout)
    assert [t["name"] for t in report["transports"]][:2] == ["line", "sensors"]
    assert report["http"]["admin_token"] == "**********"
    assert report["http"]["console"]["enabled"] is True
    assert "event-store" in [h["name"] for h in report["handlers"]]
    assert not (tmp_path / "plant.db").exists()  # a check creates no store


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[handlers]]\nkind = "no-such-handler"\n', "no-such-handler"),
        ('[[transports]]\nkind = "cfx"\nprefetch = 0\n', "prefetch"),
        ("[http]\nport = 99999\n", "http.port"),
        ("[http.console]\nenabled = true\n", "console"),
        ('[[handlers]]\nkind = "python"\ntarget = "nowhere_module:Fn"\n', "nowhere_module"),
    ],
)
def test_config_check_exits_2_naming_the_problem(tmp_path: Path, text: str, expected: str) -> None:
    cfg = write(tmp_path / "bad.toml", text)
    proc = cli("config", "check", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout
    assert expected in proc.stderr and proc.stderr.startswith("error:")


MQTT_RULES = """
[[transports]]
kind = "mqtt"
name = "sensors"
rules = [
  {topic = "stations/{station}/results", type = "test.result", subjects = ["{station}"]},
  {topic = "stations/+/#", type = "station.raw"},
]
"""


def test_mqtt_try_shows_the_rule_the_event_and_warns_about_overlap(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.toml", MQTT_RULES)
    proc = cli("mqtt", "try", "stations/fct1/results", '{"passed": true}', "--config", str(cfg), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    trial = json.loads(proc.stdout)
    assert [m["index"] for m in trial["matches"]] == [0, 1]
    assert trial["matches"][0]["fields"] == {"station": "fct1"}
    (event,) = trial["events"]
    assert event["type"] == "test.result" and event["payload"] == {"passed": True}
    assert event["subjects"] == ["fct1"]
    assert len(trial["warnings"]) == 1 and "2 rules match" in trial["warnings"][0]
    text = cli("mqtt", "try", "stations/fct1/results", '{"passed": true}', "--config", str(cfg), cwd=tmp_path)
    assert "warning:" in text.stderr and "rules[0]" in text.stdout
    only = cli("mqtt", "try", "stations/fct1/raw", "x", "--config", str(cfg), "--json", cwd=tmp_path)
    assert json.loads(only.stdout)["warnings"] == [] and json.loads(only.stdout)["matches"][0]["index"] == 1


def test_mqtt_try_exits_1_for_an_unrouted_topic_or_bad_payload(tmp_path: Path) -> None:
    cfg = write(tmp_path / "m.toml", MQTT_RULES)
    unrouted = cli("mqtt", "try", "elsewhere/x", "{}", "--config", str(cfg), cwd=tmp_path)
    assert unrouted.returncode == 1 and "no mapping rule matches" in unrouted.stderr
    bad = cli("mqtt", "try", "stations/fct1/results", "{not json", "--config", str(cfg), cwd=tmp_path)
    assert bad.returncode == 1 and "no event" in bad.stderr


def test_publish_generated_cfx_sample_arrives_on_the_configured_exchange(tmp_path: Path) -> None:
    exchange, queue = f"cfx-test-{uuid.uuid4().hex[:8]}", f"q-{uuid.uuid4().hex[:8]}"
    cfg = write(tmp_path / "p.toml", f'[[transports]]\nkind = "cfx"\nname = "line"\nexchange = "{exchange}"\n')

    async def scenario() -> None:
        conn = await aio_pika.connect(AMQP)
        async with conn:
            ch = await conn.channel()
            ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, auto_delete=True)
            q = await ch.declare_queue(queue, auto_delete=True)
            await q.bind(ex, "#")
            args = ("publish", "--sample", "fault", "--seq", "7", "--to", "line", "--config", str(cfg), "--json")
            proc = await asyncio.to_thread(cli, *args, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
            report = json.loads(proc.stdout)
            message = await q.get(timeout=10)
            await message.ack()
            body = json.loads(message.body)
            assert body["MessageName"] == "CFX.ResourcePerformance.FaultOccurred"
            assert message.routing_key == report["routing_keys"][0] == f"{body['Source']}.{body['MessageName']}"
            assert message.message_id == body["UniqueID"] == report["message_ids"][0]
            assert message.headers["cfx-message"] == body["MessageName"]
            # An event file goes out as normalized event JSON.
            ev = write(tmp_path / "ev.json", json.dumps({"type": "asset.fault", "source": "FCT1", "severity": "error"}))
            sent = await asyncio.to_thread(cli, "publish", str(ev), "--to", "line", "--config", str(cfg), cwd=tmp_path)
            assert sent.returncode == 0, sent.stderr
            second = await q.get(timeout=10)
            await second.ack()
            assert json.loads(second.body)["type"] == "asset.fault"
            assert second.content_type == "application/vnd.pywats.event+json"

    asyncio.run(scenario())


def test_publish_fails_with_exit_2_when_nothing_would_receive_it(tmp_path: Path) -> None:
    exchange = f"cfx-none-{uuid.uuid4().hex[:8]}"
    cfg = write(tmp_path / "p.toml", f'[[transports]]\nkind = "cfx"\nname = "line"\nexchange = "{exchange}"\n')
    missing = cli("publish", "--sample", "fault", "--to", "line", "--config", str(cfg), cwd=tmp_path)
    assert missing.returncode == 2 and exchange in missing.stderr  # the exchange does not exist
    unknown = cli("publish", "--sample", "fault", "--to", "nope", "--config", str(cfg), cwd=tmp_path)
    assert unknown.returncode == 2 and "known: line, http" in unknown.stderr
    bad = write(tmp_path / "bad.json", '{"type": "Not A Type!"}')
    invalid = cli("publish", str(bad), "--to", "line", "--config", str(cfg), cwd=tmp_path)
    assert invalid.returncode == 2 and "not a valid pyWATS event" in invalid.stderr


def test_publish_event_file_arrives_on_the_mqtt_topic(tmp_path: Path) -> None:
    topic = f"pywats-test/{uuid.uuid4().hex[:8]}/fault"
    cfg = write(
        tmp_path / "m.toml",
        '[[transports]]\nkind = "mqtt"\nname = "sensors"\nrules = [{topic = "x/#", type = "x.y"}]\n',
    )
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-t", topic, "-C", "1", "-W", "20", "-q", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # the subscription must exist before the message is sent (not retained)
        ev = write(tmp_path / "ev.json", json.dumps({"type": "asset.fault", "source": "FCT1", "id": "ev-1"}))
        proc = cli("publish", str(ev), "--to", "sensors", "--topic", topic, "--config", str(cfg), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        out, _ = sub.communicate(timeout=25)
    finally:
        sub.kill()
    received = json.loads(out)
    assert received["id"] == "ev-1" and received["type"] == "asset.fault"


def test_log_format_json_writes_one_json_object_per_line(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "svc.toml",
        '[[transports]]\nkind = "file"\nname = "inbox"\npath = "inbox"\n[http]\nenabled = false\n',
    )
    proc = subprocess.Popen(
        [str(CLI), "--log-format", "json", "--log-level", "info", "run", "--config", str(cfg)],
        cwd=tmp_path,
        env=cli_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        deadline = time.monotonic() + 30
        lines = [first]
        while "pyWATS events running" not in lines[-1] and time.monotonic() < deadline:
            lines.append(proc.stderr.readline())
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines += rest.splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any("pyWATS events running" in r["message"] and r["level"] == "INFO" for r in records)
    assert any(r["message"] == "stopped" for r in records)
    bad = cli("--log-format", "xml", "plugins", cwd=tmp_path)
    assert bad.returncode == 2 and "--log-format" in bad.stderr


def test_publish_to_http_posts_to_the_running_service_with_the_route_token(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = write(
        tmp_path / "svc.toml",
        f'db = "sqlite:///svc.db"\n[[transports]]\nkind = "file"\nname = "inbox"\npath = "inbox"\n'
        f'[http]\nport = {port}\n[http.routes.cfx]\ntokens = ["t0k-cfx"]\n',
    )
    service = subprocess.Popen(
        [str(CLI), "run", "--config", str(cfg)], cwd=tmp_path, env=cli_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        assert service.stderr is not None
        deadline = time.monotonic() + 30
        while "pyWATS events running" not in service.stderr.readline():
            assert time.monotonic() < deadline and service.poll() is None, "service did not start"
        args = ("publish", "--sample", "units-tested", "--seq", "3", "--to", "http", "--config", str(cfg), "--json")
        proc = cli(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        assert report["destination"] == f"http://127.0.0.1:{port}/cfx" and report["status"] == 200
        assert report["response"]["accepted"] >= 1
        listed = cli("events", "list", "--config", str(cfg), "--type", "test.*", "--json", cwd=tmp_path)
        assert any(e["id"] in report["response"]["event_ids"] for e in json.loads(listed.stdout))
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=30)


def test_publish_to_http_without_a_service_exits_2_saying_so(tmp_path: Path) -> None:
    cfg = write(tmp_path / "svc.toml", "[http]\nport = 9\n")
    proc = cli("publish", "--sample", "fault", "--to", "http", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2 and "is the service running?" in proc.stderr
