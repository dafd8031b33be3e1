"""The pytest plugin for testing your handlers: fixtures ``event_bus`` and ``mock_transport``, and async
tests that run without any ``asyncio_mode`` setting.

Installed with the package and found by pytest through the ``pytest11`` entry point, so nothing needs to
be configured::

    async def test_pager_pages_on_critical_faults(event_bus, mock_transport):
        event_bus.register(FaultPager())
        async with event_bus:
            result = await mock_transport.inject(Event(type="asset.fault", source="SMT.Line3.SN1"))
            assert result.handled == 1

An ``async def`` test that takes ``event_bus`` or ``mock_transport``, or is marked ``@pytest.mark.pywats``,
runs on a fresh asyncio event loop of its own (``asyncio.run``), whether or not pytest-asyncio is
installed and in whichever mode. Tests that pytest-asyncio already runs (``@pytest.mark.asyncio``, or every
async test in its ``auto`` mode) are left to it; other async tests are not touched.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

from .bus import EventBus
from .transports.mock import MockTransport

__all__ = ["event_bus", "mock_transport"]

#: Fixtures whose use makes an ``async def`` test run on this plugin's loop.
_OUR_FIXTURES = frozenset({"event_bus", "mock_transport"})


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``pywats`` marker (``--strict-markers`` accepts it)."""
    config.addinivalue_line("markers", "pywats: run this async test on its own asyncio event loop (pywats-events)")


@pytest.fixture
def event_bus() -> EventBus:
    """A new ``EventBus`` on the in-memory store, not started: register handlers, then
    ``async with event_bus:`` inside the test."""
    return EventBus()


@pytest.fixture
def mock_transport(event_bus: EventBus) -> MockTransport:
    """A ``MockTransport`` already added to ``event_bus`` (``inject``, ``inject_raw``, ``sent``)."""
    mock = MockTransport()
    event_bus.add_transport(mock)
    return mock


def _ours(item: pytest.Function) -> bool:
    if not inspect.iscoroutinefunction(item.obj):
        return False
    if item.get_closest_marker("asyncio") is not None:
        return False  # pytest-asyncio runs it (explicit marker, or its auto mode marked it)
    return item.get_closest_marker("pywats") is not None or bool(_OUR_FIXTURES & set(item.fixturenames))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the async tests this plugin owns (see the module docstring); ``None`` leaves others to pytest."""
    if not _ours(pyfuncitem):
        return None
    names = pyfuncitem._fixtureinfo.argnames  # the test's own parameters, as pytest's default call uses
    kwargs: dict[str, Any] = {name: pyfuncitem.funcargs[name] for name in names}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True
