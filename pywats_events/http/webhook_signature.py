"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec "Webhook signatures"): signing,
verification with a tolerance window, and the memory of accepted message ids that refuses replays.

The scheme: three headers,

- ``webhook-id``: the message's id, the same on every resend of that message;
- ``webhook-timestamp``: integer Unix seconds when this attempt was signed;
- ``webhook-signature``: space-separated ``<version>,<base64 signature>``; version ``v1`` is the base64
  HMAC-SHA256 (RFC 2104) of ``f"{id}.{timestamp}.".encode() + body`` (the raw body as sent). Several
  signatures allow key rotation; any ``v1`` that matches one of the receiver's keys passes; other versions
  (``v1a``, asymmetric) are skipped.

A secret is written ``whsec_<base64 key>`` (the prefix is optional here, as in the reference libraries).
The receiver refuses a timestamp more than the tolerance (default 300 s) before or after its own clock,
and remembers each accepted id until its timestamp leaves the window, so a captured request sent again
within the window is refused (409) and after it is stale (403).

Implemented on the standard library (``hmac``, ``hashlib``, ``base64``) instead of the ``standardwebhooks``
package: that package decodes the body as UTF-8 text (a gzip body, which the intake routes accept, cannot
be verified), has a fixed 5-minute window and no replay memory, and raises one exception class for every
failure, while the intake must answer missing (401), wrong (403), stale (403) and replayed (409) apart.
The tests check this module against that package's signatures.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TOLERANCE",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ReplayGuard",
    "WebhookSignatureError",
    "parse_secret",
    "sign",
    "signature_headers",
    "verify",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"
#: Seconds a timestamp may lie before or after the receiver's clock (the spec's suggested 5 minutes).
DEFAULT_TOLERANCE = 300.0
_MAX_ID = 256


class WebhookSignatureError(Exception):
    """A request fails the Standard Webhooks check.

    Attributes:
        status: the HTTP status to answer: 401 (headers missing), 403 (malformed, wrong signature, or a
            timestamp outside the window), 409 (an id already accepted: a replay).
        reason: a short label for metrics and logs: ``missing``, ``malformed``, ``forbidden``, ``stale``,
            ``replayed``.
        detail: the answer's text; never a key or the expected signature.
    """

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


def parse_secret(secret: str | bytes) -> bytes:
    """The key bytes of a Standard Webhooks secret: ``whsec_<base64>`` (or the base64 alone), or raw bytes.

    Raises:
        ValueError: not base64 after the prefix, or empty.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.strip()
        text = text.removeprefix(SECRET_PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a webhook secret is 'whsec_' followed by base64 (Standard Webhooks)") from None
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def _mac(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of ``body`` sent as message ``msg_id`` at ``timestamp`` (Unix seconds).

    Raises:
        ValueError: invalid secret (``parse_secret``).
    """
    digest = _mac(parse_secret(secret), msg_id, timestamp, body)
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secret: str | bytes, body: bytes, msg_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The three headers for sending ``body``: ``webhook-id`` (``msg_id`` or a new ``msg_<uuid>``; give the
    same id on every resend of one message), ``webhook-timestamp`` (now, or ``timestamp``), and
    ``webhook-signature``.

    Raises:
        ValueError: invalid secret.
    """
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, msg_id, ts, body)}


@dataclass(frozen=True)
class Verified:
    """A request that passed: its ``msg_id`` and ``timestamp`` (Unix seconds)."""

    msg_id: str
    timestamp: int


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Iterable[bytes],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> Verified:
    """Check the Standard Webhooks headers of a request against ``body`` (raw, as received) and ``keys``.

    Args:
        headers: the request headers (lowercase names, as Starlette gives them).
        keys: the accepted keys (``parse_secret``); several during a rotation.
        tolerance: seconds the timestamp may differ from ``now`` either way.
        now: the clock, Unix seconds (default ``time.time()``).

    Raises:
        WebhookSignatureError: 401 a header is missing; 403 a header is malformed, no signature matches,
            or the timestamp is outside the window. (Replays are the caller's ``ReplayGuard``.)
    """
    msg_id = headers.get(ID_HEADER)
    stamp = headers.get(TIMESTAMP_HEADER)
    signatures = headers.get(SIGNATURE_HEADER)
    if not (msg_id and stamp and signatures):
        pairs = ((ID_HEADER, msg_id), (TIMESTAMP_HEADER, stamp), (SIGNATURE_HEADER, signatures))
        missing = [name for name, value in pairs if not value]
        raise WebhookSignatureError(
            401, "missing", f"Standard Webhooks signature required: header(s) {', '.join(missing)} missing"
        )
    if len(msg_id) > _MAX_ID or not msg_id.isprintable():
        raise WebhookSignatureError(403, "malformed", f"{ID_HEADER} must be 1..{_MAX_ID} printable characters")
    try:
        timestamp = int(stamp.strip())
    except ValueError:
        raise WebhookSignatureError(403, "malformed", f"{TIMESTAMP_HEADER} must be integer Unix seconds") from None
    clock = time.time() if now is None else now
    skew = clock - timestamp
    if abs(skew) > tolerance:
        when = "older than" if skew > 0 else "ahead of"
        raise WebhookSignatureError(
            403,
            "stale",
            f"{TIMESTAMP_HEADER} {timestamp} is {abs(skew):.0f} s {when} the server clock (tolerance "
            f"{tolerance:.0f} s): a stale or replayed request, or the sender's clock is wrong",
        )
    presented: list[bytes] = []
    for part in signatures.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:
            presented.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    ok = False
    for key in keys:
        expected = _mac(key, msg_id, timestamp, body)
        for given in presented:
            ok |= hmac.compare_digest(expected, given)
    if not ok:
        raise WebhookSignatureError(403, "forbidden", "credentials not accepted")
    return Verified(msg_id, timestamp)


class ReplayGuard:
    """Message ids accepted recently, each until its timestamp leaves the tolerance window.

    In memory, per process, at most ``max_ids`` ids (the oldest are forgotten first beyond that). What this
    does not catch (another process, a restart, more than ``max_ids`` ids within the window) still does no
    harm: the intake derives event ids from the signed ``webhook-id``, so the bus skips a replayed copy
    for every handler that already handled it.

    Args:
        max_ids: count of ids kept at most.
    """

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._until: OrderedDict[str, tuple[float, float]] = OrderedDict()  # id -> (accepted at, forget at)

    def accepted_at(self, msg_id: str, now: float | None = None) -> float | None:
        """When ``msg_id`` was accepted (Unix seconds), if it is still remembered."""
        clock = time.time() if now is None else now
        entry = self._until.get(msg_id)
        if entry is None:
            return None
        if entry[1] < clock:
            del self._until[msg_id]
            return None
        return entry[0]

    def remember(self, msg_id: str, timestamp: int, tolerance: float, now: float | None = None) -> None:
        """Remember ``msg_id`` (signed at ``timestamp``) until ``timestamp + tolerance``."""
        clock = time.time() if now is None else now
        self._until[msg_id] = (clock, timestamp + tolerance)
        self._until.move_to_end(msg_id)
        # Drop expired ids from the old end, then the oldest beyond the cap.
        while self._until:
            first, (_, forget) = next(iter(self._until.items()))
            if forget >= clock and len(self._until) <= self.max_ids:
                break
            del self._until[first]

    def __len__(self) -> int:
        return len(self._until)
