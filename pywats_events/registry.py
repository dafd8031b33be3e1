"""Which handlers receive an event: subscriptions by type pattern, severity, category, source, predicate."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import HandlerRegistrationError
from .event import Event, severity_rank
from .handlers import BaseHandler
from .pattern import compile_type_pattern

__all__ = ["HandlerRegistry", "Subscription"]


@dataclass(eq=False)
class Subscription:
    """A handler and the filter deciding which events reach it.

    Attributes:
        handler: the handler.
        event_types: type patterns (any may match).
        min_severity: severity rank (0..3) an event needs at least, or ``None``.
        categories: allowed categories, or ``None`` for all.
        sources: allowed sources, or ``None`` for all.
        predicate: extra test ``f(event) -> bool``, or ``None``.
        priority: higher runs first.
    """

    handler: BaseHandler
    event_types: tuple[str, ...]
    min_severity: int | None = None
    categories: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    predicate: Callable[[Event], bool] | None = None
    priority: int = 0
    order: int = 0
    _type_tests: tuple[Callable[[str], bool], ...] = field(default=(), repr=False)
    _filtered: bool = field(default=True, repr=False)
    #: What the bus awaits per delivery: the handler's ``handle`` or, for async functions, the function.
    call: Callable[[Event], Any] = field(default=None, repr=False)  # type: ignore[assignment]

    #: The handler's name (copied at registration: read several times per delivery).
    name: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self.name = self.handler.name
        if self.call is None:
            self.call = self.handler.direct_call()
        # Most subscriptions filter by type only; skip the per-event checks for them.
        self._filtered = (
            self.min_severity is not None
            or self.categories is not None
            or self.sources is not None
            or self.predicate is not None
            or type(self.handler).matches is not BaseHandler.matches
        )

    def matches_type(self, event_type: str) -> bool:
        """True if any of the type patterns matches ``event_type``."""
        return any(t(event_type) for t in self._type_tests)

    def matches_rest(self, event: Event) -> bool:
        """True if severity, category, source, predicate and the handler's own ``matches`` accept."""
        if self.min_severity is not None and event.severity_rank < self.min_severity:
            return False
        if self.categories is not None and event.category not in self.categories:
            return False
        if self.sources is not None and event.source not in self.sources:
            return False
        if self.predicate is not None and not self.predicate(event):
            return False
        return self.handler.matches(event)


class HandlerRegistry:
    """The set of subscriptions, with a per-type cache of type-pattern matches."""

    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self._by_type: dict[str, tuple[tuple[Subscription, ...], bool]] = {}
        self._counter = 0

    def add(
        self,
        handler: BaseHandler,
        *,
        event_types: Sequence[str] | None = None,
        min_severity: str | None = None,
        categories: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        predicate: Callable[[Event], bool] | None = None,
        priority: int | None = None,
    ) -> Subscription:
        """Subscribe ``handler``; keyword arguments override the handler's class attributes.

        Raises:
            HandlerRegistrationError: the name is taken, a pattern or severity is invalid.
        """
        name = handler.name
        if not name:
            raise HandlerRegistrationError("handler has no name")
        if name in self._subs:
            raise HandlerRegistrationError(f"a handler named {name!r} is already registered")
        declared: Any = event_types if event_types is not None else handler.event_types
        if callable(declared):  # the pyWATS document declares ``def event_types(self): return [...]``
            declared = declared()
        if isinstance(declared, str):
            declared = (declared,)
        try:
            types = tuple(declared)
        except TypeError:
            raise HandlerRegistrationError(
                f"handler {name!r}: event_types must be a sequence of type patterns, got {declared!r}"
            ) from None
        if not all(isinstance(t, str) for t in types):
            raise HandlerRegistrationError(f"handler {name!r}: event types must be strings, got {types!r}")
        if not types:
            raise HandlerRegistrationError(f"handler {name!r} subscribes to no event type")
        try:
            tests = tuple(compile_type_pattern(t) for t in types)
            sev = min_severity if min_severity is not None else handler.min_severity
            sev_rank = severity_rank(sev) if sev is not None else None
        except ValueError as exc:
            raise HandlerRegistrationError(f"handler {name!r}: {exc}") from None
        cats = categories if categories is not None else handler.categories
        srcs = sources if sources is not None else handler.sources
        self._counter += 1
        sub = Subscription(
            handler=handler,
            event_types=types,
            min_severity=sev_rank,
            categories=frozenset([cats] if isinstance(cats, str) else cats) if cats is not None else None,
            sources=frozenset([srcs] if isinstance(srcs, str) else srcs) if srcs is not None else None,
            predicate=predicate,
            priority=priority if priority is not None else handler.priority,
            order=self._counter,
            _type_tests=tests,
        )
        self._subs[name] = sub
        self._by_type.clear()
        return sub

    def remove(self, name: str) -> Subscription:
        """Unsubscribe the handler called ``name``.

        Raises:
            KeyError: no handler has that name.
        """
        try:
            sub = self._subs.pop(name)
        except KeyError:
            raise KeyError(f"no handler named {name!r}") from None
        self._by_type.clear()
        return sub

    def get(self, name: str) -> Subscription | None:
        """The subscription of handler ``name``, or ``None``."""
        return self._subs.get(name)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(sorted(self._subs.values(), key=lambda s: (-s.priority, s.order)))

    def __len__(self) -> int:
        return len(self._subs)

    def match(self, event: Event) -> Sequence[Subscription]:
        """Subscriptions that receive ``event``, highest priority first (then registration order).
        The result may be shared between calls: do not modify it."""
        cached = self._by_type.get(event.type)
        if cached is None:
            candidates = tuple(s for s in self if s.matches_type(event.type))
            if len(self._by_type) > 10_000:
                self._by_type.clear()
            cached = self._by_type[event.type] = (candidates, any(s._filtered for s in candidates))
        candidates, filtered = cached
        if not filtered:
            return candidates  # type: ignore[return-value]  # shared, read-only
        return [s for s in candidates if not s._filtered or s.matches_rest(event)]
