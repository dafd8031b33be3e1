"""A resolver as a user would write one (``resolver = "tests.unit.wats.resolver:product"``)."""

from __future__ import annotations

from pywats_events.event import Event


def product(event: Event) -> dict[str, str]:
    """Part number from the recipe, the way a plant might look it up in its MES."""
    return {"part_number": f"PN-RESOLVED-{event.payload.get('recipe')}", "revision": "Z"}
