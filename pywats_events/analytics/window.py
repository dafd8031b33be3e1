"""Report windows: an explicit range, the current shift or the current day, resolved to whole buckets.

Every figure is accumulated per time bucket (``bucket_s`` seconds, default 60), so a window is taken at
that resolution: ``since`` is rounded down and ``until`` up to a bucket edge, and the report states the
bounds it used. Shifts start at configured UTC hours (default 06, 14, 22: three 8-hour shifts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import AnalyticsWindowError
from .states import epoch_us, from_epoch_us

__all__ = ["DEFAULT_SHIFT_STARTS", "Window", "parse_time", "resolve_window"]

DEFAULT_SHIFT_STARTS: tuple[int, ...] = (6, 14, 22)


@dataclass(frozen=True, slots=True)
class Window:
    """A resolved window: bucket indexes ``lo..hi-1`` (``lo`` ``None``: from the first data) and the same
    bounds in µs since the epoch; ``now_us`` ends intervals that are still open."""

    lo: int | None
    hi: int
    since_us: int | None
    until_us: int
    now_us: int

    def to_json_dict(self) -> dict[str, str | None]:
        """``since`` (``None``: from the first data), ``until``, ``now`` in ISO 8601."""
        return {
            "since": from_epoch_us(self.since_us).isoformat() if self.since_us is not None else None,
            "until": from_epoch_us(self.until_us).isoformat(),
            "now": from_epoch_us(self.now_us).isoformat(),
        }


def parse_time(text: str, *, where: str) -> datetime:
    """Parse an ISO 8601 time (``2026-03-01T06:00:00Z``; naive means UTC) or a relative ``-8h`` / ``-30m``
    / ``-2d`` (before now).

    Raises:
        AnalyticsWindowError: the text is neither; the message names ``where`` (``--since``).
    """
    t = text.strip()
    if t.startswith("-") and t[-1:] in ("s", "m", "h", "d") and t[1:-1].replace(".", "", 1).isdigit():
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[t[-1]]
        return datetime.now(UTC) - timedelta(seconds=float(t[1:-1]) * unit)
    try:
        stamp = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise AnalyticsWindowError(f"{where}: {text!r} is not an ISO 8601 time or -<n>[smhd]") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def resolve_window(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    window: str | None = None,
    now: datetime | None = None,
    bucket_s: int = 60,
    shift_starts: Sequence[int] = DEFAULT_SHIFT_STARTS,
) -> Window:
    """Resolve report bounds to buckets.

    Args:
        since / until: explicit bounds (aware datetimes); ``until`` defaults to ``now``.
        window: ``shift`` or ``day``: the shift / UTC day holding the instant before ``until`` (overrides
            ``since``; ``until`` stays the end, so ``--window day`` at 15:00 is today 00:00..15:00).
        now: the clock (default the current time); open intervals end there.
        bucket_s: bucket width in seconds.
        shift_starts: shift start hours, UTC, 0..23.

    Raises:
        AnalyticsWindowError: unknown ``window`` name, or ``until`` not after ``since``.
    """
    now = now or datetime.now(UTC)
    end = until or now
    if window is not None:
        # ``until`` is exclusive: the window is the one holding the instant just before it.
        ref = end - timedelta(microseconds=1)
        day = ref.replace(hour=0, minute=0, second=0, microsecond=0)
        if window == "day":
            since = day
        elif window == "shift":
            starts = sorted({h % 24 for h in shift_starts}) or [0]
            cands = [day + timedelta(hours=h) for h in starts] + [day - timedelta(days=1) + timedelta(hours=starts[-1])]
            since = max(c for c in cands if c <= ref)
        else:
            raise AnalyticsWindowError(f"--window: {window!r} is not 'shift' or 'day'")
    w = bucket_s * 1_000_000
    hi = -(-epoch_us(end) // w)
    lo = None if since is None else epoch_us(since) // w
    if lo is not None and lo >= hi:
        raise AnalyticsWindowError(f"until ({end.isoformat()}) must be after since ({since})")
    return Window(lo, hi, None if lo is None else lo * w, hi * w, epoch_us(now))
