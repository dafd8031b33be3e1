"""Standard Webhooks signing and verification (pywats_events.http.webhook_signature), checked against the
reference implementation (the ``standardwebhooks`` package of the standard's authors)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from pywats_events.errors import ConfigError
from pywats_events.http.client import ForwarderSettings
from pywats_events.http.settings import HTTPSettings
from pywats_events.http.webhook_signature import (
    ReplayGuard,
    WebhookSignatureError,
    parse_secret,
    sign,
    signature_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = b'{"topic":"Orders.Completed","data":{"plate":"P-1"}}'


def test_our_signature_is_the_reference_implementations() -> None:
    now = int(time.time())
    ours = sign(SECRET, "msg_1", now, BODY)
    theirs = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    assert ours == theirs
    # And the reference verifier accepts our headers.
    headers = signature_headers(SECRET, BODY, msg_id="msg_2")
    assert Webhook(SECRET).verify(BODY, headers) == {"topic": "Orders.Completed", "data": {"plate": "P-1"}}


def test_reference_signature_verifies_here_and_any_v1_of_several_passes() -> None:
    now = int(time.time())
    theirs = Webhook(SECRET).sign("msg_9", datetime.fromtimestamp(now, UTC), BODY.decode())
    other = sign("whsec_" + base64.b64encode(b"x" * 32).decode(), "msg_9", now, BODY)
    headers = {"webhook-id": "msg_9", "webhook-timestamp": str(now), "webhook-signature": f"v1a,AAAA {other} {theirs}"}
    verified = verify(headers, BODY, [parse_secret(SECRET)])
    assert (verified.msg_id, verified.timestamp) == ("msg_9", now)


def test_binary_body_is_signed_as_bytes() -> None:
    body = bytes(range(256))  # a gzip body is not UTF-8; the reference package cannot verify it
    headers = signature_headers(SECRET, body)
    assert verify(headers, body, [parse_secret(SECRET)]).msg_id.startswith("msg_")


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"webhook-id": ""}, 401, "missing"),
        ({"webhook-signature": ""}, 401, "missing"),
        ({"webhook-timestamp": "soon"}, 403, "malformed"),
        ({"webhook-signature": "v1,bm90IGl0"}, 403, "forbidden"),
        ({"webhook-signature": "v2,whatever"}, 403, "forbidden"),
        ({"webhook-id": "msg_other"}, 403, "forbidden"),  # the id is covered by the signature
    ],
)
def test_refusals_say_which(change: dict[str, str], status: int, reason: str) -> None:
    headers = {**signature_headers(SECRET, BODY, msg_id="msg_1"), **change}
    with pytest.raises(WebhookSignatureError) as info:
        verify(headers, BODY, [parse_secret(SECRET)])
    assert (info.value.status, info.value.reason) == (status, reason)
    if reason == "missing":
        assert next(h for h, v in change.items() if not v) in info.value.detail


@pytest.mark.parametrize("offset", [-301, 301])
def test_timestamp_outside_the_window_is_stale(offset: int) -> None:
    now = time.time()
    headers = signature_headers(SECRET, BODY, timestamp=int(now) + offset)
    with pytest.raises(WebhookSignatureError) as info:
        verify(headers, BODY, [parse_secret(SECRET)], now=now)
    assert info.value.status == 403 and info.value.reason == "stale"
    assert "tolerance 300 s" in info.value.detail
    assert ("older than" if offset < 0 else "ahead of") in info.value.detail
    # Inside a wider window it passes.
    verify(headers, BODY, [parse_secret(SECRET)], now=now, tolerance=400)


def test_replay_guard_remembers_until_the_window_ends() -> None:
    guard = ReplayGuard(max_ids=3)
    guard.remember("a", timestamp=1000, tolerance=300, now=1000)
    assert guard.accepted_at("a", now=1299) == 1000
    assert guard.accepted_at("a", now=1301) is None, "after the window the timestamp check refuses it"
    for i, name in enumerate("bcde"):
        guard.remember(name, timestamp=2000 + i, tolerance=300, now=2000 + i)
    assert len(guard) == 3 and guard.accepted_at("b", now=2005) is None  # the oldest went first


def test_bad_secrets_are_refused_at_configuration() -> None:
    with pytest.raises(ValueError, match="base64"):
        parse_secret("whsec_not base64!")
    with pytest.raises(ConfigError, match="webhook_secret"):
        HTTPSettings.from_config({"routes": {"events": {"webhook_secret": "whsec_%%%"}}})
    with pytest.raises(ValueError, match="webhook_secret"):
        ForwarderSettings(base_url="http://x", webhook_secret="whsec_%%%")
    s = HTTPSettings.from_config({"routes": {"events": {"webhook_secret": SECRET}}})
    assert s.security("events").webhook_keys() == [parse_secret(SECRET)]
    assert not s.security("events").open and "events" not in s.open_intake()
    assert SECRET not in repr(s) + str(s.describe())
    assert s.describe()["routes"]["events"]["standard_webhooks"] is True
