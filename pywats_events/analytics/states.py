"""SEMI E10 equipment states and time categories, and how a state change is read from an event.

SEMI E10 (*Specification for Definition and Measurement of Equipment Reliability, Availability, and
Maintainability*) divides total time into six basic states, each a category of the IPC-CFX
``ResourceState`` code (its first digit): productive ``PRD`` (1xxx), standby ``SBY`` (2xxx), engineering
``ENG`` (3xxx), scheduled downtime ``SDT`` (4xxx), unscheduled downtime ``USD`` (5xxx) and non-scheduled
time ``NST`` (6xxx). From those it builds the time categories used here:

- total time = all six; non-scheduled time = ``NST``; operations time = total time − ``NST``;
- equipment uptime = ``PRD`` + ``SBY`` + ``ENG``; equipment downtime = ``SDT`` + ``USD``;
- manufacturing time = ``PRD`` + ``SBY``.

Lab modules report Ready / Busy / Error / Offline; ``pywats_events.lab`` maps them to ``SBY``, ``PRD``,
``USD`` and ``NST`` (its ``STATUS_CATEGORY``), so one vocabulary serves the line and the lab.

A state change is read from an ``asset.state_changed`` event exactly as the status board reads it
(``pywats_events.status_board.StatusBoard``): the asset is ``payload.asset_id`` or else the event
source, the category ``payload.new_category``, the state ``payload.new_state`` / ``new_state_name``. When
the category is missing, an E10 code in ``new_state`` (1000..6999) gives it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ..event import Event
from .errors import AnalyticsInputError

__all__ = [
    "CATEGORIES",
    "DOWNTIME",
    "EPOCH",
    "MANUFACTURING",
    "UPTIME",
    "StateChange",
    "epoch_us",
    "from_epoch_us",
    "state_change_of",
]

#: The six SEMI E10 basic states, in the standard's order; index positions are used in hot loops.
CATEGORIES: tuple[str, ...] = ("PRD", "SBY", "ENG", "SDT", "USD", "NST")
CATEGORY_INDEX: dict[str, int] = {c: i for i, c in enumerate(CATEGORIES)}

#: SEMI E10 equipment uptime, downtime and manufacturing time, as category sets.
UPTIME = frozenset({"PRD", "SBY", "ENG"})
DOWNTIME = frozenset({"SDT", "USD"})
MANUFACTURING = frozenset({"PRD", "SBY"})

#: The Unix epoch, aware UTC: ``(stamp - EPOCH)`` gives the timedelta ``epoch_us`` reads.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(stamp: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (integer arithmetic, so sums of
    durations compare equal to a brute-force computation). From the difference's days, seconds and
    microseconds: half the cost of ``(stamp - epoch) // timedelta(microseconds=1)``, which converts the
    divisor and divides big integers."""
    d = stamp - EPOCH
    return d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds


def from_epoch_us(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


class StateChange(NamedTuple):
    """One state change of a station or lab module (a named tuple: it is built once per event).

    Attributes:
        asset: the asset id (the CFX handle / module identifier).
        at_us: when it happened, microseconds since the epoch (the event timestamp).
        event_id: the event's id (duplicates are recognized by it).
        category: the SEMI E10 category (``PRD``...``NST``).
        code: the state code (E10 code for CFX, 0..3 for lab modules), ``None`` when absent.
        name: the state name (``SBY_NoProduct``, ``Busy``), '' when absent.
    """

    asset: str
    at_us: int
    event_id: str
    category: str
    code: int | None
    name: str


def state_parts(event: Event) -> tuple[str, int, str, int, int | None, str]:
    """What ``state_change_of`` reads, as ``(asset, at_us, event_id, category index in CATEGORIES, code,
    name)`` (the engine's path: no ``StateChange`` built).

    Raises:
        AnalyticsInputError: as for ``state_change_of``.
    """
    # The model keeps its field values in the instance dict (pydantic's documented layout, which
    # ``Event.trusted`` builds too): one attribute lookup through pydantic's ``__getattr__`` hook
    # instead of four.
    f = event.__dict__
    p = f["payload"]
    code = p.get("new_state")
    if type(code) is not int:  # bool and text are not state codes
        code = None
    category = p.get("new_category")
    cat = CATEGORY_INDEX.get(category) if type(category) is str else None
    if cat is None:
        if category is None and code is not None and 1000 <= code <= 6999:
            cat = code // 1000 - 1
        else:
            raise AnalyticsInputError(
                event.id,
                event.type,
                "new_category",
                f"{category!r} is not a SEMI E10 category ({', '.join(CATEGORIES)}) and new_state "
                f"{p.get('new_state')!r} is not an E10 code 1000..6999",
            )
    asset = p.get("asset_id") or f["source"]
    name = p.get("new_state_name") or (code if code is not None else "")
    d = f["timestamp"] - EPOCH  # epoch_us, inline: this runs once per state change
    return (
        asset if type(asset) is str else str(asset),
        d.days * 86_400_000_000 + d.seconds * 1_000_000 + d.microseconds,
        f["id"],
        cat,
        code,
        name if type(name) is str else str(name),
    )


def state_change_of(event: Event) -> StateChange:
    """Read the state change an ``asset.state_changed`` event reports (see the module docstring).

    Raises:
        AnalyticsInputError: neither ``new_category`` nor an E10 code in ``new_state`` gives a SEMI E10
            category.
    """
    asset, at_us, event_id, cat, code, name = state_parts(event)
    return StateChange(asset, at_us, event_id, CATEGORIES[cat], code, name)
