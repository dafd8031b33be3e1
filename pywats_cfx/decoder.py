"""The ``cfx`` decoder: AMQP/file/HTTP body bytes holding IPC-CFX envelopes -> pyWATS events."""

from __future__ import annotations

from pywats_events.codec import DecodeContext
from pywats_events.event import Event

from .adapters import envelope_to_events
from .envelope import parse_envelopes

__all__ = ["decode_cfx"]


def decode_cfx(body: bytes, ctx: DecodeContext) -> list[Event]:
    """Decode one CFX envelope or a batch (JSON array), raw or gzip, into events.

    Registered with ``pywats_events.codec`` as ``cfx`` when ``pywats_cfx`` is imported.

    Args:
        body: the message bytes (UTF-8 JSON, optionally gzip-compressed, detected by content).
        ctx: ``origin`` names the input in errors; ``source`` is used when an envelope's ``Source`` is
            null; ``headers`` are copied into every event.

    Returns:
        The events of all envelopes, in input order.

    Raises:
        CFXDecodeError: a subclass naming the problem and where it is (see ``pywats_cfx.errors``).
    """
    envelopes = parse_envelopes(body, origin=ctx.origin)
    if len(envelopes) == 1:
        return envelope_to_events(
            envelopes[0], source_hint=ctx.source, headers=ctx.headers, origin=ctx.origin
        )
    events: list[Event] = []
    for i, env in enumerate(envelopes):
        events.extend(
            envelope_to_events(env, source_hint=ctx.source, headers=ctx.headers, origin=f"{ctx.origin}[{i}]")
        )
    return events
