"""Request authentication: bearer tokens and HMAC-SHA256 body signatures, compared in constant time.

Two signature schemes: ``X-Signature`` (below) and Standard Webhooks (``webhook-id``,
``webhook-timestamp``, ``webhook-signature``; ``check_webhook`` and ``webhook_signature``), which also
refuses stale timestamps (403) and replayed ids (409). A route may accept both during a migration.

Bearer tokens follow RFC 6750 (``Authorization: Bearer <token>``). A body signature is
``X-Signature: sha256=<hex>``, the lowercase or uppercase hex HMAC-SHA256 (RFC 2104) of the raw request
body (as received, before any decompression) keyed with the route's secret; GitHub-style webhooks use the
same form. Answers say only *that* authentication failed: 401 when credentials are missing, 403 when
they are wrong. Nothing about which token or why is revealed, and no credential is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from .problem import problem
from .webhook_signature import ID_HEADER, ReplayGuard, Verified, WebhookSignatureError, verify

if TYPE_CHECKING:
    from .settings import RouteSecurity

log = logging.getLogger(__name__)

__all__ = ["SIGNATURE_HEADER", "check_bearer", "check_body_signature", "check_signature", "check_webhook", "sign_body"]

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


def check_webhook(
    request: Request, body: bytes, sec: RouteSecurity, guard: ReplayGuard, route: str
) -> Verified | Response:
    """Standard Webhooks check of one request on ``route``: the ``Verified`` id and timestamp, or the
    answer: 401 headers missing, 403 malformed / wrong signature / timestamp outside
    ``sec.webhook_tolerance`` seconds, 409 (``/problems/already-accepted``) an id accepted within the window.
    Stale and replayed requests are logged at WARNING with the id and the client address."""
    try:
        verified = verify(request.headers, body, sec.webhook_keys(), tolerance=sec.webhook_tolerance)
    except WebhookSignatureError as exc:
        if exc.reason == "stale":
            log.warning("%s: refused a stale Standard Webhooks request %r from %s: %s", route,
                        request.headers.get(ID_HEADER), _client(request), exc.detail)
        return problem(exc.status, exc.detail, reason=exc.reason)
    at = guard.accepted_at(verified.msg_id)
    if at is not None:
        when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        log.warning("%s: refused a replayed Standard Webhooks request %r from %s (accepted at %s)", route,
                    verified.msg_id, _client(request), when)
        return problem(
            409,
            f"webhook-id {verified.msg_id!r} was already accepted at {when}; a replayed request is not "
            "processed again",
            reason="replayed",
            webhook_id=verified.msg_id,
            accepted_at=when,
        )
    return verified


def check_body_signature(
    request: Request, body: bytes, sec: RouteSecurity, guard: ReplayGuard, route: str
) -> Verified | Response | None:
    """The body signature of a request, by the scheme it carries: Standard Webhooks when the route has a
    ``webhook_secret`` and the request a ``webhook-signature`` header (or the route has no
    ``hmac_secret``), else ``X-Signature``. ``None``: passed ``X-Signature`` or nothing required;
    ``Verified``: passed Standard Webhooks (the caller remembers the id once the request is settled);
    a ``Response``: refused."""
    if sec.webhook_secret and ("webhook-signature" in request.headers or sec.hmac_secret is None):
        return check_webhook(request, body, sec, guard, route)
    return check_signature(request, body, sec.hmac_secret)


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"
