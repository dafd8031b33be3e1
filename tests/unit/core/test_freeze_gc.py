"""``EventBus(freeze_gc=True)``: objects alive at start move to the permanent generation and the youngest
generation's threshold goes up to ``GC_GEN0_THRESHOLD`` (never down); without it nothing changes."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pywats_events import EventBus
from pywats_events.bus import GC_GEN0_THRESHOLD


@pytest.fixture
def gc_state() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


async def test_freeze_gc_raises_the_youngest_threshold_and_keeps_the_others(gc_state: None) -> None:
    gc.set_threshold(700, 11, 12)
    async with EventBus(freeze_gc=True):
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, 11, 12)
        assert gc.get_freeze_count() > 0


async def test_freeze_gc_never_lowers_a_higher_threshold(gc_state: None) -> None:
    gc.set_threshold(GC_GEN0_THRESHOLD * 5, 10, 10)
    async with EventBus(freeze_gc=True):
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD * 5


async def test_without_freeze_gc_the_collector_is_left_alone(gc_state: None) -> None:
    gc.set_threshold(700, 10, 10)
    async with EventBus():
        assert gc.get_threshold() == (700, 10, 10)
