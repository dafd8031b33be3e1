"""The shipped pytest plugin as a user meets it: the README's MockTransport test in a project of its own,
with no ``asyncio_mode`` setting, run by pytest in a subprocess (issue 9, defect 14)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TEST = textwrap.dedent(
    """
    import pytest

    from pywats_events import BaseHandler, Event, MockTransport, EventBus

    PAGED = []


    class FaultPager(BaseHandler):
        name = "fault-pager"
        event_types = ("asset.fault",)

        async def handle(self, event: Event) -> None:
            PAGED.append(event.id)


    async def test_pager_pages_on_critical_faults(event_bus, mock_transport):
        event_bus.register(FaultPager())
        async with event_bus:
            result = await mock_transport.inject(
                Event(type="asset.fault", source="SMT.Line3.SN1", severity="critical")
            )
            assert result.handled == 1
            await mock_transport.inject_raw(b"not json")
            assert await event_bus.dead_letters.count() == 1
        assert len(PAGED) == 1


    @pytest.mark.pywats
    async def test_marked_test_without_fixtures_runs_too():
        bus, mock = EventBus(), MockTransport()
        bus.add_transport(mock)
        bus.register(FaultPager())
        async with bus:
            assert (await mock.inject(Event(type="asset.fault", source="x"))).handled == 1


    async def test_a_failing_assertion_really_fails(event_bus, mock_transport):
        async with event_bus:
            result = await mock_transport.inject(Event(type="asset.fault", source="x"))
            assert result.handled == 99, "this one must fail: proves the body ran"
    """
)


@pytest.mark.parametrize("asyncio_plugin", ["installed", "disabled"])
def test_readme_mock_transport_test_runs_without_asyncio_mode(tmp_path: Path, asyncio_plugin: str) -> None:
    (tmp_path / "test_user_handlers.py").write_text(USER_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # a user's project: none of our settings apply
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_handlers.py"]
    if asyncio_plugin == "disabled":
        args[3:3] = ["-p", "no:asyncio"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    summary = proc.stdout.strip().splitlines()[-1]
    assert re.search(r"\b1 failed, 2 passed\b", summary), proc.stdout + proc.stderr
    assert "this one must fail" in proc.stdout
    assert "skipped" not in summary and "not natively supported" not in proc.stdout
