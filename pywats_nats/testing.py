"""A test double for ``NATSTransport``: JetStream messages in without a server, acknowledgements recorded.

``NATSTestTransport`` is a ``NATSTransport`` whose connection is replaced, nothing else: a message
given to ``deliver`` goes in through the public ``NATSTransport.receive`` (the path of every fetched
message), (subject, headers, body, delivery count, stream sequence) runs through the real subject
mapping, decoders, bus submission, settlement, ``nak`` backoff, ``max_deliver`` dead-lettering and
``in_progress`` logic, and every acknowledgement the transport sends is recorded on the returned
``TestMessage``. ``send`` records what would be published instead of publishing. Use it to test your
handlers and mapping rules the way ``MockTransport`` tests plain events::

    from pywats_events import EventBus
    from pywats_nats.testing import NATSTestTransport

    t = NATSTestTransport(rules=[{"subject": "line1.{station}.results", "type": "test.result"}])
    bus = EventBus()
    bus.add_transport(t)
    async with bus:
        msg = await t.deliver("line1.ict-1.results", b'{"serial": "SN1"}')
        assert await msg.settled() == "ack"
        again = await t.deliver("line1.ict-1.results", b'{"serial": "SN1"}', delivered=2, seq=msg.seq)
        assert await again.settled() == "ack"   # same event id: idempotency skipped the handlers
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from pywats_events.transport import TransportState

from .settings import NATSSettings
from .transport import MSG_ID_HEADER, NATSTransport

__all__ = ["NATSTestTransport", "Published", "TestMessage"]

#: Acknowledgement kinds that end a delivery (``+WPI``, in progress, does not).
FINAL_ACKS = frozenset({"ack", "nak", "term"})


class TestMessage:
    """A JetStream message as the transport sees it, recording the acknowledgements sent for it.

    Args:
        subject: the message's subject.
        data: the body bytes.
        headers: NATS headers (``Nats-Msg-Id``...), or ``None``.
        delivered: the delivery count JetStream would report (``num_delivered``; 1 for a first delivery).
        seq: the stream sequence.
        stream / consumer: names reported in the metadata.

    Attributes:
        acks: acknowledgements in the order sent: ``"ack"``, ``"nak"``, ``"in_progress"``, ``"term"``.
        nak_delays: the delay (seconds, or ``None``) of each ``nak``.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        subject: str,
        data: bytes,
        headers: dict[str, str] | None,
        *,
        delivered: int,
        seq: int,
        stream: str,
        consumer: str,
    ) -> None:
        self.subject = subject
        self.data = data
        self.headers = headers
        self.reply = f"$JS.ACK.{stream}.{consumer}.{delivered}.{seq}.{seq}.0.0"
        self.metadata = SimpleNamespace(
            num_delivered=delivered,
            sequence=SimpleNamespace(stream=seq, consumer=seq),
            stream=stream,
            consumer=consumer,
            num_pending=0,
            timestamp=None,
        )
        self.acks: list[str] = []
        self.nak_delays: list[float | None] = []
        self._final = asyncio.Event()

    @property
    def seq(self) -> int:
        """The stream sequence."""
        return int(self.metadata.sequence.stream)

    def _record(self, kind: str) -> None:
        self.acks.append(kind)
        if kind in FINAL_ACKS:
            self._final.set()

    async def ack(self) -> None:
        """Record an acknowledgement (``+ACK``)."""
        self._record("ack")

    async def nak(self, delay: float | None = None) -> None:
        """Record a negative acknowledgement (``-NAK``) with its redelivery delay in seconds."""
        self.nak_delays.append(delay)
        self._record("nak")

    async def in_progress(self) -> None:
        """Record a work-in-progress signal (``+WPI``)."""
        self._record("in_progress")

    async def term(self) -> None:
        """Record a termination (``+TERM``)."""
        self._record("term")

    @property
    def final(self) -> str | None:
        """The acknowledgement that ended this delivery (``ack``, ``nak``, ``term``), or ``None`` yet."""
        return next((a for a in reversed(self.acks) if a in FINAL_ACKS), None)

    async def settled(self, timeout: float = 5.0) -> str:
        """Wait until the transport ended this delivery; returns ``ack``, ``nak`` or ``term``.

        Raises:
            TimeoutError: nothing final was sent within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            await self._final.wait()
        final = self.final
        assert final is not None
        return final


@dataclass(frozen=True)
class Published:
    """What ``send`` would have published: subject, body bytes and NATS headers."""

    subject: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def msg_id(self) -> str | None:
        """The ``Nats-Msg-Id`` header (the event id)."""
        return self.headers.get(MSG_ID_HEADER)


class NATSTestTransport(NATSTransport):
    """``NATSTransport`` without a server (see the module text).

    Args:
        name: transport name within the bus (default ``nats``).
        settings: a ``NATSSettings``; or give its fields as keyword ``options`` instead.
        options: ``NATSSettings`` fields; ``rules`` is the one you need.

    Attributes:
        published: what ``send`` published, in order.
    """

    def __init__(self, name: str = "nats", settings: NATSSettings | None = None, **options: Any) -> None:
        super().__init__(name, settings, **options)
        self.published: list[Published] = []
        self._seq = itertools.count(1)

    async def _open(self) -> None:
        """Nothing to connect to."""

    async def _close(self) -> None:
        """Nothing to disconnect."""

    async def _publish(self, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self.published.append(Published(subject, body, dict(headers)))

    async def deliver(
        self,
        subject: str,
        body: bytes | str,
        *,
        headers: dict[str, str] | None = None,
        delivered: int = 1,
        seq: int | None = None,
    ) -> TestMessage:
        """Hand one JetStream message to the transport as a fetch would, and return it.

        Args:
            subject: the subject it was published to.
            body: its body (``str`` is encoded as UTF-8).
            headers: its NATS headers (``{"Nats-Msg-Id": "r-1"}``).
            delivered: ``num_delivered`` (1 the first time; more for a redelivery).
            seq: the stream sequence (default the next one); give the same value to redeliver a message.

        Returns:
            The message; ``await msg.settled()`` waits for its ack or nak.

        Raises:
            RuntimeError: the transport is not started (add it to a running bus first).
        """
        if self.state is TransportState.DISCONNECTED:
            raise RuntimeError(f"transport {self.name!r} is not started; add it to a bus and start the bus")
        msg = TestMessage(
            subject,
            body.encode() if isinstance(body, str) else body,
            headers,
            delivered=delivered,
            seq=next(self._seq) if seq is None else seq,
            stream=self.settings.stream,
            consumer=self.settings.durable,
        )
        await self.receive(msg)  # type: ignore[arg-type]  # duck-typed like nats.aio.msg.Msg
        return msg
