"""The ``cfx`` decoder: AMQP/file/HTTP body bytes holding IPC-CFX envelopes -> pyWATS events."""

from __future__ import annotations

from pywats_events.codec import DecodeContext
from pywats_events.event import Event

from .adapters import envelope_to_events
from .envelope import parse_envelopes

__all__ = ["CFXDecoder", "decode_cfx", "decode_cfx_with_body"]


class CFXDecoder:
    """The ``cfx`` decoder as a plug-in: decoding plus the content test that the ``auto`` decoder asks.

    Registered by entry point (group ``pywats_events.decoders``) as ``cfx``, the instance ``decode_cfx``.

    Args:
        keep_body: put each envelope's original ``MessageBody`` under the payload key ``cfx_body``.
    """

    def __init__(self, *, keep_body: bool = False) -> None:
        self.keep_body = keep_body

    def __call__(self, body: bytes, ctx: DecodeContext, *, keep_body: bool | None = None) -> list[Event]:
        """Decode one CFX envelope or a batch (JSON array), raw or gzip, into events.

        Args:
            body: the message bytes (UTF-8 JSON, optionally gzip-compressed, detected by content).
            ctx: ``origin`` names the input in errors; ``source`` is used when an envelope's ``Source`` is
                null; ``headers`` are copied into every event.
            keep_body: override this decoder's ``keep_body`` for this call.

        Returns:
            The events of all envelopes, in input order.

        Raises:
            CFXDecodeError: a subclass naming the problem and where it is (see ``pywats_cfx.errors``).
        """
        keep = self.keep_body if keep_body is None else keep_body
        envelopes = parse_envelopes(body, origin=ctx.origin)
        if len(envelopes) == 1:
            return envelope_to_events(
                envelopes[0], source_hint=ctx.source, headers=ctx.headers, origin=ctx.origin, keep_body=keep
            )
        events: list[Event] = []
        for i, env in enumerate(envelopes):
            events.extend(
                envelope_to_events(
                    env, source_hint=ctx.source, headers=ctx.headers, origin=f"{ctx.origin}[{i}]", keep_body=keep
                )
            )
        return events

    @staticmethod
    def recognizes(head: bytes) -> bool:
        """True when ``head`` (the body's first bytes, leading ``[`` and whitespace removed) starts a CFX
        envelope: an object naming ``MessageName`` or ``MessageBody`` in any case, the members every
        envelope carries (SDK ``CFX/CFXEnvelope.cs``)."""
        if not head.startswith(b"{"):
            return False
        low = head.lower()
        return b'"messagename"' in low or b'"messagebody"' in low


#: Decode CFX envelopes: ``decode_cfx(body, ctx) -> list[Event]`` (see ``CFXDecoder.__call__``).
decode_cfx = CFXDecoder()



def decode_cfx_with_body(body: bytes, ctx: DecodeContext) -> list[Event]:
    """``decode_cfx`` that also keeps each envelope's original ``MessageBody`` as payload ``cfx_body``.

    Registered as ``cfx-with-body``: choose it as a transport's decoder when handlers need vendor
    extensions or members the mapping does not name. It does not take part in ``auto`` (that picks
    ``cfx``). Same arguments and errors as ``decode_cfx``.
    """
    return decode_cfx(body, ctx, keep_body=True)
