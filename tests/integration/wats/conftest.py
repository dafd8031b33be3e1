"""Fixtures of the WATS integration tests: a strict fake WATS on a real port, a bus on a SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pywats_events.breaker import BreakerPolicy
from pywats_events.bus import EventBus
from pywats_events.retry import RetryPolicy
from pywats_events.sql_store import open_store
from pywats_wats.testing import FakeWats
from tests.integration.amqp.conftest import amqp, publisher

__all__ = ["amqp", "publisher"]

TOKEN = "line3-token"


@pytest.fixture
def fake() -> FakeWats:
    """A strict fake WATS accepting ``TOKEN`` (not serving yet)."""
    return FakeWats(TOKEN, strict=True)


@pytest.fixture
def wats_url(fake: FakeWats) -> Iterator[str]:
    """The fake serving on a free port of 127.0.0.1."""
    with fake.serve() as url:
        yield url


def wats_options(url: str, **extra: Any) -> dict[str, Any]:
    """``wats-report`` options as a configuration file would give them, quick to retry and probe."""
    return {
        "base_url": url,
        "token": TOKEN,
        "part_number": "PCBA-1000",
        "revision": "A",
        "process_code": 10,
        "location": "Line 3",
        "purpose": "Production",
        "retry_attempts": 2,
        "retry_delay": 0.05,
        "probe_interval": 0.5,
        "timeout": 5,
        **extra,
    }


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EventBus]:
    """A bus on a SQLite file store (the handlers set their own retry and breaker policies)."""
    b = EventBus(
        open_store(f"sqlite:///{tmp_path / 'events.db'}"),
        retry=RetryPolicy(max_attempts=1),
        breaker=BreakerPolicy(),
        emit_system_events=False,
    )
    yield b
    await b.stop()
