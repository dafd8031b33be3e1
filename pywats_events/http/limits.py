"""Request size limits, enforced while the body streams in, so a 1 GB upload costs at most the limit in
memory. Exceeding a limit answers 413 (RFC 9110 §15.5.14)."""

from __future__ import annotations

import zlib

from starlette.requests import ClientDisconnect, Request

__all__ = ["BodyTooLargeError", "gunzip_limited", "read_body"]


class BodyTooLargeError(Exception):
    """The body (as received, or once decompressed) is larger than allowed.

    Args:
        limit: the limit that was exceeded, in bytes.
        what: ``body`` or ``decompressed body``.
    """

    def __init__(self, limit: int, what: str = "body") -> None:
        super().__init__(f"request {what} exceeds {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole request body, stopping as soon as it exceeds ``limit`` bytes.

    A ``Content-Length`` above the limit is refused before any byte is read.

    Raises:
        BodyTooLargeError: more than ``limit`` bytes.
    """
    # The raw ASGI headers (lower-case names), scanned for this one: ``request.headers.get`` decodes all.
    for name, declared in request.scope["headers"]:
        if name == b"content-length":
            if declared.isdigit() and int(declared) > limit:
                raise BodyTooLargeError(limit)
            break
    # ASGI messages read directly: Starlette's stream() generator costs more than the JSON parse of a
    # typical event on this hot path.
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def gunzip_limited(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (``Content-Encoding: gzip``, RFC 1952), at most ``limit`` bytes out.

    Raises:
        BodyTooLargeError: it expands beyond ``limit`` bytes (a gzip bomb stops here).
        ValueError: corrupt or truncated gzip data.
    """
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"corrupt gzip data: {exc}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise BodyTooLargeError(limit, "decompressed body")
    if not d.eof:
        raise ValueError("truncated gzip data")
    return out
