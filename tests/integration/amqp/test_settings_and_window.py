"""Settings validation and secrets, the acknowledgement window, and the published message format.

Pure tests (no broker) except the last one, which connects to a port where nothing listens to prove the
password stays out of logs, state details and ``describe()``.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywats_cfx.publisher import envelope_message, event_message
from pywats_cfx.settings import CFXSettings
from pywats_cfx.transport import CFXTransport, _AckWindow
from pywats_events.bus import EventBus
from pywats_events.errors import ConfigError
from pywats_events.event import Event
from pywats_events.transport import TransportState


def test_from_config_names_the_bad_key() -> None:
    with pytest.raises(ConfigError, match="'prefetch'"):
        CFXTransport.from_config("cfx", {"prefetch": 0})
    with pytest.raises(ConfigError, match="'exchnage'"):
        CFXTransport.from_config("cfx", {"exchnage": "cfx"})
    with pytest.raises(ConfigError, match="'decoder'"):
        CFXTransport.from_config("cfx", {"decoder": "no-such-decoder"})
    with pytest.raises(ConfigError, match="scheme must be amqp or amqps") as info:
        CFXTransport.from_config("cfx", {"url": "http://user:hunter2@host/"})
    assert "hunter2" not in str(info.value)


def test_defaults_follow_cfx_conventions() -> None:
    s = CFXSettings()
    assert (s.exchange, s.exchange_type, s.binding_keys) == ("cfx", "topic", ["#"])
    assert s.dlx_name == s.dlq_name == "pywats-events.cfx.dead-letter"


def test_password_never_shown() -> None:
    t = CFXTransport.from_config("cfx", {"url": "amqps://line1:hunter2@broker.local:5671/factory"})
    s = t.settings
    assert s.redacted_url == "amqps://line1:***@broker.local:5671/factory"
    for text in (repr(t), repr(s), str(t.describe()), str(s.describe()), s.model_dump_json()):
        assert "hunter2" not in text
    assert "hunter2" in s.connection_url()  # only the connection itself gets it
    over = CFXSettings(url="amqp://line1@broker.local/", password="p@ss/word")  # type: ignore[arg-type]
    assert over.connection_url() == "amqp://line1:p%40ss%2Fword@broker.local/"


def test_tls_files_switch_tls_on_and_unreadable_files_are_a_config_error() -> None:
    s = CFXSettings(url="amqp://u:p@h/", ca_file="/nonexistent/ca.pem")  # type: ignore[arg-type]
    assert s.uses_tls and s.connection_url().startswith("amqps://")
    with pytest.raises(ConfigError, match="TLS files"):
        s.ssl_context()
    with pytest.raises(ValueError, match="cert_file and key_file go together"):
        CFXSettings(cert_file="/x/cert.pem")  # type: ignore[arg-type]


async def test_connection_failures_log_no_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    t = CFXTransport(
        "cfx",
        url="amqp://line1:hunter2@127.0.0.1:1/",
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.05,
        connect_timeout=1,
    )
    bus = EventBus()
    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.RECONNECTING  # start() does not raise for an unreachable broker
        assert not bus.readiness()[0]
        assert t.last_error
    assert "hunter2" not in caplog.text
    assert "hunter2" not in str(t.describe()) and "hunter2" not in (t.last_error or "")


def test_ack_window_acks_contiguous_runs_with_one_frame_and_never_past_an_unsettled_tag() -> None:
    w = _AckWindow(blocked_limit=100)
    for tag in range(1, 8):
        w.add(tag)
    for tag in (2, 3, 5):
        w.resolve(tag, True)
    assert w.take() == []  # 1 is unsettled: nothing may be acked
    w.resolve(1, True)
    assert w.take() == [("ack", 3)]  # 1..3 in one multiple=True frame; 5 waits behind 4
    w.resolve(4, False)
    assert w.take() == [("nack", 4), ("ack", 5)]
    w.resolve(7, True)
    assert w.take(final=True) == [("one", 7)]  # on stop: settled ones behind 6 acked one by one
    assert len(w) == 1


async def test_ack_window_releases_settled_messages_stuck_behind_a_slow_one() -> None:
    # Through the real transport (pywats_cfx.testing): prefetch 12 lets 3 settled deliveries pile up
    # behind an unsettled one before they are acked one by one.
    from pywats_cfx import envelope_to_bytes
    from pywats_cfx.explorer import generate_envelope
    from pywats_cfx.testing import AckFrame, CFXTestBroker

    transport = CFXTransport(queue="q", prefetch=12)
    broker = CFXTestBroker(transport)
    lanes = 16
    # The bus picks a lane by hash(source) % concurrency (str hashes differ per process): a source per
    # lane, so the fast deliveries never queue behind the slow one.
    sources: list[str] = []
    for k in range(1000):
        if len(sources) < 5 and hash(f"station-{k}") % lanes not in {hash(x) % lanes for x in sources}:
            sources.append(f"station-{k}")
    bus = EventBus(concurrency=lanes, emit_system_events=False)
    bus.add_transport(transport)
    slow = asyncio.Event()

    @bus.subscribe("system.heartbeat")
    async def handle(event: Event) -> None:
        if event.source == sources[0]:
            await slow.wait()

    def body(i: int) -> bytes:
        envelope = generate_envelope("heartbeat", seq=i)
        envelope["Source"] = envelope["MessageBody"]["CFXHandle"] = sources[i - 1]
        return envelope_to_bytes(envelope)

    async with bus:
        first = broker.deliver(body(1), routing_key="st.CFX.Heartbeat")
        tags = [broker.deliver(body(i), routing_key="st.CFX.Heartbeat") for i in (2, 3, 4)]
        assert [await broker.settled(t) for t in tags] == ["ack"] * 3  # the prefetch window is not held hostage
        assert broker.frames == [AckFrame("ack", t) for t in tags] and broker.outcome(first) is None
        slow.set()
        last = broker.deliver(body(5), routing_key="st.CFX.Heartbeat")
        assert [await broker.settled(first), await broker.settled(last)] == ["ack", "ack"]
        # 2..4 are no longer outstanding, so multiple=True frames now cover 1 and 5
        assert all(f.multiple for f in broker.frames[3:]) and broker.frames[-1].tag == last


@given(st.permutations(list(range(1, 41))), st.sets(st.integers(1, 40)), st.integers(1, 10))
def test_ack_window_property_no_unsettled_tag_is_ever_acked(order: list[int], nacks: set[int], limit: int) -> None:
    w = _AckWindow(blocked_limit=limit)
    for tag in range(1, 41):
        w.add(tag)
    acked: set[int] = set()
    nacked: set[int] = set()
    settled: set[int] = set()
    for tag in order:
        w.resolve(tag, tag not in nacks)
        settled.add(tag)
        for op, t in w.take():
            if op == "ack":  # multiple=True: every outstanding tag <= t
                covered = {x for x in range(1, t + 1) if x not in acked and x not in nacked}
                assert covered <= settled - nacks
                acked |= covered
            elif op == "one":
                assert t in settled and t not in nacks and t not in acked
                acked.add(t)
            else:
                assert t in nacks and t not in nacked
                nacked.add(t)
    for op, t in w.take(final=True):
        (acked if op != "nack" else nacked).add(t)
    assert acked == set(range(1, 41)) - nacks and nacked == nacks


def test_envelope_message_matches_the_cfx_sdk_conventions() -> None:
    env = {"MessageName": "CFX.Production.WorkStarted", "UniqueID": "u-1", "Source": "A.B.C", "MessageBody": {}}
    m = envelope_message(env, handle="Me.Here.1", gzip=True)
    assert m.routing_key == "A.B.C.CFX.Production.WorkStarted"
    assert m.message_id == "u-1"
    assert m.content_encoding == "gzip" and m.body[:2] == b"\x1f\x8b"
    assert m.headers == {
        "cfx-topic": "CFX.Production",
        "cfx-message": "CFX.Production.WorkStarted",
        "cfx-handle": "A.B.C",
    }
    batch = envelope_message([env, {**env, "UniqueID": "u-2"}], handle="Me.Here.1")
    assert batch.body.startswith(b"[") and batch.message_id == "u-1"
    with pytest.raises(ValueError, match="empty batch"):
        envelope_message([], handle="x")


def test_event_message_for_a_domain_event_is_normalized_json() -> None:
    ev = Event(type="test.result", source="ict-1", payload={"result": "pass"})
    m = event_message(ev, handle="Me.Here.1")
    assert m.routing_key == "Me.Here.1.pyWATS.test.result"
    assert m.content_type == "application/vnd.pywats.event+json"
    assert Event.from_json_dict(__import__("json").loads(m.body)).id == ev.id


def test_tls_context_loads_ca_and_client_certificate(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "client.key", tmp_path / "client.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pywats-test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    s = CFXSettings.from_options(
        {"url": "amqps://u:p@broker.local/", "ca_file": str(cert), "cert_file": str(cert), "key_file": str(key)}
    )
    ctx = s.ssl_context()
    assert ctx is not None and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert any(c.get("subject") == ((("commonName", "pywats-test"),),) for c in ctx.get_ca_certs())
    wrong = CFXSettings.from_options({"url": "amqps://u:p@h/", "cert_file": str(cert), "key_file": str(cert)})
    with pytest.raises(ConfigError, match="TLS files"):
        wrong.ssl_context()  # the certificate is not a private key


def test_connection_failures_name_url_without_password_user_and_vhost() -> None:
    s = CFXSettings(url="amqp://pywats:hunter2@broker.local:5672/line%2F1")
    assert s.where() == "URL amqp://pywats:***@broker.local:5672/line%2F1, user 'pywats', vhost 'line/1'"
    assert CFXSettings(url="amqp://broker").where() == "URL amqp://broker, user 'guest (default)', vhost '/'"


def test_size_limits_have_documented_defaults_and_are_validated() -> None:
    s = CFXSettings()
    assert (s.max_message_size, s.max_inflight_bytes) == (8 * 1024 * 1024, 64 * 1024 * 1024)
    assert s.describe()["max_message_size"] == 8 * 1024 * 1024
    with pytest.raises(ConfigError, match="max_message_size"):
        CFXSettings.from_options({"max_message_size": 100})
