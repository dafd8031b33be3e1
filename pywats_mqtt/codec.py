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

from pywats_events.transports import mapping as _core

from .errors import PayloadDecodeError

__all__ = ["EVENT_DECODERS", "PAYLOAD_DECODERS", "decode_events", "decode_payload"]

#: Decoders that turn the payload into the event payload; the mapping rule supplies type and source.
PAYLOAD_DECODERS = _core.PAYLOAD_DECODERS
#: Decoders that turn the payload into whole events, mapped to their name in ``pywats_events.codec``.
EVENT_DECODERS = _core.EVENT_DECODERS

_CODEC = _core.PayloadCodec(PayloadDecodeError)
#: ``decode_payload(decoder, body, origin)``: the body as an event payload (``json``, ``text``, ``bytes``);
#: raises ``PayloadDecodeError`` naming the problem and the origin.
decode_payload = _CODEC.decode_payload
#: ``decode_events(decoder, body, ctx)``: whole events (``cfx``, ``event``); raises the decoder's
#: ``DecodeError`` (``PayloadDecodeError`` for an unknown decoder name).
decode_events = _CODEC.decode_events
