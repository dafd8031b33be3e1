"""Fixtures: a real uvicorn server on a random loopback port serving a real bus."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pywats_events import EventBus
from pywats_events.http import HTTPSettings, Server


@dataclass
class Service:
    """A running bus and its HTTP server; ``client`` talks to it over loopback TCP."""

    bus: EventBus
    server: Server
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.server.url


ServiceFactory = Callable[..., Any]


@pytest.fixture
async def start_service() -> AsyncIterator[ServiceFactory]:
    """``await start_service(bus=None, **http_settings)``: start the bus and a server on port 0."""
    stack = contextlib.AsyncExitStack()

    async def start(bus: EventBus | None = None, **settings: Any) -> Service:
        bus = bus or EventBus()
        settings.setdefault("port", 0)
        server = Server(bus, HTTPSettings(**settings))
        await bus.start()
        stack.push_async_callback(bus.stop)
        await server.start()
        stack.push_async_callback(server.stop)
        client = httpx.AsyncClient(base_url=server.url, timeout=30)
        stack.push_async_callback(client.aclose)
        return Service(bus, server, client)

    async with stack:
        yield start
