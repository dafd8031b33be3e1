"""Every exception the IPC-CFX codec raises.

All derive from ``CFXDecodeError``, itself a ``pywats_events.errors.DecodeError``, so a transport that
catches ``DecodeError`` dead-letters bad CFX input like any other undecodable bytes. Each message names the
problem in words and ``where`` names the input (file, routing key) and the position inside it (batch index,
field path such as ``[0].MessageBody.TestedUnits``).
"""

from __future__ import annotations

from pywats_events.errors import DecodeError

__all__ = [
    "CFXDecodeError",
    "InvalidFieldError",
    "InvalidGzipError",
    "InvalidJSONError",
    "InvalidMessageBodyError",
    "InvalidResourceStateError",
    "InvalidUTF8Error",
    "MissingFieldError",
    "NestingTooDeepError",
    "NotAnObjectError",
]


class CFXDecodeError(DecodeError):
    """Base class: bytes that cannot be read as IPC-CFX envelopes or mapped to events.

    Args:
        message: what is wrong (one line).
        where: the input's origin plus the position inside it; may be empty.
    """


class InvalidGzipError(CFXDecodeError):
    """The body starts with the gzip magic bytes but is corrupt, truncated or expands too far."""


class InvalidUTF8Error(CFXDecodeError):
    """The (decompressed) body is not UTF-8, as CFX requires; the message gives the byte offset."""


class InvalidJSONError(CFXDecodeError):
    """The text is not JSON; the message gives the parser's reason, line and column."""


class NestingTooDeepError(CFXDecodeError):
    """Objects and arrays are nested deeper than the limit (``max_depth``), refused before parsing."""


class NotAnObjectError(CFXDecodeError):
    """The JSON is neither an envelope object nor an array of envelope objects."""


class MissingFieldError(CFXDecodeError):
    """A required envelope field (``MessageName``, ``MessageBody``) is absent or null.

    Args:
        field: the CFX field name as the standard spells it.
        where: as for ``CFXDecodeError``.
    """

    def __init__(self, field: str, where: str = "") -> None:
        self.field = field
        super().__init__(f"missing required field {field!r}", where)


class InvalidFieldError(CFXDecodeError):
    """An envelope field has the wrong type or an unusable value (``TimeStamp`` not a date, ...).

    Args:
        field: the CFX field name.
        message: what is wrong with it.
        where: as for ``CFXDecodeError``.
    """

    def __init__(self, field: str, message: str, where: str = "") -> None:
        self.field = field
        super().__init__(f"field {field!r}: {message}", where)


class InvalidMessageBodyError(CFXDecodeError):
    """A ``MessageBody`` does not fit the typed model of its message (``TestedUnits`` not a list, ...).

    Args:
        field: dotted path of the offending field inside the body, e.g. ``TestedUnits[0].Tests``.
        message: what is wrong with it.
        where: as for ``CFXDecodeError``.
    """

    def __init__(self, field: str, message: str, where: str = "") -> None:
        self.field = field
        super().__init__(f"MessageBody.{field}: {message}" if field else f"MessageBody: {message}", where)


class InvalidResourceStateError(InvalidMessageBodyError):
    """A ``ResourceState`` that is not a SEMI E10 state: a code 1000..6999 (number or string), 22A0/22B0, or
    a member name of ``CFX/Structures/ResourceState.cs`` in any letter case. ``field`` is the path inside the
    body (``NewState``), ``where`` the input (file, queue, request)."""


# --- AMQP transport (appended by the transport; the codec's classes above are unchanged) -----------------

from pywats_events.errors import TransportError  # noqa: E402  (kept with the transport's classes)


class UnsupportedContentEncodingError(CFXDecodeError):
    """An AMQP message's ``content-encoding`` is one the transport cannot undo (only ``gzip`` and identity
    are supported, as the CFX standard uses); the message is dead-lettered as raw input."""


class CFXTransportError(TransportError):
    """The IPC-CFX AMQP transport failed to connect, declare its topology, consume or publish."""


class CFXPublishError(CFXTransportError):
    """A publish was not confirmed by the broker in time, or there was no connection to publish on."""


__all__ += ["CFXPublishError", "CFXTransportError", "UnsupportedContentEncodingError"]
