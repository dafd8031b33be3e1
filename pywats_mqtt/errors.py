"""Every exception ``pywats_mqtt`` raises, each deriving from the matching ``pywats_events.errors`` class.

Configuration mistakes are ``ConfigError`` subclasses (the message names the setting); payloads that cannot
become events are ``DecodeError`` subclasses (the transport dead-letters them whole and acknowledges them);
broker problems are ``TransportError`` subclasses.
"""

from __future__ import annotations

from pywats_events.errors import ConfigError, DecodeError, TransportError

__all__ = [
    "MQTTConfigError",
    "MQTTConnectError",
    "MQTTError",
    "MQTTPublishError",
    "MQTTSubscribeError",
    "PayloadDecodeError",
    "TemplateError",
    "TopicFilterError",
    "UnroutedTopicError",
]


class MQTTConfigError(ConfigError):
    """An MQTT transport setting is invalid; the message names the setting (``transports[mqtt].port``)."""


class TopicFilterError(MQTTConfigError):
    """A mapping rule's topic filter breaks the MQTT filter syntax (MQTT 3.1.1 section 4.7, MQTT 5 section
    4.7): ``#`` not last or not a whole level, ``+`` inside a level, a named segment that is not an
    identifier.
    """


class TemplateError(MQTTConfigError):
    """A ``{field}`` template (event type, source, subjects, publish topic) names an unknown field or uses
    format features that are not allowed (conversions, format specs, attribute access)."""


class PayloadDecodeError(DecodeError):
    """An MQTT payload cannot become an event: invalid JSON or UTF-8, a field a template needs is missing,
    or the event built from it is invalid. The message is dead-lettered whole with this reason."""


class UnroutedTopicError(DecodeError):
    """No mapping rule matches the message's topic. The message is dead-lettered whole with reason
    ``unrouted`` (nothing is dropped); fix the rules and replay it."""


class MQTTError(TransportError):
    """Base class of MQTT broker and protocol failures."""


class MQTTConnectError(MQTTError):
    """The broker could not be reached or refused the connection (CONNACK reason code in the message).

    Args:
        message: what failed, in words.
        permanent: ``True`` when retrying cannot help until someone changes a setting or the broker's
            configuration (bad user name or password, not authorized, client id rejected).
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MQTTSubscribeError(MQTTError):
    """The broker refused a subscription (SUBACK failure reason code, for instance no permission or shared
    subscriptions not supported)."""


class MQTTPublishError(MQTTError):
    """A publish failed: not connected within the send timeout, no PUBACK in time, a failure reason code in
    the PUBACK (MQTT 5), or a rendered topic that is not a valid MQTT topic name."""
