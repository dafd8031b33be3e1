"""MQTT for pyWATS events: topic mapping rules, payload decoders and the ``MQTTTransport``.

Same layout as ``pywats_cfx``: ``settings`` (configuration), ``mapping`` and ``codec`` (MQTT message to
events), ``connection`` (the asyncio-driven MQTT client), ``transport`` (the bus plug-in), ``errors``.
"""

from __future__ import annotations

from .codec import EVENT_DECODERS, PAYLOAD_DECODERS, decode_events, decode_payload
from .errors import (
    MQTTConfigError,
    MQTTConnectError,
    MQTTError,
    MQTTPublishError,
    MQTTSubscribeError,
    PayloadDecodeError,
    TemplateError,
    TopicFilterError,
    UnroutedTopicError,
)
from .mapping import MappingRule, Template, TopicFilter, TopicMapper
from .settings import MQTTRuleSettings, MQTTSettings, MQTTSubscriptionSettings, MQTTTLSSettings
from .transport import MQTTTransport

__all__ = [
    "EVENT_DECODERS",
    "PAYLOAD_DECODERS",
    "MQTTConfigError",
    "MQTTConnectError",
    "MQTTError",
    "MQTTPublishError",
    "MQTTRuleSettings",
    "MQTTSettings",
    "MQTTSubscribeError",
    "MQTTSubscriptionSettings",
    "MQTTTLSSettings",
    "MQTTTransport",
    "MappingRule",
    "PayloadDecodeError",
    "Template",
    "TemplateError",
    "TopicFilter",
    "TopicFilterError",
    "TopicMapper",
    "UnroutedTopicError",
    "decode_events",
    "decode_payload",
]
