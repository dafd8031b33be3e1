"""Every exception the core raises. Transport packages keep their own ``errors.py`` deriving from these."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "AmbiguousIdError",
    "BusClosedError",
    "BusError",
    "CircuitOpenError",
    "ConfigError",
    "DeadLetterNotFoundError",
    "DecodeError",
    "HandlerError",
    "HandlerRegistrationError",
    "NoPayloadModelError",
    "PayloadValidationError",
    "PluginError",
    "PyWatsEventsError",
    "SinkUnavailableError",
    "StoreError",
    "StoreRefusedError",
    "StoreSchemaError",
    "TransportError",
    "TransportSendNotSupported",
    "UnknownIdError",
    "UnrecoverableError",
]


class PyWatsEventsError(Exception):
    """Base class of every error raised by pyWATS events."""


class ConfigError(PyWatsEventsError):
    """The configuration (file, environment or arguments) is invalid; the message names the setting."""

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> Self:
        """The first problem pydantic found, as ``"<prefix><dotted.key>: <what is wrong>"``."""
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        return cls(f"{prefix}{key}: {first['msg']}")


class PluginError(ConfigError):
    """A plug-in (transport, decoder or handler kind) is not registered or cannot be imported; the message
    lists the known names or the pip extra that brings what is missing."""


class BusError(PyWatsEventsError):
    """The bus cannot do what was asked."""


class BusClosedError(BusError):
    """The bus is not running (not started yet, or stopping), so it takes no new work."""


class HandlerRegistrationError(BusError):
    """A handler cannot be registered: duplicate name, bad pattern, or not an async/sync callable."""


class HandlerError(PyWatsEventsError):
    """Base class users may raise from handlers; behaves like any other exception for retries."""


class UnrecoverableError(HandlerError):
    """Raised by a handler when retrying cannot help (bad data, missing reference).

    The delivery skips the remaining retries and goes straight to the dead-letter queue with reason
    ``unrecoverable``.
    """


class SinkUnavailableError(HandlerError):
    """Raised by a handler when its sink cannot take the delivery now (unreachable, overloaded, refusing
    the credentials). Raising it is how a handler opts into store and forward: when the delivery still
    fails with it after its retries, the bus parks the delivery durably (reason ``circuit_open``) and opens
    the handler's breaker; the breaker's probe redelivers parked deliveries, oldest first, once the sink
    answers. The transport message is acknowledged as soon as the delivery is parked.

    Args:
        message: what is unavailable and why.
        retry: False to park at once without retries (credentials refused: retrying cannot help soon).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        self.retry = retry
        super().__init__(message)


class PayloadValidationError(UnrecoverableError, ValueError):
    """An event's payload does not fit the typed model of its event type (``pywats_events.domain``).

    An ``UnrecoverableError``: raised from a handler, the delivery goes straight to the dead-letter queue.

    Args:
        event_type: the event's type (``test.result``).
        field: dotted path of the first field that does not fit (``tests.0.result``).
        reason: what is wrong with it.
        event_id: the event's id, when there is an event.
        problems: how many fields do not fit (count).
    """

    def __init__(self, event_type: str, field: str, reason: str, *, event_id: str = "", problems: int = 1) -> None:
        self.event_type = event_type
        self.field = field
        self.reason = reason
        self.event_id = event_id
        self.problems = problems
        more = f" (and {problems - 1} more)" if problems > 1 else ""
        of = f" of event {event_id}" if event_id else ""
        super().__init__(f"{event_type} payload{of}: {field}: {reason}{more}")


class NoPayloadModelError(PyWatsEventsError, LookupError):
    """No typed payload model is registered for an event type.

    Args:
        event_type: the type asked for.
        known: the types that have a model.
    """

    def __init__(self, event_type: str, known: list[str]) -> None:
        self.event_type = event_type
        self.known = known
        super().__init__(f"no payload model for event type {event_type!r}; known: {', '.join(known)}")


class CircuitOpenError(BusError):
    """The handler's circuit breaker is OPEN; the delivery was parked in the dead-letter queue."""


class DecodeError(PyWatsEventsError):
    """Input bytes could not be turned into events. ``where`` says which input (file, topic, offset).

    Args:
        message: what is wrong, in words an integration engineer can act on.
        where: the input's origin (file path, routing key, topic, byte offset); may be empty.
    """

    def __init__(self, message: str, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message


class StoreError(PyWatsEventsError):
    """The durable store failed (cannot open the database, a write failed)."""


class StoreRefusedError(StoreError):
    """The database refused the data itself (a constraint or a value it cannot hold), not the connection:
    writing the same rows again would fail the same way, so the bus does not retry them (the input goes to
    the dead-letter queue with reason ``store_refused``)."""


class StoreSchemaError(StoreError):
    """The database's schema cannot be brought to this version's: it was migrated by a newer pywats-events
    (a revision this one does not know), or a table of the store's name belongs to something else."""


class DeadLetterNotFoundError(StoreError):
    """No dead-letter entry has the given id."""


class UnknownIdError(StoreError):
    """No stored event or dead-letter entry has the given id or id prefix."""


class AmbiguousIdError(StoreError):
    """An id prefix matches more than one stored event or dead-letter entry."""


class TransportError(PyWatsEventsError):
    """A transport failed to connect, consume or publish."""


class TransportSendNotSupported(TransportError):
    """The transport's protocol cannot publish (a drop folder, for instance)."""
