"""The main job, end to end: a real ``pywats-events run`` process consumes UnitsTested envelopes from
RabbitMQ and posts reports to the fake WATS on a real port. WATS is down for 60 s while 1,000 results
arrive; the service is ``kill -9``-ed in that window (while it parks the first 600; the other 400 arrive
while it is dead) and started again; when WATS comes back every report is stored exactly once (one report
per event id), with no command typed.

``PYWATS_WATS_DOWN_S`` shortens the outage for a quick local run (default 60, as the issue asks).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events.sql_store import open_store
from pywats_wats.testing import FakeWats
from tests.integration.amqp.broker import (
    AmqpNames,
    Publisher,
    envelope_bytes,
    expected_event_ids,
    queue_depth,
    wait_for,
)
from tests.integration.wats.conftest import TOKEN

pytestmark = pytest.mark.slow

N = 1000
DOWN_S = float(os.environ.get("PYWATS_WATS_DOWN_S", "60"))
CLI = Path(sys.executable).parent / "pywats-events"
ROUTING = "CFX.Production.TestAndInspection.UnitsTested"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, db: Path, options: dict[str, object], wats_port: int) -> None:
    lines = [
        f'db = "sqlite:///{db}"',
        "[http]",
        "enabled = false",
        "[[transports]]",
        'kind = "cfx"',
        'name = "cfx"',
        *(f"{k} = {v!r}".replace("'", '"') for k, v in options.items()),
        "[[handlers]]",
        'kind = "wats-report"',
        f'base_url = "http://127.0.0.1:{wats_port}"',
        'token_env = "WATS_TOKEN"',
        'part_number = "PCBA-1000"',
        'revision = "A"',
        "process_code = 10",
        'location = "Line 3"',
        'purpose = "Production"',
        "retry_attempts = 2",
        "retry_delay = 0.2",
        "probe_interval = 2.0",
        "timeout = 5.0",
    ]
    path.write_text("\n".join(lines) + "\n")


class Service:
    """``pywats-events run --config FILE`` as a subprocess, its log in a file."""

    def __init__(self, config: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
        env["WATS_TOKEN"] = TOKEN
        self.log = log
        self._log_file = log.open("ab")
        self.proc = subprocess.Popen(
            [str(CLI), "run", "--config", str(config)], stdout=self._log_file, stderr=self._log_file, env=env
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def running(self, within: float = 60) -> None:
        await wait_for(
            lambda: "pyWATS events running" in self.text() or self.proc.poll() is not None, within, "the service"
        )
        assert self.proc.poll() is None, self.text()[-3000:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log_file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log_file.close()


async def parked_ids(db: Path) -> set[str]:
    """Event ids with a parked (circuit_open) wats-report delivery in the service's store."""
    async with open_store(f"sqlite:///{db}") as store:
        entries = await store.list_dead_letters(handler="wats-report", limit=100_000)
    assert {e.reason for e in entries} <= {"circuit_open"}, {e.reason for e in entries}
    return {e.event.id for e in entries if e.event is not None}


async def test_wats_down_60s_while_1000_results_arrive_then_each_stored_once_despite_kill_9(
    amqp: AmqpNames, publisher: Publisher, tmp_path: Path
) -> None:
    options = amqp.transport_options(prefetch=200)
    await CFXTransport("declare", **options).declare_topology()  # type: ignore[arg-type]
    port = free_port()
    db, config = tmp_path / "events.db", tmp_path / "pywats-events.toml"
    write_config(config, db, options, port)
    expected = expected_event_ids(amqp.handle, N)
    assert len(expected) == N

    first = Service(config, tmp_path / "first.log")
    second: Service | None = None
    try:
        await first.running()
        down_since = time.monotonic()

        def batch(lo: int, hi: int) -> list[tuple[bytes, str]]:
            return [(envelope_bytes(i, source=amqp.handle), f"{amqp.handle}.{ROUTING}") for i in range(lo, hi)]

        # 600 arrive while the service runs (it parks them as they come); kill -9 in the middle of that;
        # the other 400 arrive while it is dead and wait in the broker.
        publishing = asyncio.ensure_future(publisher.publish_many(batch(0, 600), window=50))
        parked: set[str] = set()
        while len(parked) < 200:
            parked = await parked_ids(db)
            await asyncio.sleep(0.05)
        first.kill9()
        await publishing
        await publisher.publish_many(batch(600, N))

        second = Service(config, tmp_path / "second.log")
        await second.running()
        deadline = time.monotonic() + 120
        while (parked := await parked_ids(db)) != expected or await queue_depth(amqp.queue):
            assert time.monotonic() < deadline, f"{len(parked)} of {N} parked"
            await asyncio.sleep(0.2)
        # WATS still down: the line was never blocked, every message is acknowledged and parked.
        await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - down_since)))

        fake = FakeWats(TOKEN, strict=True)
        with fake.serve(port=port):
            await wait_for(lambda: len(fake.reports) == N, 120, "every report stored", interval=0.2)
            deadline = time.monotonic() + 30
            while await parked_ids(db):
                assert time.monotonic() < deadline, "parked deliveries left after WATS took them"
                await asyncio.sleep(0.2)
        assert set(fake.reports) == expected  # exactly once: one stored report per event id, none extra
        refused = [r for r in fake.calls("POST", "/api/Report/WSJF") if r.status != 200]
        assert refused == []  # every post valid in strict mode
        assert "dead-lettered" not in second.text()
    finally:
        if second is not None:
            second.stop()
        if first.proc.poll() is None:
            first.stop()
