"""Abbreviated ids, as git accepts abbreviated commit hashes: a full id or a unique prefix of one.

The command line shows ids shortened to fit a terminal line and takes them back in any command that names
events or dead-letter entries; a prefix that matches nothing or more than one id is refused with the
candidates named, so a mistyped id never acts on the wrong entry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from .errors import AmbiguousIdError, UnknownIdError

__all__ = ["MIN_PREFIX", "SHORT_ID", "resolve_ids", "short_ids"]

#: Shortest prefix accepted when it is not itself a full id (characters); git's minimum too.
MIN_PREFIX = 4
#: Length ids are shortened to in listings (characters), more where the page needs it to stay unique.
SHORT_ID = 8
#: Candidates named in an ambiguity error.
_SHOWN = 5

Lookup = Callable[[str, int], Awaitable[list[str]]]


async def resolve_ids(given: Sequence[str], lookup: Lookup, what: str) -> list[str]:
    """Full ids for ``given`` (full ids or prefixes), in the given order, duplicates dropped.

    Args:
        given: ids or id prefixes as typed.
        lookup: ``(prefix, limit) -> ids`` starting with the prefix, ascending
            (``Store.event_ids_with_prefix`` / ``Store.dead_letter_ids_with_prefix``).
        what: the kind of thing in messages (``event``, ``dead-letter entry``).

    Raises:
        UnknownIdError: an id matches nothing, or a prefix is shorter than ``MIN_PREFIX`` and no full id.
        AmbiguousIdError: a prefix matches several ids (the message names up to five).
    """
    resolved: list[str] = []
    for text in given:
        prefix = text.strip()
        found = await lookup(prefix, _SHOWN + 1) if prefix else []
        # Ascending order puts an exact match first: no longer id with that prefix sorts before it.
        if found and found[0] == prefix:
            full = prefix
        elif not found:
            raise UnknownIdError(f"no {what} with id or id prefix {text!r}")
        elif len(prefix) < MIN_PREFIX:
            raise UnknownIdError(f"id prefix {text!r} is too short: give at least {MIN_PREFIX} characters")
        elif len(found) > 1:
            names = ", ".join(found[:_SHOWN]) + (", ..." if len(found) > _SHOWN else "")
            raise AmbiguousIdError(f"id prefix {text!r} matches more than one {what}: {names}")
        else:
            full = found[0]
        if full not in resolved:
            resolved.append(full)
    return resolved


def short_ids(ids: Sequence[str], length: int = SHORT_ID) -> int:
    """The shortest length >= ``length`` at which ``ids`` are all distinct (characters; the longest id's
    length when no prefix length separates them)."""
    longest = max((len(i) for i in ids), default=length)
    n = length
    while n < longest and len({i[:n] for i in ids}) < len(ids):
        n += 1
    return n
