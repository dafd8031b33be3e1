"""``MockTransport``: the test double. Use it to test your handlers without any broker.

```python
mock = MockTransport()
bus = EventBus()
bus.add_transport(mock)
bus.register(MyHandler())
async with bus:
    result = await mock.inject(Event(type="test.result", source="ict-1", payload={"result": "fail"}))
    assert result.handled == 1
    await mock.inject_raw(b"not json")          # goes to the dead-letter queue, like real bad input
    await mock.simulate_disconnect()             # state events and readiness, as a real broker drop
```

Under pytest the package's plugin (``pywats_events.pytest_plugin``, loaded through the ``pytest11`` entry
point) offers the fixtures ``event_bus`` and ``mock_transport`` (already added to that bus), and runs the
async tests that take them without any ``asyncio_mode`` setting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any

from ..codec import Decoder, get_decoder
from ..errors import TransportError
from ..event import Event
from ..transport import InboundMessage, SettleResult, Transport, TransportState

__all__ = ["MockTransport"]


class MockTransport(Transport):
    """An in-process transport: inject events or raw bytes, record what handlers ``send``.

    Args:
        name: transport name (default ``mock``).
        decoder: decoder name or function for ``inject_raw`` (default ``auto``: CFX or event JSON).
        fail_send: when set, ``send`` raises ``TransportError`` with this message (to test failures).
    """

    kind = "mock"

    def __init__(self, name: str = "mock", *, decoder: str | Decoder = "auto", fail_send: str | None = None) -> None:
        super().__init__(name)
        self._decoder = get_decoder(decoder) if isinstance(decoder, str) else decoder
        self.decoder_name = decoder if isinstance(decoder, str) else getattr(decoder, "__name__", "custom")
        self._decoders[self.decoder_name] = self._decoder
        self.sent: list[Event] = []
        self.fail_send = fail_send
        self.settled: list[SettleResult] = []
        #: Why a message could not be settled (the store refused to record its outcome), in order.
        self.settle_failures: list[BaseException] = []

    async def start(self) -> None:
        self._set_state(TransportState.CONNECTING)
        self._set_state(TransportState.CONNECTED)

    async def stop(self) -> None:
        self._set_state(TransportState.DISCONNECTED)

    async def send(self, event: Event) -> None:
        """Record ``event`` in ``sent`` (or raise ``TransportError`` when ``fail_send`` is set)."""
        if self.fail_send:
            raise TransportError(self.fail_send)
        if self.state is not TransportState.CONNECTED:
            raise TransportError(f"mock transport {self.name!r} is {self.state.value}")
        self.sent.append(event)

    def _check(self) -> None:
        if self.state is not TransportState.CONNECTED:
            raise TransportError(f"mock transport {self.name!r} is {self.state.value}; cannot inject")

    async def inject(self, *events: Event, redelivered: bool = False) -> SettleResult:
        """Deliver ``events`` as one message and wait until settled; returns the settlement.

        Args:
            redelivered: pretend the broker redelivered the message (idempotency records are consulted).

        Raises:
            TransportError: the mock is not CONNECTED (see ``simulate_disconnect``).
        """
        future = await self.inject_nowait(events, redelivered=redelivered)
        result = await future
        self.settled.append(result)
        return result

    def inject_event(self, event: Event, *, redelivered: bool = False) -> Awaitable[SettleResult]:
        """Deliver one event and wait until settled (the pyWATS document's name for ``inject``).

        Await it inside the bus's loop; from synchronous code (a bus started with ``bus.start()`` outside
        any loop, as the document's test does) it runs on the bus's loop and returns once the event is
        settled, holding the ``SettleResult`` (``.result()``).

        Raises:
            TransportError: the mock is not CONNECTED. BusClosedError: the bus is not running.
        """
        run_on_loop = getattr(self.sink, "run_on_loop", None)
        coro = self.inject(event, redelivered=redelivered)
        return run_on_loop(coro) if run_on_loop is not None else coro

    def inject_nowait(
        self, events: Sequence[Event], *, redelivered: bool = False
    ) -> Awaitable[asyncio.Future[SettleResult]]:
        """Queue ``events`` as one message and return the settlement future without waiting for it (await
        this call: it waits only while the bus is full). For load tests and benchmarks.

        Raises:
            TransportError: the mock is not CONNECTED.
        """
        if self._state is not TransportState.CONNECTED or self._sink is None:
            self._check()
            _ = self.sink  # raises: not bound to a bus
        return self._sink.submit(events, transport=self.name, redelivered=redelivered)  # type: ignore[union-attr]

    async def inject_many(self, events: Iterable[Event]) -> SettleResult:
        """Deliver each event as its own message, keeping the bus busy; wait for all; summed settlement."""
        futures = [await self.inject_nowait((e,)) for e in events]
        total = SettleResult()
        for f in futures:
            total.merge(await f)
        return total

    async def inject_raw(
        self,
        body: bytes,
        *,
        origin: str = "mock",
        source: str | None = None,
        redelivered: bool = False,
        headers: Mapping[str, Any] | None = None,
    ) -> SettleResult:
        """Decode ``body`` with the transport's decoder and deliver the events as one message; bytes that
        cannot be decoded are dead-lettered as raw input (``SettleResult.dead_lettered`` = 1, events 0).

        Args:
            headers: protocol headers of the message (as a broker transport puts AMQP headers or MQTT 5
                user properties into ``InboundMessage.headers``: ``traceparent``...), copied into the
                events' headers.

        Raises:
            TransportError: the mock is not CONNECTED.
        """
        self._check()
        message = _MockMessage(
            self, body, origin=origin, decoder=self.decoder_name, source=source,
            headers={**(headers or {}), "transport": self.name}, redelivered=redelivered,
        )
        return await (await self.intake(message))

    async def simulate_disconnect(self, detail: str = "simulated disconnect") -> None:
        """Go RECONNECTING as a real transport does when its broker drops (``inject`` then fails)."""
        self._set_state(TransportState.RECONNECTING, detail)

    async def simulate_reconnect(self) -> None:
        """Come back: CONNECTED again."""
        self._set_state(TransportState.CONNECTED)

    async def simulate_error(self, detail: str = "simulated error") -> None:
        """Go to ERROR with ``detail`` as the reason."""
        self._set_state(TransportState.ERROR, detail)


class _MockMessage(InboundMessage):
    """A raw message of ``MockTransport.inject_raw``: acking records the settlement in ``settled``."""

    __slots__ = ("_transport",)

    def __init__(self, transport: MockTransport, body: bytes, **kw: Any) -> None:
        super().__init__(body, **kw)
        self._transport = transport

    async def ack(self, result: SettleResult) -> None:
        self._transport.settled.append(result)

    async def settle_failed(self, exc: BaseException) -> None:
        self._transport.settle_failures.append(exc)
