"""Shared pieces of the WATS unit tests: the CFX samples as events, a report settings factory."""

from __future__ import annotations

from typing import Any

from pywats_cfx.decoder import decode_cfx
from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from pywats_wats.settings import ReportSettings
from tests.cfx_samples import VALID

RESULT_TYPES = ("test.result", "inspection.result")


def sample_events(*types: str) -> list[tuple[str, Event]]:
    """``(file name, event)`` for every event of the given types that the bundled CFX samples yield."""
    out = []
    for path in VALID:
        for event in decode_cfx(path.read_bytes(), DecodeContext(origin=str(path))):
            if event.type in types:
                out.append((path.name, event))
    return out


def report_settings(**extra: Any) -> ReportSettings:
    """The README's example configuration, with overrides."""
    options: dict[str, Any] = {
        "base_url": "http://wats.test",
        "token": "t0k3n",
        "part_number": "PCBA-1000",
        "revision": "A",
        "process_code": 10,
        "location": "Line 3",
        "purpose": "Production",
        **extra,
    }
    return ReportSettings(**options)
