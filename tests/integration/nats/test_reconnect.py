"""Reconnection: a private ``nats-server -js`` is killed with SIGKILL mid-stream and started again on the same
port and store folder. The transport reports RECONNECTING then CONNECTED (state and ``system.transport_*``
events), keeps its durable consumer, and every message is handled exactly once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from pywats_events import Event, EventBus, TransportState
from tests.integration.nats.conftest import PrivateServer, Run, consumer_settled, wait_for, wait_state

pytestmark = [pytest.mark.services, pytest.mark.slow]

N = 300


async def test_server_killed_and_restarted_mid_stream_loses_nothing_and_handles_each_once(
    private_server: PrivateServer,
) -> None:
    run = Run(private_server.url)
    t = run.transport(max_inflight=32, fetch_batch=16, ack_wait=5, reconnect_initial=0.2)
    bus = EventBus()
    handled: list[int] = []
    states: list[str] = []

    @bus.subscribe("test.result")
    async def handle(event: Event) -> None:
        handled.append(event.payload["seq"])
        await asyncio.sleep(0.01)  # slow enough that the kill lands while messages are in flight

    @bus.subscribe("system.transport_*")
    async def watch(event: Event) -> None:
        states.append(event.payload["new_state"])

    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.CONNECTED
        await run.publish([(f"results.ict-{i % 4}", json.dumps({"seq": i}).encode()) for i in range(N)])
        await wait_for(lambda: len(handled) >= 40, what="some messages handled before the kill")
        assert len(handled) < N, "the stream was drained before the server could be killed"

        private_server.kill()
        await wait_state(t, TransportState.RECONNECTING)
        at_kill = len(handled)
        await asyncio.sleep(1.0)  # a moment without a server: fetches fail, nothing must be lost
        private_server.start()
        await wait_state(t, TransportState.CONNECTED, timeout=30)

        await run.publish([(f"results.ict-{i % 4}", json.dumps({"seq": i}).encode()) for i in range(N, 2 * N)])
        await wait_for(lambda: set(handled) == set(range(2 * N)), timeout=60, what="every message handled")
        # Acks sent just before the kill died with the server: it redelivers those after AckWait (5 s), and
        # the transport acknowledges the copies without running the handler again (same event id).
        info = await consumer_settled(run)
    counts = Counter(handled)
    assert set(counts) == set(range(2 * N))
    assert max(counts.values()) == 1  # redelivered copies (acks lost with the server) were skipped by id
    assert at_kill < 2 * N
    assert info.num_ack_pending == 0 and info.num_pending == 0
    # system.transport_* events as the bus emitted them: connected, away (reconnecting), connected again
    assert states[0] == "connected" and "reconnecting" in states and states[-1] == "connected"
    assert states.index("reconnecting") < len(states) - 1
