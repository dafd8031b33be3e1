"""Open intake (no token, no HMAC secret): warned at start-up, refused on a non-loopback bind unless allowed.

Issue 9, defect 6. Real uvicorn servers on real sockets; the sample configuration as a user runs it.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import httpx
import pytest

from pywats_events import EventBus
from pywats_events.config import load_settings
from pywats_events.http import HTTPSettings, Server
from pywats_events.http.errors import HTTPServerError

from .conftest import ServiceFactory

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "http" / "pywats-events.toml"
EVENT = json.dumps({"type": "test.result", "source": "ict-1"}).encode()


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


async def test_each_open_intake_group_is_logged_at_warning_at_start(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pywats_events.http.server")
    await start_service(routes={"cfx": {"tokens": ["t"]}})
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "is open" in r.getMessage()]
    assert len(warned) == 2
    assert any("'events'" in m for m in warned) and any("'event_service'" in m for m in warned)
    assert not any("'cfx'" in m for m in warned)


async def test_protected_intake_logs_no_open_warning(
    start_service: ServiceFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pywats_events.http.server")
    await start_service(
        routes={"events": {"tokens": ["a"]}, "cfx": {"hmac_secret": "k"}, "event_service": {"tokens": ["b"]}}
    )
    assert not [r for r in caplog.records if "is open" in r.getMessage()]


async def test_open_intake_on_every_interface_refuses_to_start_and_releases_the_port() -> None:
    bus = EventBus()
    server = Server(bus, HTTPSettings(host="0.0.0.0", port=0))
    async with bus:
        with pytest.raises(HTTPServerError) as info:
            await server.start()
    message = str(info.value)
    assert "events" in message and "allow_open_intake" in message and "tokens" in message
    assert server._sock is None  # the listening socket was closed, nothing serves


async def test_open_intake_on_every_interface_starts_when_explicitly_allowed() -> None:
    bus = EventBus()
    server = Server(bus, HTTPSettings(host="0.0.0.0", port=0, allow_open_intake=True))
    async with bus:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                assert (await client.post("/events", content=EVENT)).status_code == 200
        finally:
            await server.stop()


async def test_protected_intake_on_every_interface_starts() -> None:
    bus = EventBus()
    routes = {"events": {"tokens": ["a"]}, "cfx": {"tokens": ["a"]}, "event_service": {"hmac_secret": "k"}}
    server = Server(bus, HTTPSettings(host="0.0.0.0", port=0, routes=routes))
    async with bus:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                assert (await client.post("/events", content=EVENT)).status_code == 401
        finally:
            await server.stop()


async def test_sample_configuration_with_the_exported_token_refuses_requests_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__EVENTS__TOKENS", '["ev-token"]')
    monkeypatch.setenv("PYWATS_HTTP_PORT", "0")  # the environment wins over the file's 8080
    settings = load_settings(SAMPLE, db="memory://")
    bus = EventBus()
    server = Server(bus, HTTPSettings.from_config(settings.http))
    async with bus:
        await server.start()
        try:
            assert server.port != 8080
            async with httpx.AsyncClient(base_url=server.url) as client:
                assert (await client.post("/events", content=EVENT)).status_code == 401
                ok = await client.post("/events", content=EVENT, headers={"Authorization": "Bearer ev-token"})
                assert ok.status_code == 200
        finally:
            await server.stop()
