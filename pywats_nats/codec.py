"""NATS payload decoders: the body of one JetStream message to an event payload (``json``, ``text``,
``bytes``) or to whole events (``cfx``, ``event``: what ``NATSTransport.send`` publishes).

The decoders are the core ones (``pywats_events.transports.mapping``, described there and in the README's
MQTT section), raising this package's ``PayloadDecodeError`` naming the problem and the subject; the
transport then dead-letters the message whole.
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
