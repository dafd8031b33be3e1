"""``EventBus.add_observer``: an observer sees each accepted message's events once, in arrival order,
redelivered copies included, without a delivery of its own; one that raises is logged and the handlers
still get the events; ``remove_observer`` stops it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from pywats_events import Event, EventBus, MockTransport


def ev(i: int) -> Event:
    return Event(id=f"e{i}", type="unit.tested", source="s", payload={"i": i})


async def test_observer_sees_every_message_once_in_order_and_no_delivery_of_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus(emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    seen: list[list[str]] = []
    handled: list[str] = []

    def observer(events: Sequence[Event]) -> None:
        seen.append([e.id for e in events])

    def broken(events: Sequence[Event]) -> None:
        raise RuntimeError("observer bug")

    @bus.subscribe("unit.*")
    async def handler(event: Event) -> None:
        handled.append(event.id)

    bus.add_observer(broken)
    bus.add_observer(observer)
    async with bus:
        r1 = await mock.inject(ev(1), ev(2))
        r2 = await mock.inject(ev(3))
        await mock.inject(ev(3))  # a copy: observed again (the observer dedups if it must)
        bus.remove_observer(observer)
        await mock.inject(ev(4))
    assert seen == [["e1", "e2"], ["e3"], ["e3"]]
    assert r1.handled == 2 and r2.handled == 1  # the observer is no delivery
    assert handled[:3] == ["e1", "e2", "e3"] and "e4" in handled  # the broken observer stopped nothing
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "observer" in r.getMessage()]
    assert len(errors) == 4 and errors[0].exc_info is not None
    with pytest.raises(ValueError):
        bus.remove_observer(observer)
