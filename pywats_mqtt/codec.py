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

import base64
import json
from typing import Any, Final

from pywats_events import jsonsafe
from pywats_events.codec import DecodeContext, get_decoder, maybe_gunzip
from pywats_events.errors import DecodeError
from pywats_events.event import Event

from .errors import PayloadDecodeError

__all__ = ["EVENT_DECODERS", "PAYLOAD_DECODERS", "decode_events", "decode_payload"]

#: Decoders that turn the payload into the event payload; the mapping rule supplies type and source.
PAYLOAD_DECODERS: Final = ("json", "text", "bytes")
#: Decoders that turn the payload into whole events, mapped to their name in ``pywats_events.codec``.
EVENT_DECODERS: Final = {"cfx": "cfx", "event": "event-json"}


def decode_payload(decoder: str, body: bytes, origin: str) -> dict[str, Any]:
    """Decode ``body`` into an event payload with the ``json``, ``text`` or ``bytes`` decoder.

    Args:
        decoder: one of ``PAYLOAD_DECODERS``.
        body: the MQTT payload bytes.
        origin: the message's topic (or URL), named in error messages.

    Raises:
        PayloadDecodeError: invalid UTF-8 or JSON, corrupt gzip, or an unknown decoder name.
    """
    if decoder == "json":
        try:
            text = maybe_gunzip(body, origin).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise PayloadDecodeError(f"invalid UTF-8 at byte {exc.start}", origin) from None
        except DecodeError as exc:  # corrupt gzip: report it with this package's class
            raise PayloadDecodeError(exc.reason, origin) from None
        try:
            data = jsonsafe.loads(text)
        except json.JSONDecodeError as exc:
            raise PayloadDecodeError(
                f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", origin
            ) from None
        except RecursionError:
            raise PayloadDecodeError("JSON nested too deeply", origin) from None
        return data if isinstance(data, dict) else {"value": data}
    if decoder == "text":
        try:
            return {"text": body.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise PayloadDecodeError(f"invalid UTF-8 at byte {exc.start}", origin) from None
    if decoder == "bytes":
        return {"base64": base64.b64encode(body).decode("ascii"), "size": len(body)}
    raise PayloadDecodeError(
        f"unknown payload decoder {decoder!r}; expected one of {PAYLOAD_DECODERS}", origin
    )


def decode_events(decoder: str, body: bytes, ctx: DecodeContext) -> list[Event]:
    """Decode ``body`` into whole events with the ``cfx`` or ``event`` decoder.

    Args:
        decoder: a key of ``EVENT_DECODERS``.
        body: the MQTT payload bytes.
        ctx: origin (topic URL), a default source and the MQTT headers copied into each event.

    Raises:
        DecodeError: as the underlying decoder raises (``CFXDecodeError`` subclasses, ``InvalidEventError``).
        PayloadDecodeError: an unknown decoder name.
    """
    try:
        name = EVENT_DECODERS[decoder]
    except KeyError:
        raise PayloadDecodeError(
            f"unknown event decoder {decoder!r}; expected one of {sorted(EVENT_DECODERS)}", ctx.origin
        ) from None
    return get_decoder(name)(body, ctx)
