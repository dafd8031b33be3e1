"""Broker trouble is visible: a real ``pywats-events run`` process against the real RabbitMQ with a wrong
password logs a WARNING naming what to check, reports not-ready on ``/readyz``, and with
``--exit-on-connect-failure`` exits with status 3 for its supervisor."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.services import RABBITMQ, require_service

pytestmark = [pytest.mark.services]

WRONG_PASSWORD = "not-the-password-7f3a"


def cli() -> list[str]:
    """The ``pywats-events`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("pywats-events")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from pywats_events.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, http_port: int | None) -> Path:
    tag = uuid.uuid4().hex[:8]
    http = f"[http]\nenabled = true\nport = {http_port}\n" if http_port else "[http]\nenabled = false\n"
    config = folder / "pywats-events.toml"
    config.write_text(
        f'db = "sqlite:///{folder}/events.db"\n'
        f"{http}\n"
        "[[transports]]\n"
        'kind = "cfx"\n'
        'name = "cfx"\n'
        f'url = "amqp://guest:{WRONG_PASSWORD}@{RABBITMQ[0]}:{RABBITMQ[1]}/"\n'
        f'queue = "test-connect-failure-{tag}"\n'
        "reconnect_initial_delay = 0.2\n"
        "reconnect_max_delay = 0.5\n\n"
        "[[handlers]]\n"
        'kind = "event-store"\n'
    )
    return config


async def test_wrong_password_exits_3_with_a_warning_naming_url_user_and_vhost(tmp_path: Path) -> None:
    require_service("RabbitMQ", RABBITMQ)
    config = write_config(tmp_path, None)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cli(), "run", "--config", str(config), "--exit-on-connect-failure",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    err = err_bytes.decode(errors="replace")
    assert proc.returncode == 3, err[-3000:]
    assert time.monotonic() - started < 30
    warning = next(line for line in err.splitlines() if "WARNING" in line and "connecting to RabbitMQ failed" in line)
    assert "refused the login" in warning
    assert "amqp://guest:***@127.0.0.1:5672/" in warning
    assert "user 'guest'" in warning and "vhost '/'" in warning
    assert "exiting with status 3" in err
    assert WRONG_PASSWORD not in err


async def test_wrong_password_keeps_running_with_readiness_red_and_error_state(tmp_path: Path) -> None:
    require_service("RabbitMQ", RABBITMQ)
    port = free_port()
    config = write_config(tmp_path, port)
    proc = await asyncio.create_subprocess_exec(
        *cli(), "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    try:
        body: dict[str, object] = {}
        status = 0
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    r = await client.get("/readyz")
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
                    continue
                status, body = r.status_code, r.json()
                if "transport cfx: error" in json.dumps(body):
                    break
                await asyncio.sleep(0.2)
        assert status == 503, body
        assert "transport cfx: error" in json.dumps(body)
        assert proc.returncode is None  # without the option it keeps trying
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert WRONG_PASSWORD not in err.decode(errors="replace")
