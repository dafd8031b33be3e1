"""Request authentication: bearer tokens and HMAC-SHA256 body signatures, compared in constant time.

Bearer tokens follow RFC 6750 (``Authorization: Bearer <token>``). A body signature is
``X-Signature: sha256=<hex>``, the lowercase or uppercase hex HMAC-SHA256 (RFC 2104) of the raw request
body (as received, before any decompression) keyed with the route's secret; GitHub-style webhooks use the
same form. Answers say only *that* authentication failed: 401 when credentials are missing, 403 when
they are wrong. Nothing about which token or why is revealed, and no credential is logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from .problem import problem

__all__ = ["SIGNATURE_HEADER", "check_bearer", "check_signature", "sign_body"]

SIGNATURE_HEADER = "x-signature"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pywats-events"'}


def sign_body(body: bytes, secret: str | bytes) -> str:
    """The ``X-Signature`` header value for ``body``: ``sha256=<hex>`` (for clients and tests)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def check_bearer(request: Request, tokens: Sequence[SecretStr]) -> Response | None:
    """``None`` when the request carries one of ``tokens`` (or none are required), else the 401/403
    answer. Every configured token is compared, so timing does not tell which one was close."""
    if not tokens:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return problem(401, "bearer token required", headers=_CHALLENGE)
    presented = given.strip().encode()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(presented, token.get_secret_value().encode())
    if not ok:
        return problem(403, "credentials not accepted")
    return None


def check_signature(request: Request, body: bytes, secret: SecretStr | None) -> Response | None:
    """``None`` when ``body`` is signed with ``secret`` (or no secret is configured), else the 401 (no
    signature) or 403 (wrong or malformed signature) answer."""
    if secret is None:
        return None
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        return problem(401, "body signature required (X-Signature: sha256=<hex>)")
    algo, _, given = header.strip().partition("=")
    expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    if algo.lower() != "sha256" or not hmac.compare_digest(given.lower().encode(), expected.encode()):
        return problem(403, "credentials not accepted")
    return None
