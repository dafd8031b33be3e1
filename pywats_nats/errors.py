"""Every exception ``pywats_nats`` raises, each deriving from the matching ``pywats_events.errors`` class.

Configuration mistakes are ``ConfigError`` subclasses (the message names the setting); messages that cannot
become events are ``DecodeError`` subclasses (the transport dead-letters them whole and acknowledges them);
server problems are ``TransportError`` subclasses.
"""

from __future__ import annotations

from pywats_events.errors import ConfigError, DecodeError, TransportError

__all__ = [
    "NATSConfigError",
    "NATSConnectError",
    "NATSError",
    "NATSPublishError",
    "NATSStreamError",
    "PayloadDecodeError",
    "SubjectFilterError",
    "TemplateError",
    "UnroutedSubjectError",
]


class NATSConfigError(ConfigError):
    """A NATS transport setting is invalid; the message names the setting (``transports[nats].stream``)."""


class SubjectFilterError(NATSConfigError):
    """A mapping rule's subject filter breaks the NATS subject syntax (NATS docs, "Subject-Based Messaging"):
    an empty token, ``>`` not last, ``*`` or ``>`` inside a token, whitespace, a named token that is not an
    identifier."""


class TemplateError(NATSConfigError):
    """A ``{field}`` template (event type, source, subjects, publish subject) names an unknown field or uses
    format features that are not allowed (conversions, format specs, attribute access)."""


class PayloadDecodeError(DecodeError):
    """A NATS message body cannot become an event: invalid JSON or UTF-8, a field a template needs is
    missing, or the event built from it is invalid. The message is dead-lettered whole with this reason."""


class UnroutedSubjectError(DecodeError):
    """No mapping rule matches the message's subject. The message is dead-lettered whole with reason
    ``unrouted`` (nothing is dropped); fix the rules and replay it."""


class NATSError(TransportError):
    """Base class of NATS server and protocol failures."""


class NATSConnectError(NATSError):
    """No server of ``servers`` could be reached, or it refused the connection (authorization)."""


class NATSStreamError(NATSError):
    """The stream or the durable consumer cannot be used: the stream does not exist and ``create_stream``
    is off, JetStream is not enabled on the server, or the server refused the stream or consumer
    configuration (the server's error code and description are in the message).

    Args:
        message: what failed, in words.
        permanent: ``True`` when retrying cannot help until someone changes a setting or the server.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NATSPublishError(NATSError):
    """``send`` failed: not connected within the send timeout, no stream captures the subject (no
    responders), no PubAck in time, or a rendered subject that is not a valid NATS subject."""
