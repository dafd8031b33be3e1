"""NATS JetStream for pyWATS events: subject mapping rules, payload decoders and the ``NATSTransport``.

Same layout as ``pywats_mqtt``: ``settings`` (configuration), ``mapping`` and ``codec`` (JetStream message
to events), ``transport`` (the bus plug-in: durable pull consumer and ``send``), ``errors``, and
``testing`` (a test double that needs no server).
"""

from __future__ import annotations

from .codec import EVENT_DECODERS, PAYLOAD_DECODERS, decode_events, decode_payload
from .errors import (
    NATSConfigError,
    NATSConnectError,
    NATSError,
    NATSPublishError,
    NATSStreamError,
    PayloadDecodeError,
    SubjectFilterError,
    TemplateError,
    UnroutedSubjectError,
)
from .mapping import MappingRule, SubjectFilter, SubjectMapper, Template
from .settings import NATSRuleSettings, NATSSettings
from .transport import MSG_ID_HEADER, NATSTransport

__all__ = [
    "EVENT_DECODERS",
    "MSG_ID_HEADER",
    "PAYLOAD_DECODERS",
    "MappingRule",
    "NATSConfigError",
    "NATSConnectError",
    "NATSError",
    "NATSPublishError",
    "NATSRuleSettings",
    "NATSSettings",
    "NATSStreamError",
    "NATSTransport",
    "PayloadDecodeError",
    "SubjectFilter",
    "SubjectFilterError",
    "SubjectMapper",
    "Template",
    "TemplateError",
    "UnroutedSubjectError",
    "decode_events",
    "decode_payload",
]
