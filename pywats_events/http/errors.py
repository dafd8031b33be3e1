"""Exceptions of the HTTP surface, the webhook transport and the lab event-service integration."""

from __future__ import annotations

from ..errors import BusError, DecodeError, TransportError

__all__ = [
    "EventServiceError",
    "HTTPServerError",
    "IngestRefusedError",
    "InvalidLabMessageError",
    "InvalidRequestError",
    "NotSettledError",
    "SaturatedError",
]


class InvalidRequestError(DecodeError):
    """A request body that cannot become events (bad JSON, a missing or invalid field).

    Args:
        message: what is wrong, in words an integration engineer can act on.
        field: the offending field as a dotted path (``[2].type``, ``data.Status``); ``""`` for the whole
            body.
        where: the input's origin (URL path).
    """

    def __init__(self, message: str, field: str = "", where: str = "") -> None:
        super().__init__(message, where)
        self.field = field


class InvalidLabMessageError(InvalidRequestError):
    """A lab event message or ``ModuleStatusUpdateEvent`` that fails validation; ``field`` names the key."""


class IngestRefusedError(BusError):
    """The webhook transport cannot take the request now; the client should retry after ``retry_after``
    seconds (HTTP 503 with ``Retry-After``).

    Args:
        message: why (stopping, saturated, not settled in time).
        retry_after: seconds the client should wait before retrying, >= 1.
    """

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class SaturatedError(IngestRefusedError):
    """The bus queue is full or too many requests are waiting for settlement; nothing was queued."""


class NotSettledError(IngestRefusedError):
    """The events were queued but not settled within the time limit; they may still be delivered, so a
    retry must carry the same event ids (or ``Idempotency-Key``) to be skipped as a duplicate."""


class HTTPServerError(TransportError):
    """The HTTP server could not start (address in use, permission denied) or failed while serving."""


class EventServiceError(TransportError):
    """A remote event service refused or failed a publish.

    Args:
        message: what happened.
        status: the HTTP status the service answered, or ``None`` when no answer came (network error).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
