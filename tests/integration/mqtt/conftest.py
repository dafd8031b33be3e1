"""Fixtures for the MQTT integration tests (real Mosquitto; see ``broker.py``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pywats_events import TransportState
from pywats_mqtt import MQTTTransport
from tests.integration.mqtt.broker import SHARED_PORT, Client, PrivateBroker
from tests.services import MOSQUITTO, require_service


class Run:
    """Names unique to one test (topics, client ids) and cleanup of what it leaves on the broker."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.id = uuid.uuid4().hex[:10]
        self.prefix = f"pywats-test/{self.id}"
        self.retained: set[str] = set()
        self.sessions: set[str] = set()
        self.clients: list[Client] = []

    def transport(self, name: str = "mqtt", **options: Any) -> MQTTTransport:
        """An MQTTTransport on this run's broker with a unique client id and status topic under the prefix."""
        defaults: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "client_id": f"pywats-test-{self.id}-{name}",
            "session_expiry": 60,  # the broker forgets the session soon after the test
            "status_topic": f"{self.prefix}-status/{{client_id}}",
            "reconnect_initial": 0.1,
            "reconnect_max": 1.0,
            "connect_timeout": 5.0,
        }
        t = MQTTTransport(name, **(defaults | options))
        self.sessions.add(t.client_id)
        if t.status_topic:
            self.retained.add(t.status_topic)
        return t

    def client(self, **kwargs: Any) -> Client:
        c = Client(self.port, **kwargs)
        self.clients.append(c)
        return c

    def cleanup(self) -> None:
        for c in self.clients:
            c.close()
        if self.retained:
            c = Client(self.port)
            for topic in self.retained:
                c.publish(topic, b"", retain=True)  # an empty retained message deletes the retained one
            c.close()
        for client_id in self.sessions:
            # Connecting with clean_session=1 discards the persistent session (MQTT 3.1.1 has no expiry).
            Client(self.port, client_id=client_id, protocol="3.1.1").close()


@pytest.fixture
def run() -> Iterator[Run]:
    """Unique names on the shared Mosquitto (skips, or fails with PYWATS_REQUIRE_SERVICES=1, when down)."""
    require_service("Mosquitto", MOSQUITTO)
    r = Run(SHARED_PORT)
    try:
        yield r
    finally:
        r.cleanup()


@pytest.fixture
def private_broker() -> Iterator[PrivateBroker]:
    """A private Mosquitto (random port, persistence on) that the test may stop and start."""
    broker = PrivateBroker()
    try:
        broker.start()
        yield broker
    finally:
        broker.close()


@pytest.fixture
def private_run(private_broker: PrivateBroker) -> Iterator[Run]:
    """Unique names on the private broker."""
    r = Run(private_broker.port)
    try:
        yield r
    finally:
        if private_broker.proc is not None:
            r.cleanup()


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true (checked every 10 ms); fail the test after ``timeout`` seconds.

    For conditions on counters the code under test exposes no event for (PUBACKs sent, broker state).
    """
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (no event to await for these counters)
            await asyncio.sleep(0.01)
    assert predicate(), what


async def wait_state(t: MQTTTransport, state: TransportState, timeout: float = 15.0) -> None:
    """Wait until the transport reaches ``state``."""
    await wait_for(lambda: t.state is state, timeout, f"transport {t.name} never became {state.value}")
