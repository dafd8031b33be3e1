"""Transport ``lines``: a TCP server where each line is one message, acknowledged on the same connection.

The protocol part is all this module holds; decoding, dead-lettering, submitting and deciding when to
settle are the core's (``Transport.intake``). Settlement here means writing ``ACK <n>`` (the bus is done
with line ``n`` of this connection: handled or durably dead-lettered) or ``NAK <n>`` (the outcome could
not be recorded: the sender keeps the line and sends it again).
"""

import asyncio
from typing import Any

from pydantic import ValidationError

from pywats_events import ConfigError, InboundMessage, SettleResult, Transport, TransportState

from .errors import LinesError
from .settings import LinesSettings

__all__ = ["LinesTransport"]


class _Line(InboundMessage):
    """One line of one connection; ``ack``/``settle_failed`` answer on that connection."""

    __slots__ = ("_number", "_writer")

    def __init__(self, body: bytes, number: int, writer: asyncio.StreamWriter, **kw: Any) -> None:
        super().__init__(body, **kw)
        self._number = number
        self._writer = writer

    async def ack(self, result: SettleResult) -> None:
        await self._answer(f"ACK {self._number}\n")

    async def settle_failed(self, exc: BaseException) -> None:
        await self._answer(f"NAK {self._number}\n")

    async def _answer(self, text: str) -> None:
        if self._writer.is_closing():
            return  # the sender went away: it never saw an ACK, so it sends the line again
        self._writer.write(text.encode())
        try:
            await self._writer.drain()
        except ConnectionError:
            pass


class LinesTransport(Transport):
    """Newline-delimited messages over TCP.

    Args:
        name: transport name.
        settings: see ``LinesSettings``.

    Raises:
        LinesError: from ``start``, when the address cannot be listened on.
    """

    kind = "lines"
    settings_model = LinesSettings

    def __init__(self, name: str = "lines", settings: LinesSettings | None = None) -> None:
        super().__init__(name)
        self.settings = settings or LinesSettings()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> "LinesTransport":
        """Build from a ``[[transports]]`` table. Raises ``ConfigError`` naming the bad option."""
        try:
            return cls(name, LinesSettings(**options))
        except ValidationError as exc:
            raise ConfigError.from_validation(exc, f"transport {name!r}: ") from None

    @property
    def port(self) -> int:
        """The port actually listened on (useful with ``port = 0``)."""
        if self._server is None:
            return self.settings.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._set_state(TransportState.CONNECTING)
        try:
            self._server = await asyncio.start_server(
                self._serve, self.settings.host, self.settings.port, limit=self.settings.max_line_bytes
            )
        except OSError as exc:
            self._set_state(TransportState.ERROR, str(exc))
            raise LinesError(f"transport {self.name!r}: cannot listen on "
                             f"{self.settings.host}:{self.settings.port}: {exc}") from None
        self._set_state(TransportState.CONNECTED, f"listening on {self.settings.host}:{self.port}")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self.drain_settlements(timeout=5.0)
            self._server = None
        self._set_state(TransportState.DISCONNECTED)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        number = 0
        pending: set[asyncio.Future[SettleResult]] = set()
        try:
            while line := await reader.readline():
                number += 1
                if not line.strip():
                    continue
                message = _Line(
                    line.rstrip(b"\r\n"), number, writer,
                    origin=f"tcp://{peer}#line {number}", decoder=self.settings.decoder,
                    headers={"transport": self.name, "peer": peer},
                )
                settled = await self.intake(message)  # returns once queued; ACK follows when the bus is done
                pending.add(settled)
                settled.add_done_callback(pending.discard)
        except (ValueError, asyncio.LimitOverrunError):
            writer.write(b"ERR line too long\n")
        except ConnectionError:
            pass
        finally:
            self._connections.discard(task)
            if pending:  # a sender that half-closed still gets the answers it waits for
                await asyncio.wait(pending, timeout=30.0)
            writer.close()
