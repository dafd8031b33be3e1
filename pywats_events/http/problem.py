"""Error answers as ``application/problem+json`` (RFC 9457, Problem Details for HTTP APIs).

Every 4xx/5xx answer of the app has the members ``type``, ``title``, ``status`` and usually ``detail``;
a validation error adds ``field`` (the offending field as a dotted path, ``[2].type``) and a dead-lettered
body adds ``dead_letter_id``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .. import jsonsafe

__all__ = ["PROBLEM_CONTENT_TYPE", "problem"]

PROBLEM_CONTENT_TYPE = "application/problem+json"

#: Problem ``type`` URIs: relative references documented in docs/transports/http.md, stable for clients to match on.
_TYPES = {
    400: "/problems/invalid-request",
    401: "/problems/unauthorized",
    403: "/problems/forbidden",
    404: "/problems/not-found",
    405: "/problems/method-not-allowed",
    409: "/problems/already-accepted",
    413: "/problems/body-too-large",
    415: "/problems/unsupported-media-type",
    503: "/problems/unavailable",
}

_TITLES = {
    400: "Invalid request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Already accepted",
    413: "Request body too large",
    415: "Unsupported media type",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A problem response.

    Args:
        status: HTTP status code.
        detail: human-readable explanation for this occurrence (never secrets or stack traces).
        title: short summary; default the standard one for ``status``.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
        extra: extension members (``field``, ``dead_letter_id``); ``None`` values are left out.
    """
    body: dict[str, Any] = {
        "type": _TYPES.get(status, "about:blank"),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(
        jsonsafe.dumps(body).encode(),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )
