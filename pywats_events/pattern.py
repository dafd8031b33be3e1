"""Event-type patterns: ``*`` for everything, ``asset.*``, ``CFX.Production.*``, ``test.result``.

``*`` matches any run of characters, dots included (so ``CFX.Production.*`` matches
``CFX.Production.TestAndInspection.UnitsTested``); ``?`` matches one character. Matching is
case-sensitive, as event types are.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

__all__ = ["compile_type_pattern", "pattern_to_sql_like", "validate_type_pattern"]


def validate_type_pattern(pattern: str) -> str:
    """Return ``pattern`` if usable.

    Raises:
        ValueError: empty, or contains whitespace.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("event type pattern must be a non-empty string")
    if any(c.isspace() for c in pattern):
        raise ValueError(f"event type pattern {pattern!r} contains whitespace")
    return pattern


@lru_cache(maxsize=1024)
def compile_type_pattern(pattern: str) -> Callable[[str], bool]:
    """Return a predicate ``f(event_type) -> bool`` for ``pattern``.

    Raises:
        ValueError: the pattern is invalid (see ``validate_type_pattern``).
    """
    validate_type_pattern(pattern)
    if pattern == "*":
        return lambda _t: True
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    if pattern.endswith("*") and "*" not in pattern[:-1] and "?" not in pattern:
        return _startswith(pattern[:-1])
    regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")
    return lambda t: regex.match(t) is not None


def _startswith(prefix: str) -> Callable[[str], bool]:
    return lambda t: t.startswith(prefix)


def pattern_to_sql_like(pattern: str) -> str:
    r"""Translate a type pattern to a SQL ``LIKE`` pattern using ``\`` as the escape character."""
    validate_type_pattern(pattern)
    out = []
    for c in pattern:
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_\\":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)
