"""Running the app on uvicorn inside the service's own event loop.

The command line owns SIGINT/SIGTERM: uvicorn installs no signal handlers here. Stop the server with
``Server.stop()`` (or by cancelling ``serve``); either sets uvicorn's ``should_exit``, which stops
accepting connections and lets open requests finish for up to ``graceful_timeout`` seconds.

At start-up each open intake route group (no token, no HMAC secret) is logged at WARNING; bound to an
address that is not loopback, open intake refuses to start unless ``allow_open_intake`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn

from ..bus import EventBus
from .app import create_app
from .errors import HTTPServerError
from .settings import HTTPSettings

__all__ = ["Server", "serve"]

log = logging.getLogger(__name__)


class _Uvicorn(uvicorn.Server):
    """uvicorn's server without its signal handling (the caller owns the signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket ourselves: uvicorn would ``sys.exit`` on a bind error, and a port of 0
    needs the socket to learn which port the system chose."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise HTTPServerError(f"cannot resolve HTTP host {host!r}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise HTTPServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class Server:
    """The HTTP server of one bus.

    Args:
        bus: the bus to serve.
        settings: HTTP settings (address, limits, credentials).

    Attributes:
        app: the Starlette app (``create_app(bus, settings)``).
        port: the port actually bound (useful with ``port = 0``), set by ``start``.
    """

    def __init__(self, bus: EventBus, settings: HTTPSettings | None = None) -> None:
        self.settings = settings or HTTPSettings()
        self.bus = bus
        self.app = create_app(bus, self.settings)
        self.transport = self.app.state.ctx.transport
        self.port: int = self.settings.port
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        """Base URL, ``http://host:port``."""
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    async def start(self) -> None:
        """Bind, start serving, and return once connections are accepted; the webhook transport is then
        CONNECTED.

        Raises:
            HTTPServerError: the address cannot be bound, or the server failed to start.
        """
        if self._task is not None:
            return
        s = self.settings
        self._sock = _bind(s.host, s.port)
        self.port = int(self._sock.getsockname()[1])
        try:
            self._check_open_intake(str(self._sock.getsockname()[0]))
        except HTTPServerError:
            self._sock.close()
            self._sock = None
            raise
        config = uvicorn.Config(
            self.app,
            log_level=s.log_level,
            access_log=s.access_log,
            lifespan="off",
            timeout_graceful_shutdown=s.graceful_timeout,
            server_header=False,
        )
        server = self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._run(server, self._sock), name="pywats-http")
        while not server.started:
            if self._task.done():
                await self._task  # re-raises the startup failure
                raise HTTPServerError("the HTTP server stopped during startup")
            await asyncio.sleep(0.01)
        self.transport.set_serving(True)
        log.info("HTTP server listening on %s", self.url)

    def _check_open_intake(self, bound: str) -> None:
        """Warn about open intake routes; refuse them on a non-loopback address unless allowed.

        Args:
            bound: the IP address the socket is bound to (``0.0.0.0`` and ``::`` are not loopback).

        Raises:
            HTTPServerError: open intake on a non-loopback address without ``allow_open_intake``.
        """
        open_groups = self.settings.open_intake()
        if not open_groups:
            return
        loopback = ipaddress.ip_address(bound.split("%", 1)[0]).is_loopback
        for group in open_groups:
            log.warning(
                "HTTP intake %r is open: anyone who can reach %s may post events; set [http.routes.%s] tokens, "
                "hmac_secret or webhook_secret (or PYWATS_HTTP_ROUTES__%s__TOKENS)",
                group,
                self.url,
                group,
                group.upper(),
            )
        if not loopback and not self.settings.allow_open_intake:
            raise HTTPServerError(
                f"refusing to serve open intake route(s) {', '.join(open_groups)} on {self.settings.host} "
                "(not a loopback address): give them tokens, an hmac_secret or a webhook_secret "
                "([http.routes.<group>], "
                'PYWATS_HTTP_ROUTES__<GROUP>__TOKENS), bind host = "127.0.0.1", or set '
                "[http] allow_open_intake = true"
            )

    async def _run(self, server: _Uvicorn, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:
            raise HTTPServerError("the HTTP server failed to start (see the log)") from None
        finally:
            self.transport.set_serving(False)

    async def stop(self) -> None:
        """Stop accepting connections, let open requests finish (``graceful_timeout``), and return."""
        task, server = self._task, self._server
        if task is None or server is None:
            return
        self.transport.set_serving(False)
        server.should_exit = True
        try:
            await task
        finally:
            self._task = None
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def wait(self) -> None:
        """Wait until the server stops (``stop`` elsewhere, or a failure, which is raised here)."""
        if self._task is not None:
            await asyncio.shield(self._task)


async def serve(bus: EventBus, settings: HTTPSettings | None = None, *, ready: asyncio.Event | None = None) -> None:
    """Serve ``bus`` over HTTP until cancelled (or until the server fails).

    Args:
        bus: the bus (started by the caller; requests are answered 503 while it is not running).
        settings: HTTP settings.
        ready: set once the server accepts connections.

    Raises:
        HTTPServerError: the address cannot be bound or the server failed.
    """
    server = Server(bus, settings)
    await server.start()
    if ready is not None:
        ready.set()
    try:
        await server.wait()
    finally:
        await server.stop()
