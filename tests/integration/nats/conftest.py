"""Fixtures for the NATS JetStream integration tests: the shared server on 127.0.0.1:4222 with names unique to
each test, and a private ``nats-server -js`` (own port, own store folder) that a test may kill and restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from pywats_events import TransportState
from pywats_nats import NATSTransport
from tests.services import require_service, services_required

NATS_HOST = "127.0.0.1"
NATS_PORT = 4222
NATS_BIN = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)


class Run:
    """Stream, subject prefix and durable names unique to one test, and cleanup of the streams it made.

    Args:
        url: the server's URL (``nats://127.0.0.1:4222``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.id = uuid.uuid4().hex[:10]
        self.stream = f"PYWATS_TEST_{self.id}"
        self.prefix = f"pywats-test.{self.id}"
        self.durable = f"pywats-test-{self.id}"
        self.streams: set[str] = {self.stream}

    def rules(self) -> list[dict[str, Any]]:
        """One JSON rule: ``<prefix>.results.{station}`` -> ``test.result`` with source ``{station}``."""
        return [{"subject": f"{self.prefix}.results.{{station}}", "type": "test.result", "source": "{station}"}]

    def options(self, **options: Any) -> dict[str, Any]:
        """NATSTransport options on this run's names (stream created), with short timeouts for tests."""
        defaults: dict[str, Any] = {
            "servers": [self.url],
            "stream": self.stream,
            "create_stream": True,
            "stream_subjects": [f"{self.prefix}.>"],
            "durable": self.durable,
            "rules": self.rules(),
            "reconnect_initial": 0.1,
            "reconnect_max": 1.0,
            "connect_timeout": 3.0,
            "nak_delay": 0.1,
        }
        return defaults | options

    def transport(self, name: str = "nats", **options: Any) -> NATSTransport:
        """A NATSTransport on this run's names."""
        return NATSTransport(name, **self.options(**options))

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        """An independent nats-py connection (the test's publisher and observer, not the code under test)."""
        nc = await nats.connect(self.url, connect_timeout=5)
        try:
            yield nc
        finally:
            await nc.close()

    async def publish(self, items: list[tuple[str, bytes]], headers: list[dict[str, str] | None] | None = None) -> None:
        """Publish ``(subject suffix, body)`` pairs to JetStream, each waiting for its PubAck."""
        async with self.client() as nc:
            js = nc.jetstream()
            for i, (suffix, body) in enumerate(items):
                await js.publish(f"{self.prefix}.{suffix}", body, headers=headers[i] if headers else None)

    async def create_stream(self) -> None:
        """Create this run's stream (``<prefix>.>``, file storage) with a plain client."""
        async with self.client() as nc:
            await nc.jetstream().add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])

    async def consumer_info(self) -> Any:
        async with self.client() as nc:
            return await nc.jetstream().consumer_info(self.stream, self.durable)

    async def stream_info(self, stream: str | None = None) -> Any:
        async with self.client() as nc:
            return await nc.jetstream().stream_info(stream or self.stream)

    async def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            async with self.client() as nc:
                js = nc.jetstream()
                for stream in self.streams:
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_stream(stream)


@pytest.fixture
async def run() -> AsyncIterator[Run]:
    """Unique names on the shared NATS server (skips, or fails with PYWATS_REQUIRE_SERVICES=1, when down)."""
    require_service("NATS JetStream", (NATS_HOST, NATS_PORT))
    r = Run(f"nats://{NATS_HOST}:{NATS_PORT}")
    try:
        yield r
    finally:
        await r.cleanup()


def _free_port() -> int:
    for _ in range(50):
        port = random.randint(24230, 34230)
        with socket.socket() as s:
            try:
                s.bind((NATS_HOST, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found for a private nats-server")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection((NATS_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


class PrivateServer:
    """``nats-server -js`` on a random free port with its JetStream store in a temporary folder, so a test may
    kill and restart it (the store survives) without disturbing the shared server."""

    def __init__(self) -> None:
        if NATS_BIN is None:
            message = "the nats-server program is not installed"
            if services_required():
                pytest.fail(message + " (PYWATS_REQUIRE_SERVICES=1)")
            pytest.skip(message)
        self.binary = NATS_BIN
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pywats-nats-"))
        self.url = f"nats://{NATS_HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it accepts connections."""
        log = (self.dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", NATS_HOST, "-p", str(self.port), "-sd", str(self.dir / "js")],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while not _answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"private nats-server exited with {self.proc.returncode}; see {self.dir}/server.log")
            if time.monotonic() > deadline:
                raise RuntimeError(f"private nats-server did not answer on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_server() -> Iterator[PrivateServer]:
    """A private JetStream server the test may kill and start again on the same port and store folder."""
    server = PrivateServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


async def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true (checked every 20 ms); fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def wait_state(t: NATSTransport, state: TransportState, timeout: float = 20.0) -> None:
    """Wait until the transport reaches ``state``."""
    await wait_for(lambda: t.state is state, timeout, f"transport {t.name} to become {state.value}")


async def consumer_settled(run: Run, timeout: float = 30.0) -> Any:
    """Poll the durable consumer until the server holds no unacknowledged message for it; returns its info.

    For waits on server state the code under test cannot signal (redeliveries after AckWait).
    """
    deadline = time.monotonic() + timeout
    info = await run.consumer_info()
    while info.num_ack_pending and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        info = await run.consumer_info()
    return info
