"""Every SDK example in samples/cfx through MockTransport → bus → the event store in SQLite, counted
independently of the adapters; every invalid SDK text dead-lettered with its reason; the bus keeps running.

``expected_events`` is also used by the command-line tests (``test_cli.py``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pywats_events import Event, EventBus, RetryPolicy
from pywats_events.sql_store import open_store
from pywats_events.store import DeadLetterReason, EventQuery
from pywats_events.transports.mock import MockTransport
from tests.cfx_samples import INVALID, MAPPED_TYPES, VALID, expected_event_count

#: Events the bus publishes itself (transport state, dead-letter notices); not from the samples.
BUS_OWN_TYPES = ("system.transport_", "system.dead_letter")


def field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` with the name compared case-insensitively (CFX field names are), else ``None``."""
    low = name.lower()
    return next((v for k, v in obj.items() if k.lower() == low), None)


def expected_for_file(path: Path) -> Counter[str]:
    """Events per type that one sample file must give, read straight from its JSON."""
    data = json.loads(path.read_bytes().decode("utf-8-sig"))
    out: Counter[str] = Counter()
    for envelope in data if isinstance(data, list) else [data]:
        name = field(envelope, "MessageName")
        body = field(envelope, "MessageBody") or {}
        n = expected_event_count(name, body)
        if n:
            out[MAPPED_TYPES.get(name, name)] += n
    return out


def expected_events(paths: Iterable[Path] = VALID) -> Counter[str]:
    """Events per type the valid samples must give in total."""
    total: Counter[str] = Counter()
    for p in paths:
        total.update(expected_for_file(p))
    return total


def test_sample_folder_is_what_the_counts_assume() -> None:
    assert len(VALID) == 212 and len(INVALID) == 10
    counts = expected_events()
    assert counts["test.result"] == 3 and counts["inspection.result"] == 8
    assert sum(counts.values()) > len(VALID)  # multi-unit messages really are counted per unit


async def test_every_sdk_example_end_to_end_counted_and_invalid_ones_dead_lettered(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "events.db"))
    bus = EventBus(store, retry=RetryPolicy(max_attempts=1))
    bus.add_event_store()
    mock = MockTransport(decoder="cfx")
    bus.add_transport(mock)
    expected = expected_events()
    async with bus:
        for path in VALID:
            result = await mock.inject_raw(path.read_bytes(), origin=str(path))
            want = sum(expected_for_file(path).values())
            assert (result.events, result.handled, result.dead_lettered) == (want, want, 0), path.name

        for path in INVALID:
            result = await mock.inject_raw(path.read_bytes(), origin=str(path))
            assert (result.events, result.dead_lettered) == (0, 1), path.name

        stored = await store.query_events(EventQuery(limit=100_000))
        by_type = Counter(s.event.type for s in stored if not s.event.type.startswith(BUS_OWN_TYPES))
        assert by_type == expected
        ids = [s.event.id for s in stored]
        assert len(ids) == len(set(ids))

        entries = await store.list_dead_letters(limit=1000)
        assert len(entries) == len(INVALID)
        by_origin = {e.origin: e for e in entries}
        assert set(by_origin) == {str(p) for p in INVALID}
        for path in INVALID:
            entry = by_origin[str(path)]
            assert entry.reason == DeadLetterReason.DECODE_ERROR
            assert entry.raw_body == path.read_bytes()
            assert entry.event is None and entry.handler is None
            # the reason names the problem and where it is in the text
            assert "invalid JSON" in entry.error_message, entry.error_message
            assert "line" in entry.error_message and "column" in entry.error_message, entry.error_message
            assert entry.error_type

        # the bus keeps running after all the bad input
        assert bus.running
        after = await mock.inject(Event(type="test.result", source="ict-9", payload={"result": "pass"}))
        assert after.handled == 1
        assert await store.count_events(EventQuery(type_pattern="test.*")) == expected["test.result"] + 1
