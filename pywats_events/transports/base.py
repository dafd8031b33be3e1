"""The one contract every transport fills in, and what the bus offers transports in return.

Data flows one way: a transport decodes protocol bytes into events, hands them to an ``IngestSink`` (the
bus) with ``submit``, and settles the protocol message (ack, PUBACK, file move, HTTP 2xx) only when the
future ``submit`` returned has resolved. Bytes that cannot be decoded at all go to
``IngestSink.dead_letter_raw`` and are settled once that returns (they are durably stored then).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from ..errors import TransportSendNotSupported
from ..event import Event

__all__ = ["IngestSink", "RawRecord", "SettleResult", "Transport", "TransportState"]

log = logging.getLogger(__name__)


class TransportState(StrEnum):
    """Connection state of a transport, as reported in readiness and ``system.transport_*`` events."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """Input that could not be decoded into any event, kept whole so nothing is lost.

    Attributes:
        body: the bytes exactly as received.
        origin: where they came from (file path, ``amqp://host/queue#routing.key``, MQTT topic, URL path).
        transport: name of the transport that received them.
        reason: why they could not be decoded (the decoder's message).
        error_type: the exception class name (``InvalidJSONError``...).
        headers: transport metadata (AMQP properties, MQTT properties, HTTP headers).
        received_at: when the transport received them (UTC).
    """

    body: bytes
    origin: str
    transport: str
    reason: str
    error_type: str = "DecodeError"
    headers: dict[str, Any] = field(default_factory=dict)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(slots=True)
class SettleResult:
    """What became of the deliveries of one submitted batch of events.

    Attributes:
        events: number of events in the batch.
        handled: deliveries that succeeded (handler returned).
        skipped: deliveries not run because the idempotency record shows they already succeeded.
        dead_lettered: deliveries durably stored in the dead-letter queue (failed, unrecoverable or parked
            because the handler's circuit was open).
        unrouted: events that matched no handler.
    """

    events: int = 0
    handled: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    unrouted: int = 0

    def merge(self, other: SettleResult) -> None:
        """Add ``other``'s counts into this one."""
        self.events += other.events
        self.handled += other.handled
        self.skipped += other.skipped
        self.dead_lettered += other.dead_lettered
        self.unrouted += other.unrouted


class IngestSink(Protocol):
    """What a transport talks to (implemented by ``EventBus``)."""

    async def submit(
        self, events: Sequence[Event], *, transport: str = "", redelivered: bool | None = None
    ) -> asyncio.Future[SettleResult]:
        """Queue ``events`` for delivery; wait while the bus is full (backpressure).

        Returns a future that resolves when every delivery the events produced has succeeded or is
        durably in the dead-letter queue (only then may the transport settle its message). The future
        never raises for handler failures.

        Args:
            events: decoded events of one protocol message (may be empty: resolves at once).
            transport: name of the submitting transport (metrics, dead-letter records).
            redelivered: ``False`` when the protocol guarantees this is a first delivery; ``None`` (do not
                know) or ``True`` make the bus consult idempotency records. A hint only.

        Raises:
            BusClosedError: the bus is not running.
        """
        ...

    async def dead_letter_raw(self, record: RawRecord) -> str:
        """Durably store undecodable input in the dead-letter queue; returns the entry id."""
        ...

    def transport_state_changed(
        self, transport: Transport, old: TransportState, new: TransportState, detail: str | None
    ) -> None:
        """Told by a transport each time its state changes (emits ``system.transport_*`` events)."""
        ...


class Transport(abc.ABC):
    """Base class of every transport.

    Subclasses implement ``start`` and ``stop`` and may override ``send``. They report state changes with
    ``_set_state`` and hand decoded events to ``self.sink`` (bound by the bus before ``start``).

    Args:
        name: unique name of this transport instance within a bus (``cfx``, ``mqtt-line1``...).
    """

    #: Short kind name shown in metrics and readiness (``mock``, ``file``, ``cfx``, ``mqtt``, ``webhook``).
    kind: str = "transport"

    def __init__(self, name: str) -> None:
        self.name = name
        self._state = TransportState.DISCONNECTED
        self._sink: IngestSink | None = None
        self.last_error: str | None = None

    @property
    def state(self) -> TransportState:
        """The current connection state."""
        return self._state

    @property
    def sink(self) -> IngestSink:
        """The bus this transport feeds.

        Raises:
            RuntimeError: the transport was not added to a bus.
        """
        if self._sink is None:
            raise RuntimeError(f"transport {self.name!r} is not bound to a bus; use bus.add_transport()")
        return self._sink

    def bind(self, sink: IngestSink) -> None:
        """Attach the transport to the bus that will receive its events (done by ``EventBus.add_transport``)."""
        self._sink = sink

    def _set_state(self, new: TransportState, detail: str | None = None) -> None:
        old = self._state
        if old == new:
            return
        self._state = new
        if new is TransportState.ERROR:
            self.last_error = detail
        log.info("transport %s: %s -> %s%s", self.name, old, new, f" ({detail})" if detail else "")
        if self._sink is not None:
            self._sink.transport_state_changed(self, old, new, detail)

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect and begin consuming. Returns once consuming has begun (or reconnection is scheduled).

        Raises:
            TransportError: the settings are unusable (bad URL, missing folder); transient network
                failures do not raise but move the state to RECONNECTING.
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop consuming, wait for in-flight messages to settle where possible, and disconnect."""

    async def send(self, event: Event) -> None:
        """Publish ``event`` through this transport's protocol.

        Raises:
            TransportSendNotSupported: the protocol cannot publish.
            TransportError: the publish failed.
        """
        raise TransportSendNotSupported(f"transport {self.name!r} ({self.kind}) cannot send events")

    def describe(self) -> dict[str, Any]:
        """State summary for readiness and the admin API (no secrets)."""
        return {"name": self.name, "kind": self.kind, "state": self._state.value, "last_error": self.last_error}
