"""The shared transport settings vocabulary and the one reconnect loop (real TCP connects on loopback)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import ClassVar

import pytest
from pydantic import Field, ValidationError

from pywats_events import MockTransport, TransportState
from pywats_events.transports.reconnect import ConnectFailedError, Reconnector
from pywats_events.transports.settings import ReconnectSettings, TLSSettings, TransportSettings


class BrokerSettings(TransportSettings):
    aliases: ClassVar[dict[str, str]] = {"prefetch": "max_in_flight"}
    deprecated: ClassVar[dict[str, str]] = {
        "stop_timeout": "drain_timeout", "reconnect_initial_delay": "reconnect.initial_delay",
    }
    queue: str = Field(default="q")


def test_protocol_word_is_a_documented_alias_without_warning(recwarn: pytest.WarningsRecorder) -> None:
    s = BrokerSettings(prefetch=64)  # type: ignore[call-arg]
    assert s.max_in_flight == 64
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_old_keys_still_work_with_a_deprecation_warning_naming_the_new_key() -> None:
    with pytest.warns(DeprecationWarning, match=r"'stop_timeout' is deprecated, use 'drain_timeout'"):
        s = BrokerSettings(stop_timeout=3.5)  # type: ignore[call-arg]
    assert s.drain_timeout == 3.5
    with pytest.warns(DeprecationWarning, match=r"use 'reconnect.initial_delay'"):
        s = BrokerSettings(reconnect_initial_delay=2.0, reconnect={"max_delay": 9.0})  # type: ignore[call-arg]
    assert (s.reconnect.initial_delay, s.reconnect.max_delay) == (2.0, 9.0)


def test_old_and_new_key_together_is_an_error_not_a_silent_choice() -> None:
    with pytest.raises(ValidationError, match="both 'prefetch' and 'max_in_flight' are set"):
        BrokerSettings(prefetch=1, max_in_flight=2)  # type: ignore[call-arg]


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="prefetchh"):
        BrokerSettings(prefetchh=1)  # type: ignore[call-arg]


def test_tls_cert_without_key_is_refused(tmp_path: object) -> None:
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        TLSSettings(cert_file="c.pem")  # type: ignore[arg-type]
    assert TLSSettings().client_context().check_hostname is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_reconnector_retries_until_the_server_is_up_and_reports_each_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    transport = MockTransport("line1")
    seen: list[TransportState] = []
    real_set_state = transport._set_state
    transport._set_state = lambda new, detail=None: (seen.append(new), real_set_state(new, detail))  # type: ignore[method-assign]
    rc = Reconnector(transport, ReconnectSettings(initial_delay=0.05, max_delay=0.2, jitter=0.01),
                     where=f"tcp://127.0.0.1:{port}", hint="check host and port")
    server: asyncio.Server | None = None

    async def attempt() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", port)

    async def start_server_later() -> None:
        nonlocal server
        await asyncio.sleep(0.4)
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)

    caplog.set_level(logging.WARNING)
    starter = asyncio.create_task(start_server_later())
    _, writer = await asyncio.wait_for(rc.connect(attempt), 10)
    writer.close()
    await starter
    assert server is not None
    server.close()
    assert seen[0] is TransportState.CONNECTING
    assert TransportState.RECONNECTING in seen
    assert seen[-1] is TransportState.CONNECTED and transport.state is TransportState.CONNECTED
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot connect (attempt 1" in w and "check host and port" in w for w in warnings)
    assert any("connected to tcp://127.0.0.1" in w for w in warnings)
    assert rc.failures == 0


async def test_reconnector_gives_up_after_the_bound_with_state_error() -> None:
    port = free_port()
    transport = MockTransport("line2")
    rc = Reconnector(transport, ReconnectSettings(initial_delay=0.05, max_delay=0.1, jitter=0, give_up_after=0.5),
                     where=f"tcp://127.0.0.1:{port}", hint="is the broker running?")
    t0 = time.monotonic()
    with pytest.raises(ConnectFailedError, match=r"gave up after 0.5 s.*is the broker running\?"):
        await rc.connect(lambda: asyncio.open_connection("127.0.0.1", port))
    assert 0.4 < time.monotonic() - t0 < 5
    assert transport.state is TransportState.ERROR
    assert "Connect" in (transport.last_error or "")


async def test_reconnector_does_not_retry_a_fatal_error() -> None:
    transport = MockTransport("line3")
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("malformed URL")

    rc = Reconnector(transport, ReconnectSettings(initial_delay=0.05), where="amqp://?", fatal=(ValueError,))
    with pytest.raises(ConnectFailedError, match="malformed URL"):
        await rc.connect(attempt)
    assert calls == 1
    assert transport.state is TransportState.ERROR
