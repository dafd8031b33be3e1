"""The ``cfx`` decoder: AMQP/file/HTTP body bytes holding IPC-CFX envelopes -> pyWATS events."""

from __future__ import annotations

from pywats_events.codec import DecodeContext
from pywats_events.event import Event

from .adapters import envelope_to_events
from .envelope import parse_envelopes

__all__ = ["decode_cfx", "decode_cfx_with_body"]


def decode_cfx(body: bytes, ctx: DecodeContext, *, keep_body: bool = False) -> list[Event]:
    """Decode one CFX envelope or a batch (JSON array), raw or gzip, into events.

    Registered with ``pywats_events.codec`` as ``cfx`` when ``pywats_cfx`` is imported.

    Args:
        body: the message bytes (UTF-8 JSON, optionally gzip-compressed, detected by content).
        ctx: ``origin`` names the input in errors; ``source`` is used when an envelope's ``Source`` is
            null; ``headers`` are copied into every event.
        keep_body: put each envelope's original ``MessageBody`` under the payload key ``cfx_body``.

    Returns:
        The events of all envelopes, in input order.

    Raises:
        CFXDecodeError: a subclass naming the problem and where it is (see ``pywats_cfx.errors``).
    """
    envelopes = parse_envelopes(body, origin=ctx.origin)
    if len(envelopes) == 1:
        return envelope_to_events(
            envelopes[0], source_hint=ctx.source, headers=ctx.headers, origin=ctx.origin, keep_body=keep_body
        )
    events: list[Event] = []
    for i, env in enumerate(envelopes):
        events.extend(
            envelope_to_events(
                env, source_hint=ctx.source, headers=ctx.headers, origin=f"{ctx.origin}[{i}]", keep_body=keep_body
            )
        )
    return events


def decode_cfx_with_body(body: bytes, ctx: DecodeContext) -> list[Event]:
    """``decode_cfx`` that also keeps each envelope's original ``MessageBody`` as payload ``cfx_body``.

    Registered as ``cfx-with-body``: choose it as a transport's decoder when handlers need vendor
    extensions or members the mapping does not name. Same arguments and errors as ``decode_cfx``.
    """
    return decode_cfx(body, ctx, keep_body=True)
