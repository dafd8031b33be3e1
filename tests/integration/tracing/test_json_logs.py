"""``pywats-events run --log-format json`` with a failing handler (issue 18.3): every delivery log line
(the failed attempt that is retried, the breaker opening, the dead letter) is one JSON object carrying
``event_id``, ``handler``, ``transport`` and ``trace_id`` as fields. A real subprocess and drop folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CLI = Path(sys.executable).parent / "pywats-events"
TRACE = "5b8efff798038103d269b633813fc60c"
TRACEPARENT = f"00-{TRACE}-eee19b7ec3c1b174-01"

HANDLERS = """
import logging

def refuses(event):
    logging.getLogger("line.handlers").info("checking unit %s", event.subjects)
    raise ConnectionError("MES at 10.0.0.7:8443 refused the connection")
"""


def lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for text in path.read_text().splitlines():
        if text.startswith("{"):
            out.append(json.loads(text))
    return out


def test_run_with_json_logs_puts_event_handler_transport_and_trace_id_on_every_delivery_line(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (tmp_path / "json_log_handlers.py").write_text(HANDLERS)
    (tmp_path / "service.toml").write_text(
        f'db = "{tmp_path / "service.db"}"\n'
        "[bus]\ndrain_timeout = 2\n"
        "[bus.retry]\nmax_attempts = 2\ninitial_delay = 0.01\njitter = 0\n"
        "[bus.breaker]\nfailure_threshold = 2\nreset_timeout = 60\n"
        f'[[transports]]\nkind = "file"\nname = "inbox"\npath = "{inbox}"\nsettle_seconds = 0.1\n'
        '[[handlers]]\nkind = "python"\nname = "mes"\ntarget = "json_log_handlers:refuses"\n'
        'event_types = ["test.result"]\n'
        "[http]\nenabled = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYWATS_EVENTS_", "OTEL_"))}
    env["PYTHONPATH"] = str(tmp_path)
    log = tmp_path / "service.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [str(CLI), "--log-format", "json", "run", "--config", "service.toml"],
            cwd=tmp_path, env=env, stdout=sink, stderr=sink,
        )
    try:
        deadline = time.monotonic() + 60
        while not (inbox / "processed").is_dir():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        event = {"id": "ev-json-1", "type": "test.result", "source": "st-1", "subjects": ["SN123"],
                 "headers": {"traceparent": TRACEPARENT}}
        (inbox / "unit.json").write_text(json.dumps(event))
        while not any(d["message"].startswith("dead-lettered event") for d in lines(log)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    records = lines(log)
    text = log.read_text()
    assert all(t.startswith("{") for t in text.splitlines() if t.strip()), text  # nothing but JSON lines
    expected = {"event_id": "ev-json-1", "handler": "mes", "transport": "inbox", "trace_id": TRACE}

    def the(prefix: str) -> dict[str, Any]:
        found = [d for d in records if d["message"].startswith(prefix)]
        assert found, f"no line starting {prefix!r}:\n{text}"
        return found[0]

    retried = the("handler mes failed on event ev-json-1")
    breaker = the("circuit breaker of handler mes: closed -> open")
    dead = the("dead-lettered event ev-json-1 for handler mes after 2 attempt(s): ConnectionError")
    own = the("checking unit")  # the handler's own line, written during the delivery
    for record in (retried, breaker, dead, own):
        assert {k: record.get(k) for k in expected} == expected, record
    assert breaker["level"] == dead["level"] == "WARNING"
    assert dead["entry_id"]
    assert "MES at 10.0.0.7:8443 refused" in dead["message"]
    # Lines outside any delivery carry no delivery fields.
    assert "event_id" not in the("pyWATS events running")
