"""The test broker: unique names per test, a confirming publisher, queue depth, waiting on conditions."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from pywats_cfx.envelope import envelope_to_bytes
from pywats_cfx.explorer import generate_envelope
from tests.services import AMQP_URL


@dataclass(frozen=True)
class AmqpNames:
    """Names of one test's broker objects."""

    exchange: str
    queue: str
    handle: str

    @property
    def dlq(self) -> str:
        return f"{self.queue}.dead-letter"

    def transport_options(self, **extra: Any) -> dict[str, Any]:
        """Options for ``CFXTransport`` pointing at this test's exchange and queue."""
        return {
            "url": AMQP_URL,
            "exchange": self.exchange,
            "queue": self.queue,
            "handle": self.handle,
            "reconnect_initial_delay": 0.2,
            "reconnect_max_delay": 1.0,
            **extra,
        }


async def delete_names(names: AmqpNames) -> None:
    """Delete the test's queues and exchanges (ignores what does not exist)."""
    try:
        conn = await aio_pika.connect(AMQP_URL, timeout=5)
    except Exception:
        return
    async with conn:
        for kind, name in (
            ("queue", names.queue),
            ("queue", names.dlq),
            ("exchange", names.exchange),
            ("exchange", names.dlq),
        ):
            ch = await conn.channel()
            try:
                if kind == "queue":
                    await ch.queue_delete(name)
                else:
                    await ch.exchange_delete(name)
            except Exception:
                pass
            finally:
                if not ch.is_closed:
                    await ch.close()


def envelope_bytes(seq: int, *, source: str, gzip: bool = False, kind: str = "units-tested") -> bytes:
    """Wire bytes of a synthetic CFX envelope (``pywats_cfx.explorer.generate_envelope``)."""
    return envelope_to_bytes(generate_envelope(kind, seq=seq, source=source, tests=2), gzip=gzip)


class Publisher:
    """A plain aio-pika publisher with confirms, as a factory's CFX endpoint would publish."""

    def __init__(
        self,
        conn: aio_pika.abc.AbstractConnection,
        channel: aio_pika.abc.AbstractChannel,
        exchange: aio_pika.abc.AbstractExchange,
    ) -> None:
        self.conn = conn
        self.channel = channel
        self.exchange = exchange

    async def publish(self, body: bytes, routing_key: str, **props: Any) -> None:
        props.setdefault("delivery_mode", aio_pika.DeliveryMode.PERSISTENT)
        await self.exchange.publish(aio_pika.Message(body, **props), routing_key)

    async def publish_many(self, items: Iterable[tuple[bytes, str]], window: int = 500) -> None:
        """Publish ``(body, routing_key)`` pairs with up to ``window`` confirms outstanding."""
        pending: list[asyncio.Task[Any]] = []
        for body, rk in items:
            pending.append(asyncio.ensure_future(self.publish(body, rk)))
            if len(pending) >= window:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)


async def wait_for(predicate: Callable[[], bool], within: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` until true; fail the test naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


async def queue_depth(queue: str) -> int:
    """Ready messages in ``queue`` (passive declare; unacknowledged ones are not counted)."""
    conn = await aio_pika.connect(AMQP_URL, timeout=5)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(queue, passive=True)
        return int(q.declaration_result.message_count or 0)


class Worker:
    """A real bus process (``tests.integration.amqp.worker``) consuming the test's queue."""

    def __init__(self, proc: asyncio.subprocess.Process, out: Path) -> None:
        self.proc = proc
        self.out = out

    @classmethod
    async def start(cls, store_url: str, out: Path, options: dict[str, Any], within: float = 30) -> Worker:
        """Start a worker and wait until its transport is CONNECTED.

        Raises:
            AssertionError: it exited or did not get ready within ``within`` seconds.
        """
        repo = Path(__file__).resolve().parents[3]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.amqp.worker",
            "--store",
            store_url,
            "--out",
            str(out),
            "--options",
            json.dumps(options),
            cwd=repo,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), within)
        except TimeoutError:
            proc.kill()
            raise AssertionError("worker did not get ready") from None
        if line.strip() != b"READY":
            err = (await proc.stderr.read()).decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"worker failed to start: {line!r} {err[-3000:]}")
        return cls(proc, out)

    async def kill9(self) -> None:
        """``kill -9``: no cleanup, no acks, no flush."""
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, within: float = 30) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), within)


def handled_lines(path: Path) -> list[tuple[str, str]]:
    """``(handler, event id)`` per complete line of a worker's output file."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # the last item is '' or a line still being written
    return [(h, e) for h, _, e in (line.partition(" ") for line in lines)]


def expected_event_ids(handle: str, count: int) -> set[str]:
    """Event ids of envelopes ``0..count-1`` (``envelope_bytes``), as the CFX decoder derives them."""
    from pywats_cfx.decoder import decode_cfx
    from pywats_events.codec import DecodeContext

    return {e.id for i in range(count) for e in decode_cfx(envelope_bytes(i, source=handle), DecodeContext())}
