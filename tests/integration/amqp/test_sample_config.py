"""The sample configuration (samples/amqp/pywats-events.toml) builds a working bus on the real broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats_cfx.transport import CFXTransport
from pywats_events.config import build_bus, load_settings
from pywats_events.store import EventQuery
from tests.integration.amqp.broker import AmqpNames, Publisher, envelope_bytes, wait_for
from tests.services import AMQP_URL

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "amqp" / "pywats-events.toml"


async def test_sample_config_consumes_cfx_into_the_event_store(
    amqp: AmqpNames, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFX_AMQP_PASSWORD", "unused: the test URL carries its own")
    settings = load_settings(SAMPLE, db="memory://")
    cfg = settings.transports[0]
    assert cfg.kind == "cfx"
    # Same file, pointed at this test's own exchange and queue on the test broker.
    for key, value in amqp.transport_options().items():
        setattr(cfg, key, value)
    cfg.password_env = None  # type: ignore[attr-defined]
    bus = build_bus(settings)
    transport = bus.transports["cfx"]
    assert isinstance(transport, CFXTransport)
    assert transport.settings.url.get_secret_value() == AMQP_URL
    async with bus:
        await publisher.publish(envelope_bytes(5, source=amqp.handle), f"{amqp.handle}.CFX.Production.X")
        await wait_for(lambda: transport.stats["settled"] == 1, 20, "the message to settle")
        stored = await bus.store.query_events(EventQuery(type_pattern="test.*"))
    assert [e.event.source for e in stored] == [amqp.handle]
