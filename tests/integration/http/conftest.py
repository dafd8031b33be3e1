"""Fixtures: a real uvicorn server on a random loopback port serving a real bus."""

from __future__ import annotations

import asyncio
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


@pytest.fixture
async def start_app() -> AsyncIterator[Callable[[Any], Any]]:
    """``url = await start_app(asgi_app)``: serve any ASGI app with uvicorn on a free loopback port (a
    stand-in remote service for client tests)."""
    import socket

    import uvicorn

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[no-untyped-def]
            yield

    servers: list[tuple[Any, Any, socket.socket]] = []

    async def start(app: Any) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        server = Quiet(uvicorn.Config(app, log_level="error", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
            await asyncio.sleep(0.01)
        servers.append((server, task, sock))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, task, sock in servers:
        server.should_exit = True
        await task
        sock.close()
