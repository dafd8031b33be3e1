"""Overall equipment effectiveness, SEMI E79 style, for stations with a configured ideal cycle time.

SEMI E79 (*Specification for Definition and Measurement of Equipment Productivity*) writes OEE as
availability efficiency × performance efficiency × quality efficiency, on the SEMI E10 times; the usual
shop-floor form is OEE = availability × performance × quality. Here, over a window:

- availability = equipment uptime / operations time (E10: ``PRD+SBY+ENG`` over total − ``NST``, so
  unworked shifts do not count against the station);
- performance = ideal cycle time × cycles completed / equipment uptime (E79's operational × rate
  efficiency: standby and slow cycles both lower it); capped at 1.0 would hide a wrong ideal cycle time,
  so it is not capped;
- quality = first-pass yield at the station when it tests units, else good ``WorkCompleted`` results /
  completions;
- OEE = their product = ideal cycle time × good output / operations time.

A factor that cannot be computed (no operations time, no uptime, no cycles) is ``None`` and so is OEE.
"""

from __future__ import annotations

__all__ = ["oee"]


def oee(
    operations_s: float,
    uptime_s: float,
    ideal_cycle_s: float,
    cycles: int,
    quality: float | None,
) -> dict[str, float | None]:
    """OEE and its factors (see the module docstring).

    Args:
        operations_s: E10 operations time in the window, seconds.
        uptime_s: E10 equipment uptime in the window, seconds.
        ideal_cycle_s: the configured ideal cycle time, seconds (> 0).
        cycles: cycles completed in the window (count).
        quality: the quality factor in 0..1, ``None`` when unknown.

    Returns:
        ``{"availability", "performance", "quality", "oee", "ideal_cycle_s"}``; unknowns are ``None``.

    Raises:
        ValueError: ``ideal_cycle_s`` is not positive.
    """
    if ideal_cycle_s <= 0:
        raise ValueError(f"ideal cycle time must be positive seconds, got {ideal_cycle_s}")
    availability = uptime_s / operations_s if operations_s > 0 else None
    performance = ideal_cycle_s * cycles / uptime_s if uptime_s > 0 and cycles else None
    value = (
        availability * performance * quality
        if availability is not None and performance is not None and quality is not None
        else None
    )
    return {
        "availability": availability,
        "performance": performance,
        "quality": quality,
        "oee": value,
        "ideal_cycle_s": ideal_cycle_s,
    }
