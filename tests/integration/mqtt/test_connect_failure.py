"""Broker trouble is visible: a real ``pywats-events run`` process whose MQTT broker does not answer (a port
nobody listens on) logs a WARNING naming what to check and, with ``--exit-on-connect-failure``, exits with
status 3: at once, or after ``--connect-grace`` seconds without a connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.amqp.test_connect_failure import cli
from tests.integration.mqtt.broker import free_port

pytestmark = [pytest.mark.services]


def write_config(folder: Path, port: int) -> Path:
    config = folder / "pywats-events.toml"
    config.write_text(
        f'db = "sqlite:///{folder}/events.db"\n'
        "[http]\nenabled = false\n\n"
        "[[transports]]\n"
        'kind = "mqtt"\n'
        'name = "line1"\n'
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        'username = "pywats"\n'
        'password = "mqtt-secret-9b1c"\n'
        'client_id = "pywats-test-unreachable"\n'
        "reconnect_initial = 0.2\n"
        "reconnect_max = 0.5\n"
        "connect_timeout = 2\n\n"
        "[[transports.rules]]\n"
        'topic = "line1/#"\n'
        'type = "sensor.reading"\n'
    )
    return config


async def run_until_exit(config: Path, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *cli(), "run", "--config", str(config), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, cwd=config.parent,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace"), time.monotonic() - started


async def test_unreachable_broker_exits_3_after_the_first_failed_attempt(tmp_path: Path) -> None:
    port = free_port()
    code, err, _ = await run_until_exit(write_config(tmp_path, port), "--exit-on-connect-failure")
    assert code == 3, err[-3000:]
    warning = next(line for line in err.splitlines() if "WARNING" in line and "MQTT broker failed" in line)
    assert f"cannot reach 127.0.0.1:{port}" in warning.lower()
    assert f"broker 127.0.0.1:{port}" in warning and "user 'pywats'" in warning
    assert "client id 'pywats-test-unreachable'" in warning
    assert "transport line1 is reconnecting" in err and "exiting with status 3" in err
    assert "mqtt-secret-9b1c" not in err


async def test_connect_grace_keeps_trying_that_long_before_exiting(tmp_path: Path) -> None:
    code, err, took = await run_until_exit(
        write_config(tmp_path, free_port()), "--exit-on-connect-failure", "--connect-grace", "3"
    )
    assert code == 3, err[-3000:]
    assert took >= 3
    # It kept retrying meanwhile, each failure a WARNING.
    assert sum(1 for line in err.splitlines() if "WARNING" in line and "MQTT broker failed" in line) >= 3
