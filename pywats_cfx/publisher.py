"""Publishing IPC-CFX over AMQP: envelopes -> AMQP messages as the CFX SDK writes them.

Pure functions (no I/O) so what goes on the wire is testable without a broker; ``CFXTransport`` sends the
result with publisher confirms. Routing key ``<handle>.<MessageName>``; headers ``cfx-topic`` (the message
name's namespace, e.g. ``CFX.Production.TestAndInspection``), ``cfx-message`` (the full message name) and
``cfx-handle`` (the sender's handle); ``message_id`` is the envelope's ``UniqueID``; persistent delivery;
``content-type: application/json`` and, when compressed, ``content-encoding: gzip``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pywats_events.event import Event

from .envelope import CFXEnvelope, encode_envelope, envelope_to_bytes

__all__ = ["OutgoingMessage", "envelope_message", "event_message"]

#: Content type of published CFX envelopes (UTF-8 JSON).
CFX_CONTENT_TYPE = "application/json"
#: Content type of normalized pyWATS events published by ``send`` for non-CFX event types.
EVENT_CONTENT_TYPE = "application/vnd.pywats.event+json"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One AMQP message ready to publish.

    Attributes:
        body: the bytes (JSON, gzip-compressed when ``content_encoding`` is ``gzip``).
        routing_key: ``<handle>.<MessageName>``.
        message_id: the envelope's ``UniqueID`` (the first one's for a batch), or the event id.
        content_type / content_encoding: AMQP properties.
        headers: AMQP headers (``cfx-topic``, ``cfx-message``, ``cfx-handle``).
        timestamp: AMQP timestamp property (UTC).
    """

    body: bytes
    routing_key: str
    message_id: str | None
    content_type: str
    content_encoding: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))


def _wire(env: dict[str, Any] | CFXEnvelope) -> dict[str, Any]:
    return env.to_wire_dict() if isinstance(env, CFXEnvelope) else env


def envelope_message(
    envelopes: dict[str, Any] | CFXEnvelope | Sequence[dict[str, Any] | CFXEnvelope],
    *,
    handle: str,
    gzip: bool = False,
    routing_key: str | None = None,
) -> OutgoingMessage:
    """Build the AMQP message for one envelope or a batch (a JSON array, as the SDK sends batches).

    Args:
        envelopes: wire dicts (``encode_envelope``) or ``CFXEnvelope`` objects; a sequence is a batch.
        handle: CFX handle of this endpoint; used when an envelope names no ``Source``.
        gzip: compress the body (``content-encoding: gzip``).
        routing_key: override the default ``<handle>.<MessageName>`` of the (first) envelope.

    Returns:
        The message to publish.

    Raises:
        ValueError: an empty batch, or an envelope without ``MessageName``.
    """
    if isinstance(envelopes, (dict, CFXEnvelope)):
        wires = [_wire(envelopes)]
        payload: Any = wires[0]
    else:
        wires = [_wire(e) for e in envelopes]
        if not wires:
            raise ValueError("cannot publish an empty batch of envelopes")
        payload = wires
    first = wires[0]
    name = first.get("MessageName")
    if not isinstance(name, str) or not name:
        raise ValueError("envelope has no MessageName")
    sender = first.get("Source") or handle
    body = envelope_to_bytes(payload, gzip=gzip)  # a list serializes as a batch
    unique_id = first.get("UniqueID")
    return OutgoingMessage(
        body=body,
        routing_key=routing_key or f"{sender}.{name}",
        message_id=str(unique_id) if unique_id else None,
        content_type=CFX_CONTENT_TYPE,
        content_encoding="gzip" if gzip else None,
        headers={"cfx-topic": name.rpartition(".")[0] or name, "cfx-message": name, "cfx-handle": sender},
    )


def event_message(event: Event, *, handle: str, gzip: bool = False) -> OutgoingMessage:
    """Build the AMQP message that ``CFXTransport.send`` publishes for ``event``.

    An event whose type is a CFX message name (``CFX.``..., as the codec gives messages it has no mapping
    for) becomes that CFX envelope again: ``MessageBody`` = payload, ``UniqueID`` = event id, ``Source`` =
    event source. Any other event is published in the normalized event JSON form
    (``application/vnd.pywats.event+json``, routing key ``<handle>.pyWATS.<type>``), which the ``auto`` and
    ``event-json`` decoders read.

    Args:
        event: the event to publish.
        handle: CFX handle of this endpoint (routing-key prefix; ``Source`` when the event's is ``unknown``).
        gzip: compress the body.
    """
    source = handle if event.source == "unknown" else event.source
    if event.type.startswith("CFX."):
        env = encode_envelope(
            event.type, dict(event.payload), source=source, unique_id=event.id, timestamp=event.timestamp
        )
        return envelope_message(env, handle=handle, gzip=gzip)
    body = event.to_json().encode("utf-8")
    if gzip:
        import gzip as _gzip

        body = _gzip.compress(body, mtime=0)
    return OutgoingMessage(
        body=body,
        routing_key=f"{handle}.pyWATS.{event.type}",
        message_id=event.id,
        content_type=EVENT_CONTENT_TYPE,
        content_encoding="gzip" if gzip else None,
        headers={"pywats-event-type": event.type, "cfx-handle": handle},
        timestamp=event.timestamp,
    )
