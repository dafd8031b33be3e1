"""At-least-once with a real process killed by SIGKILL between receipt and settlement, and the
birth / last-will status messages."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pywats_events import Event, EventBus, MemoryStore, StoreError, TransportState
from tests.integration.mqtt.conftest import Run, wait_for

pytestmark = [pytest.mark.services]

REPO = Path(__file__).resolve().parents[3]


async def spawn(run: Run, client_id: str, protocol: str, mode: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.mqtt.consumer",
        str(run.port),
        client_id,
        run.prefix,
        protocol,
        mode,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_until(proc: asyncio.subprocess.Process, *wanted: str, timeout: float = 20.0) -> list[str]:
    """Read output lines until one starting with each of ``wanted`` has appeared (in any order)."""
    assert proc.stdout is not None
    lines: list[str] = []
    missing = list(wanted)
    async with asyncio.timeout(timeout):
        while missing:
            raw = await proc.stdout.readline()
            if not raw:
                raise AssertionError(f"consumer exited ({await proc.wait()}) before {missing}; output {lines}")
            line = raw.decode().strip()
            lines.append(line)
            missing = [w for w in missing if not line.startswith(w)]
    return lines


def line(lines: list[str], prefix: str) -> str:
    return next(x for x in lines if x.startswith(prefix))


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_message_unsettled_when_consumer_is_killed_is_redelivered_from_its_session(
    run: Run, protocol: str
) -> None:
    client_id = f"pywats-test-{run.id}-killed"
    run.sessions.add(client_id)
    status = f"{run.prefix}/status/{client_id}"
    run.retained.add(status)
    watcher = run.client()
    watcher.subscribe(status)
    pub = run.client()

    first = await spawn(run, client_id, protocol, "block")
    try:
        await read_until(first, "READY")
        birth = await asyncio.to_thread(watcher.get)
        assert birth.payload == b"online"

        pub.publish(f"{run.prefix}/results/ict-1", json.dumps({"seq": 1}))
        got = await read_until(first, "RECEIVED")
        assert line(got, "RECEIVED") == "RECEIVED 1 False"
        # The handler is now blocked: the message is received but not settled, so no PUBACK went out.
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()

    will = await asyncio.to_thread(watcher.get)
    assert will.payload == b"offline", "the broker published the last will for the killed process"

    second = await spawn(run, client_id, protocol, "ack")
    try:
        got = await read_until(second, "READY", "RECEIVED", "SETTLED")
        # Same message again, from the broker's copy in the persistent session (DUP flag set).
        assert line(got, "RECEIVED") == "RECEIVED 1 True"
        assert line(got, "SETTLED") == "SETTLED 1"
        second.send_signal(signal.SIGINT)  # clean stop: the acknowledged message must not come back
        await asyncio.wait_for(second.wait(), 15)
    finally:
        if second.returncode is None:
            second.kill()
            await second.wait()

    third = await spawn(run, client_id, protocol, "ack")
    try:
        await read_until(third, "READY")
        pub.publish(f"{run.prefix}/results/ict-1", json.dumps({"seq": 2}))
        got = await read_until(third, "RECEIVED")
        # The broker delivers in order: had seq 1 not been acknowledged it would come first.
        assert line(got, "RECEIVED") == "RECEIVED 2 False"
    finally:
        third.kill()
        await third.wait()


class FlakyStore(MemoryStore):
    """Fails the first idempotency write, as a database that drops out for a moment."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def mark_completed(self, pairs: Sequence[tuple[str, str]]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("database unavailable (test)")
        await super().mark_completed(pairs)


async def test_message_whose_settlement_fails_is_not_acknowledged_and_comes_back(run: Run) -> None:
    t = run.transport(rules=[{"topic": f"{run.prefix}/results/{{station}}", "type": "test.result"}])
    bus = EventBus(store=FlakyStore())
    calls: list[bool] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        calls.append(event.headers["mqtt_dup"])

    states: list[TransportState] = []
    original = t._set_state

    def record(new: TransportState, detail: str | None = None) -> None:
        states.append(new)
        original(new, detail)

    t._set_state = record  # type: ignore[method-assign]
    bus.add_transport(t)
    pub = run.client()
    async with bus:
        pub.publish(f"{run.prefix}/results/ict-1", b'{"seq": 1}')
        await wait_for(lambda: t.acknowledged == 1, timeout=15, what="acknowledged after the redelivery")
    # First delivery: handled, but the settlement failed, so no PUBACK; the transport reconnected and the
    # broker sent the same message again (DUP), which settled and was acknowledged.
    assert calls == [False, True]
    assert TransportState.RECONNECTING in states
