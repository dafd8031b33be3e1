"""MQTT payload decoders: the bytes of one PUBLISH to an event payload, or to whole events.

MQTT says nothing about payload format, so each mapping rule names one:

- ``json``: a UTF-8 JSON document (gzip accepted). An object becomes the event payload as is; any other
  JSON value (array, number, string) is wrapped as ``{"value": ...}``.
- ``text``: UTF-8 text, wrapped as ``{"text": ...}`` (sensor readings such as ``23.5``).
- ``bytes``: anything, wrapped as ``{"base64": ..., "size": <bytes>}`` (the payload survives byte for byte).
- ``cfx``: one or more IPC-CFX envelopes; the ``pywats_cfx`` decoder builds the events (types, ids and
  severities come from the CFX messages).
- ``event``: the normalized pyWATS event JSON (what ``MQTTTransport.send`` publishes), so one bus can feed
  another through a broker.

Every failure raises ``PayloadDecodeError`` (or the CFX decoder's own ``DecodeError`` subclass) naming the
problem and the topic; the transport then dead-letters the message whole.
"""

from __future__ import annotations

from typing import Any

from pywats_events.codec import DecodeContext
from pywats_events.event import Event
from pywats_events.transports import mapping as _core

from .errors import PayloadDecodeError

__all__ = ["EVENT_DECODERS", "PAYLOAD_DECODERS", "decode_events", "decode_payload"]

#: Decoders that turn the payload into the event payload; the mapping rule supplies type and source.
PAYLOAD_DECODERS = _core.PAYLOAD_DECODERS
#: Decoders that turn the payload into whole events, mapped to their name in ``pywats_events.codec``.
EVENT_DECODERS = _core.EVENT_DECODERS


def decode_payload(decoder: str, body: bytes, origin: str) -> dict[str, Any]:
    """Decode ``body`` into an event payload with the ``json``, ``text`` or ``bytes`` decoder
    (``pywats_events.transports.mapping.decode_payload``).

    Raises:
        PayloadDecodeError: invalid UTF-8 or JSON, corrupt gzip, or an unknown decoder name.
    """
    return _core.decode_payload(decoder, body, origin, PayloadDecodeError)


def decode_events(decoder: str, body: bytes, ctx: DecodeContext) -> list[Event]:
    """Decode ``body`` into whole events with the ``cfx`` or ``event`` decoder.

    Raises:
        DecodeError: as the underlying decoder raises (``CFXDecodeError`` subclasses, ``InvalidEventError``).
        PayloadDecodeError: an unknown decoder name.
    """
    return _core.decode_events(decoder, body, ctx, PayloadDecodeError)
