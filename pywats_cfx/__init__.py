"""IPC-CFX for pyWATS events: the envelope codec, typed message models, and CFX -> event adapters.

The ``cfx`` and ``cfx-with-body`` decoders are registered by entry point (group
``pywats_events.decoders``); nothing is registered by importing this package.
"""

from __future__ import annotations

from typing import Any

from .adapters import (
    ADAPTED_MESSAGES,
    MAPPINGS,
    UNKNOWN_ENUM_TAG,
    MessageMapping,
    envelope_to_events,
    mapping_table,
    strip_type_members,
)
from .decoder import decode_cfx, decode_cfx_with_body
from .enums import ENUMS, CFXEnum, EnumValue
from .envelope import CFXEnvelope, encode_envelope, envelope_to_bytes, parse_envelopes
from .errors import (
    CFXDecodeError,
    InvalidFieldError,
    InvalidGzipError,
    InvalidJSONError,
    InvalidMessageBodyError,
    InvalidResourceStateError,
    InvalidUTF8Error,
    MissingFieldError,
    NestingTooDeepError,
    NotAnObjectError,
)
from .models import MESSAGE_MODELS, CFXMessage, message_model, parse_message
from .states import state_category, state_code, state_name

__all__ = [
    "ADAPTED_MESSAGES",
    "ENUMS",
    "GENERATOR_KINDS",
    "MAPPINGS",
    "MESSAGE_MODELS",
    "UNKNOWN_ENUM_TAG",
    "AMQPConfig",
    "CFXConfig",
    "CFXDecodeError",
    "CFXEnum",
    "CFXEnvelope",
    "CFXMessage",
    "CFXSettings",
    "CFXTransport",
    "EndpointConfig",
    "EnumValue",
    "ExchangeConfig",
    "InvalidFieldError",
    "InvalidGzipError",
    "InvalidJSONError",
    "InvalidMessageBodyError",
    "InvalidResourceStateError",
    "InvalidUTF8Error",
    "MessageMapping",
    "MissingFieldError",
    "NestingTooDeepError",
    "NotAnObjectError",
    "decode_cfx",
    "decode_cfx_with_body",
    "encode_envelope",
    "envelope_to_bytes",
    "envelope_to_events",
    "generate_envelope",
    "mapping_table",
    "message_model",
    "parse_envelopes",
    "parse_message",
    "state_category",
    "state_code",
    "state_name",
    "strip_type_members",
]


def __getattr__(name: str) -> Any:
    # The generator lives in the explorer module; importing it eagerly here would make
    # ``python -m pywats_cfx.explorer`` load that module twice.
    if name in ("generate_envelope", "GENERATOR_KINDS"):
        from . import explorer

        return getattr(explorer, name)
    # The AMQP transport needs aio-pika (the ``amqp`` extra); the codec alone does not.
    if name == "CFXTransport":
        from .transport import CFXTransport

        return CFXTransport
    if name == "CFXSettings":
        from .settings import CFXSettings

        return CFXSettings
    if name in ("CFXConfig", "AMQPConfig", "EndpointConfig", "ExchangeConfig"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
