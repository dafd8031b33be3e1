"""Decoders: protocol bytes to events. Transports pick one by name; packages register their own.

A decoder is ``decode(body, ctx) -> list[Event]``. It raises ``DecodeError`` (or a subclass) naming
the problem and ``ctx.origin`` when the bytes cannot become events; the transport then stores the bytes
with ``IngestSink.dead_letter_raw`` and settles the message: nothing is lost, nothing is retried forever.

Decoders are plug-ins: a distribution registers one under the entry-point group
``pywats_events.decoders`` (see ``pywats_events.plugins``); ``register_decoder`` adds one at run time.
Built in: ``event-json`` (the normalized JSON form: one object, a list of objects, or JSON Lines).
``auto`` asks every registered decoder that has a ``recognizes(head: bytes) -> bool`` method whether it
knows the first bytes of the (un-gzipped) body, and falls back to ``event-json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from . import jsonsafe
from .errors import DecodeError, PluginError
from .event import Event
from .plugins import DECODER_GROUP, available, load_plugin

__all__ = [
    "DecodeContext",
    "Decoder",
    "InvalidEventError",
    "RecognizingDecoder",
    "decode_auto",
    "decode_event_json",
    "get_decoder",
    "json_error_text",
    "maybe_gunzip",
    "register_decoder",
]

#: Largest decompressed body any built-in decoder accepts, in bytes (gzip bombs stop here).
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


class InvalidEventError(DecodeError):
    """Normalized event JSON that is not valid (bad JSON, missing or invalid field)."""


@dataclass(frozen=True, slots=True)
class DecodeContext:
    """What the transport knows about the bytes it hands to a decoder.

    Attributes:
        origin: where they came from (file path, topic, routing key), used in error messages.
        source: a source name the transport knows (MQTT topic segment, AMQP ``cfx-handle``); decoders use
            it when the content names none.
        headers: transport metadata to copy into each event's ``headers``.
    """

    origin: str = ""
    source: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)


Decoder = Callable[[bytes, DecodeContext], list[Event]]


@runtime_checkable
class RecognizingDecoder(Protocol):
    """A decoder that can tell its own format from the first bytes, so ``auto`` can pick it.

    ``recognizes`` gets at most the first 4,096 bytes of the un-gzipped body, with a UTF-8 BOM, leading
    whitespace and ``[`` removed; it must be cheap and never raise.
    """

    def __call__(self, body: bytes, ctx: DecodeContext) -> list[Event]: ...

    def recognizes(self, head: bytes) -> bool: ...


_DECODERS: dict[str, Decoder] = {}
_recognizers: list[RecognizingDecoder] | None = None
log = logging.getLogger(__name__)


def register_decoder(name: str, decoder: Decoder) -> None:
    """Make ``decoder`` available to transports under ``name`` (replaces an earlier one of that name).

    Decoders that a distribution ships are better registered by entry point (group
    ``pywats_events.decoders``): then a configuration can name them without importing anything first.
    """
    global _recognizers
    _DECODERS[name] = decoder
    _recognizers = None


def get_decoder(name: str) -> Decoder:
    """The decoder registered as ``name`` (at run time or by entry point; the latter imported on first use).

    Raises:
        KeyError: no such decoder, or its plug-in cannot be imported (the message lists the known names or
            the pip extra to install).
    """
    found = _DECODERS.get(name)
    if found is not None:
        return found
    if name in available(DECODER_GROUP):
        try:
            decoder = load_plugin(DECODER_GROUP, name)
        except PluginError as exc:
            raise KeyError(str(exc)) from None
        register_decoder(name, decoder)
        return decoder
    known = sorted(set(_DECODERS) | set(available(DECODER_GROUP)))
    raise KeyError(f"unknown decoder {name!r}; known: {known}")


def _recognizing_decoders() -> list[RecognizingDecoder]:
    """Every known decoder with a ``recognizes`` method (entry points imported once, on first ``auto``)."""
    global _recognizers
    if _recognizers is None:
        for name in available(DECODER_GROUP):
            if name not in _DECODERS:
                try:
                    get_decoder(name)
                except KeyError as exc:  # a plug-in whose extra is not installed cannot be recognized
                    log.debug("decoder %r not available for auto-detection: %s", name, exc)
        _recognizers = [d for d in _DECODERS.values() if isinstance(d, RecognizingDecoder)]
    return _recognizers


def maybe_gunzip(body: bytes, origin: str = "") -> bytes:
    """Return ``body`` decompressed if it starts with the gzip magic bytes, else unchanged.

    Raises:
        DecodeError: corrupt gzip data, or more than ``MAX_DECOMPRESSED_BYTES`` once decompressed.
    """
    if body[:2] != b"\x1f\x8b":
        return body
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, MAX_DECOMPRESSED_BYTES + 1)
    except zlib.error as exc:
        raise DecodeError(f"corrupt gzip data: {exc}", origin) from None
    if len(out) > MAX_DECOMPRESSED_BYTES or d.unconsumed_tail:
        raise DecodeError(f"gzip body expands beyond {MAX_DECOMPRESSED_BYTES} bytes", origin)
    if not d.eof:
        raise DecodeError("truncated gzip data", origin)
    return out


def json_error_text(exc: json.JSONDecodeError) -> str:
    """``exc`` as "<what> at line L column C" (json's own message may already end in "at")."""
    msg = exc.msg.removesuffix(" at").rstrip(":")
    return f"{msg} at line {exc.lineno} column {exc.colno}"


def _event_from(obj: Any, ctx: DecodeContext, where: str) -> Event:
    if not isinstance(obj, dict):
        raise InvalidEventError(f"expected a JSON object for an event, got {type(obj).__name__}", where)
    try:
        ev = Event.from_json_dict(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(event)"
        raise InvalidEventError(f"field {loc!r}: {first['msg']}", where) from None
    if ctx.headers:
        ev = ev.model_copy(update={"headers": {**ctx.headers, **ev.headers}})
    return ev


def decode_event_json(body: bytes, ctx: DecodeContext) -> list[Event]:
    """Decode the normalized event JSON form: an object, an array of objects, or JSON Lines.

    Raises:
        InvalidEventError: invalid UTF-8 or JSON, or an item that is not a valid event (the message names
            the field and the item's index or line).
    """
    body = maybe_gunzip(body, ctx.origin)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidEventError(f"invalid UTF-8 at byte {exc.start}", ctx.origin) from None
    try:
        return _decode_event_text(text, ctx)
    except RecursionError:
        # From json or from validating the event: either way the input, not the decoder, is at fault.
        raise InvalidEventError("JSON nested too deeply", ctx.origin) from None


def _decode_event_text(text: str, ctx: DecodeContext) -> list[Event]:
    try:
        data = jsonsafe.loads(text)
    except json.JSONDecodeError as first_exc:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) < 2 or not _is_json_object(lines[0]):
            raise InvalidEventError(f"invalid JSON: {json_error_text(first_exc)}", ctx.origin) from None
        out = []
        for n, line in enumerate(lines, 1):
            try:
                obj = jsonsafe.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidEventError(f"invalid JSON on line {n}: {json_error_text(exc)}", ctx.origin) from None
            out.append(_event_from(obj, ctx, f"{ctx.origin}:line {n}"))
        return out
    if isinstance(data, list):
        return [_event_from(o, ctx, f"{ctx.origin}[{i}]") for i, o in enumerate(data)]
    return [_event_from(data, ctx, ctx.origin)]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, RecursionError):
        return False


def decode_auto(body: bytes, ctx: DecodeContext) -> list[Event]:
    """Pick a decoder by content: the first registered one that recognizes it, else ``event-json``.

    Raises:
        DecodeError: as the chosen decoder raises.
    """
    raw = maybe_gunzip(body, ctx.origin)
    head = raw[:4096].lstrip(b"\xef\xbb\xbf \t\r\n[")
    for decoder in _recognizing_decoders():
        if decoder.recognizes(head):
            return decoder(raw, ctx)
    return decode_event_json(raw, ctx)


register_decoder("event-json", decode_event_json)
register_decoder("auto", decode_auto)
