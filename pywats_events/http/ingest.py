"""Ingest routes: ``POST /events``, ``POST /cfx``, ``POST /api/v2.0/EventService``.

Each request goes: bearer token (401/403) → capacity (503) → body within the limit (413) → body
signature over the raw body, ``X-Signature`` or Standard Webhooks (401/403; 403 for a stale
``webhook-timestamp``, 409 for a ``webhook-id`` already accepted) → ``Content-Encoding`` (``gzip`` decoded within
``max_decompressed_bytes``, 413 beyond; unknown encodings 415) → decoding (400, problem naming the field)
→ the bus → 200 once settled. The answer body is ``{"accepted": n, "event_ids": [...], "settlement":
{events, handled, skipped, dead_lettered, unrouted}}``.

``Idempotency-Key`` (events without an ``id`` of their own get ids derived from it) is honoured only on
routes without an HMAC secret. The signature covers the body, not the headers, so on a signed route a
client (or anyone replaying a captured request) could change the key and with it the ids, and have the
handlers run again. There the key is ignored and the ids derive from the SHA-256 of the signed body as
received: a retried or replayed request gets the same ids and the bus skips it. A Standard Webhooks
request's ids derive from its signed ``webhook-id`` instead (the same on every resend of one message).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from .._json import dumps_compact
from ..errors import DecodeError
from ..event import Event
from ..tracing import TRACEPARENT, trace_headers
from .context import HTTPContext
from .errors import IngestRefusedError, InvalidRequestError
from .limits import BodyTooLargeError, gunzip_limited, read_body
from .problem import problem
from .security import check_bearer, check_body_signature
from .settings import RouteSecurity
from .webhook_signature import Verified

__all__ = ["post_cfx", "post_event_service", "post_events"]

_GROUPS = {"/events": "events", "/cfx": "cfx", "/api/v2.0/EventService": "event_service"}

log = logging.getLogger(__name__)

#: Header a client sets to make retries of a request produce the same event ids (events that carry no id
#: of their own), so the bus skips the copies a retry would otherwise deliver twice.
IDEMPOTENCY_HEADER = "idempotency-key"
_IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")


def _ctx(request: Request) -> HTTPContext:
    ctx: HTTPContext = request.scope["app"].state.ctx
    return ctx


def _header_map(request: Request) -> dict[str, str]:
    """The request's headers by name, read once: ASGI gives names in lower case; of a repeated name the
    first value counts (as ``request.headers.get``). Each ``request.headers.get`` scans and decodes every
    header, which on the ingest path cost more than this one pass."""
    out: dict[str, str] = {}
    for name, value in reversed(request.scope["headers"]):
        out[name.decode("latin-1")] = value.decode("latin-1")
    return out


def _trace(headers: dict[str, str]) -> dict[str, str]:
    """W3C trace context (``traceparent``, ``tracestate``) of the request, ``{}`` without a ``traceparent``."""
    return trace_headers(headers) if TRACEPARENT in headers else {}


def _refused(ctx: HTTPContext, route: str, exc: IngestRefusedError) -> Response:
    ctx.metrics.rejected.labels(route, "saturated").inc()
    return problem(503, str(exc), headers={"Retry-After": str(exc.retry_after)})


async def _admit_and_read(
    request: Request, ctx: HTTPContext, sec: RouteSecurity, route: str
) -> tuple[bytes, Verified | None] | Response:
    """Authentication (``sec``: the route group's credentials), capacity, body limit and body signature: the
    body and its verified Standard Webhooks id and timestamp (``None`` for other schemes or none), or the
    answer that ends the request."""
    denied = check_bearer(request, sec.tokens)
    if denied is None:
        try:
            ctx.transport.admit()
        except IngestRefusedError as exc:
            return _refused(ctx, route, exc)
        try:
            body = await read_body(request, ctx.settings.max_body_bytes)
        except BodyTooLargeError as exc:
            ctx.metrics.rejected.labels(route, "too_large").inc()
            # Close the connection: otherwise the server keeps reading (and discarding) the rest of an
            # oversized upload to reuse the connection.
            return problem(413, str(exc), limit=exc.limit, headers={"Connection": "close"})
        checked = check_body_signature(request, body, sec, ctx.replay, route)
        if checked is None or isinstance(checked, Verified):
            return body, checked
        denied = checked
    reason = {401: "unauthorized", 409: "replayed"}.get(denied.status_code, "forbidden")
    ctx.metrics.rejected.labels(route, reason).inc()
    return denied


def _invalid(ctx: HTTPContext, route: str, exc: InvalidRequestError) -> Response:
    ctx.metrics.rejected.labels(route, "invalid").inc()
    return problem(400, exc.reason, field=exc.field or None)


async def _hand_over(
    ctx: HTTPContext,
    route: str,
    events: list[Event],
    first_delivery: bool,
    trace: dict[str, str],
    verified: Verified | None,
) -> Response:
    """Hand the events to the bus and answer once they settled. ``trace``: the request's W3C trace context
    (for the receive span and the events' headers); ``verified``: its Standard Webhooks id, remembered once
    settled."""
    try:
        result = await ctx.transport.ingest(events, first_delivery=first_delivery, route=route, headers=trace)
    except IngestRefusedError as exc:
        return _refused(ctx, route, exc)
    except Exception as exc:
        # Not settled (a store write failed): no 2xx, so the client keeps the events and retries.
        log.error("ingest on %s not settled: %s: %s", route, type(exc).__name__, exc)
        ctx.metrics.rejected.labels(route, "unavailable").inc()
        return problem(
            503,
            "the events could not be stored; nothing was acknowledged, retry later",
            headers={"Retry-After": str(ctx.settings.retry_after)},
        )
    settlement = {
        "events": result.events,
        "handled": result.handled,
        "skipped": result.skipped,
        "dead_lettered": result.dead_lettered,
        "unrouted": result.unrouted,
    }
    body = {"accepted": len(events), "event_ids": [e.id for e in events], "settlement": settlement}
    if verified is not None:
        # Remembered only once settled: a resend after a 503 or a lost connection must get through.
        sec = ctx.settings.security(_GROUPS[route])
        ctx.replay.remember(verified.msg_id, verified.timestamp, sec.webhook_tolerance)
    return Response(dumps_compact(body), status_code=200, media_type="application/json")


def _content_decoded(headers: dict[str, str], ctx: HTTPContext, route: str, raw: bytes) -> bytes | Response:
    """The body with its ``Content-Encoding`` undone (RFC 9110 section 8.4: ``gzip``, ``x-gzip``,
    ``identity``); 415 for other encodings, 413 beyond ``max_decompressed_bytes``, 400 for corrupt gzip."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", ""):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        ctx.metrics.rejected.labels(route, "invalid").inc()
        return problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    try:
        return gunzip_limited(raw, ctx.settings.max_decompressed_bytes)
    except BodyTooLargeError as exc:
        ctx.metrics.rejected.labels(route, "too_large").inc()
        return problem(413, str(exc), limit=exc.limit)
    except ValueError as exc:
        return _invalid(ctx, route, InvalidRequestError(f"body is not valid gzip: {exc}"))


def _id_seed(headers: dict[str, str], verified: Verified | None, sec: RouteSecurity, raw: bytes) -> str | None:
    """The seed of derived event ids: the ``Idempotency-Key`` on an unsigned route, the signed
    ``webhook-id`` of a Standard Webhooks request (the same on every resend of a message, as the spec
    says), the signed body's SHA-256 on an ``X-Signature`` route (see the module docstring: the key is not
    covered by the signature)."""
    if verified is not None:
        return verified.msg_id
    if sec.signed:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    key = headers.get(IDEMPOTENCY_HEADER)
    # A key outside the documented 1..200 printable ASCII is a client bug (an unfilled template, a binary
    # value); refusing it says so, where taking it would silently make ids that no retry reproduces.
    if key is not None and _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise InvalidRequestError("Idempotency-Key must be 1..200 printable ASCII characters", "Idempotency-Key")
    return key


async def _decode_and_ingest(
    request: Request,
    group: str,
    route: str,
    decode: Callable[[HTTPContext, bytes, str | None], tuple[list[Event], bool]],
) -> Response:
    ctx = _ctx(request)
    sec = ctx.settings.security(group)
    admitted = await _admit_and_read(request, ctx, sec, route)
    if isinstance(admitted, Response):
        return admitted
    raw, verified = admitted
    headers = _header_map(request)
    body = _content_decoded(headers, ctx, route, raw)
    if isinstance(body, Response):
        return body
    try:
        events, first_delivery = decode(ctx, body, _id_seed(headers, verified, sec, raw))
    except InvalidRequestError as exc:
        return _invalid(ctx, route, exc)
    return await _hand_over(ctx, route, events, first_delivery, _trace(headers), verified)


async def post_events(request: Request) -> Response:
    """``POST /events``: one event or a list in the normalized JSON form (``Event.to_json_dict``), plain or
    ``Content-Encoding: gzip``."""
    return await _decode_and_ingest(request, "events", "/events", _decode_events)


def _decode_events(ctx: HTTPContext, body: bytes, seed: str | None) -> tuple[list[Event], bool]:
    return ctx.transport.decode_events(body, route="/events", id_seed=seed)


async def post_event_service(request: Request) -> Response:
    """``POST /api/v2.0/EventService``: lab event messages (one, a list, or a bare module status update),
    plain or ``Content-Encoding: gzip``."""
    route = "/api/v2.0/EventService"

    def decode(ctx: HTTPContext, body: bytes, seed: str | None) -> tuple[list[Event], bool]:
        # Lab messages carry no event ids: without an Idempotency-Key every event id is new.
        return ctx.transport.decode_lab(body, route=route, id_seed=seed), seed is None

    return await _decode_and_ingest(request, "event_service", route, decode)


async def post_cfx(request: Request) -> Response:
    """``POST /cfx``: IPC-CFX envelopes (one, a list), plain or ``Content-Encoding: gzip``.

    Bytes that do not decode are stored whole in the dead-letter queue (replayable once the sender or
    decoder is fixed) and answered 400 with the entry's id: nothing is lost.
    """
    route = "/cfx"
    ctx = _ctx(request)
    admitted = await _admit_and_read(request, ctx, ctx.settings.security("cfx"), route)
    if isinstance(admitted, Response):
        return admitted
    raw, verified = admitted
    headers = _header_map(request)
    encoding = headers.get("content-encoding", "identity").strip().lower()
    trace = _trace(headers)
    meta = {"content-type": headers.get("content-type", ""), "content-encoding": encoding, **trace}
    body = raw
    try:
        if encoding in ("gzip", "x-gzip"):
            try:
                body = gunzip_limited(raw, ctx.settings.max_decompressed_bytes)
            except ValueError as exc:
                raise DecodeError(str(exc), route) from None
        elif encoding not in ("identity", ""):
            ctx.metrics.rejected.labels(route, "invalid").inc()
            return problem(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")
        events = ctx.transport.decode_cfx(body, route=route)
    except BodyTooLargeError as exc:
        ctx.metrics.rejected.labels(route, "too_large").inc()
        return problem(413, str(exc), limit=exc.limit)
    except InvalidRequestError as exc:
        return _invalid(ctx, route, exc)
    except DecodeError as exc:
        return await _dead_letter(ctx, route, body, exc, meta)
    return await _hand_over(ctx, route, events, False, trace, verified)


async def _dead_letter(ctx: HTTPContext, route: str, body: bytes, exc: DecodeError, meta: dict[str, str]) -> Response:
    try:
        entry_id = await ctx.transport.dead_letter_body(body, exc, route=route, headers=meta, decoder="cfx")
    except Exception as store_exc:
        log.error("could not dead-letter an undecodable body on %s: %s", route, store_exc)
        ctx.metrics.rejected.labels(route, "unavailable").inc()
        return problem(
            503,
            "the body could not be decoded nor stored; retry later",
            headers={"Retry-After": str(ctx.settings.retry_after)},
        )
    ctx.metrics.rejected.labels(route, "invalid").inc()
    return problem(
        400,
        f"{exc.reason} (the body is kept in the dead-letter queue)",
        title="Undecodable CFX message",
        dead_letter_id=entry_id,
        error_type=type(exc).__name__,
    )
