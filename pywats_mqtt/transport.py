"""``MQTTTransport``: MQTT messages in (topic mapping rules to events), events out (``send``).

Delivery (QoS 1 subscriptions, the default):

1. A PUBLISH arrives; the transport maps it to events (``pywats_mqtt.mapping``) and hands it to
   ``Transport.intake``, which submits them to the bus. Messages no rule matches, or whose payload cannot
   be decoded, are stored whole in the dead-letter queue (reason ``unrouted`` or ``decode_error``).
2. The PUBACK is sent only when the bus has settled the message (every delivery succeeded or is durably
   dead-lettered). PUBACKs go out in arrival order (MQTT section 4.6), unless ``ack_in_order`` is off.
3. If the process dies first, the broker still holds the message in the persistent session and sends it
   again (DUP flag set) when the same client id reconnects. If settling fails (store down), the transport
   reconnects so that the broker redelivers: MQTT has no negative acknowledgement.

Flow control: at most ``max_in_flight`` messages are received but unsettled. That number is the MQTT 5
Receive Maximum, so the broker keeps the rest; if a broker sends more anyway (or QoS 0 floods in), the
transport stops reading the socket until the bus catches up.

Connection: reconnects through the shared ``Reconnector`` (exponential backoff with jitter), subscribes
again on every connection, and reports CONNECTING / CONNECTED / RECONNECTING / ERROR / DISCONNECTED to the bus. A birth
message (``online``) and a last will (``offline``) are kept retained on ``status_topic``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
from collections.abc import Callable, Mapping
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pywats_events import tracing
from pywats_events.codec import DecodeContext, register_decoder
from pywats_events.dead_letter import DeadLetterReason
from pywats_events.errors import BusClosedError
from pywats_events.event import Event
from pywats_events.transport import (
    InboundMessage,
    RawRecord,
    SettleResult,
    Transport,
    TransportState,
    return_large_buffers,
    too_large_record,
)
from pywats_events.transports.reconnect import ConnectFailedError, Reconnector

from .connection import MQTTConnection
from .errors import (
    MQTTConfigError,
    MQTTConnectError,
    MQTTError,
    MQTTPublishError,
    MQTTSubscribeError,
)
from .mapping import MappingRule, Template, TopicFilter, TopicMapper, filter_covers
from .settings import MQTTSettings

__all__ = ["MQTTTransport"]

log = logging.getLogger(__name__)

#: Fields a ``publish_topic`` template may use.
PUBLISH_FIELDS = ("type", "category", "source", "severity", "id")
#: Option keys ``MQTTTransport.reload`` applies while running; any other changed key needs a restart.
RELOADABLE = frozenset({"rules", "subscriptions", "qos"})
#: MQTT 5 user properties also copied to the top level of the message headers (W3C Trace Context).
TRACE_PROPERTIES = ("traceparent", "tracestate")


def _without_covered(subs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The subscriptions minus those another one covers at the same or a higher QoS, in the given order.

    A broker may send one copy of a message per matching subscription (Mosquitto does): with
    ``alarms/+/critical`` and ``alarms/+/+`` both subscribed, every critical alarm would arrive twice.
    Leaving out the covered filter changes nothing else: the mapping rules still decide what each
    message becomes.
    """
    kept: list[tuple[str, int]] = []
    for i, (flt, qos) in enumerate(subs):
        covered = False
        for j, (other, oqos) in enumerate(subs):
            if i == j or oqos < qos or not filter_covers(other, flt):
                continue
            # Equal filters cover each other: keep the first of them (at the highest QoS, checked above).
            if other == flt and j > i and oqos == qos:
                continue
            covered = True
            break
        if not covered:
            kept.append((flt, qos))
    return kept


def _permanent(exc: BaseException) -> bool:
    """A refused login or subscription: retrying cannot help until a setting changes (state ERROR)."""
    return isinstance(exc, MQTTSubscribeError) or (isinstance(exc, MQTTConnectError) and exc.permanent)


class _Inbound(InboundMessage):
    """One received PUBLISH on its way through ``Transport.intake``; ``ack`` is the ordered PUBACK."""

    __slots__ = (
        "dup", "followers", "generation", "key", "mid", "properties", "qos", "retain", "settled", "size", "topic",
        "transport",
    )

    def __init__(self, transport: MQTTTransport, message: paho.MQTTMessage, generation: int) -> None:
        topic: str = message.topic
        payload = bytes(message.payload)
        dup = bool(message.dup)
        super().__init__(
            payload,
            origin=transport._origin_prefix + topic,
            decoder=transport._decoder_name,
            redelivered=True if dup else None,
        )
        self.transport = transport
        self.topic = topic
        self.size = len(payload)
        self.qos: int = message.qos
        self.mid: int = message.mid
        self.dup = dup
        self.retain = bool(message.retain)
        self.properties = message.properties
        self.generation = generation
        self.settled = False
        #: Event ids of this message (merging copies); copies that arrived while it was settling.
        self.key: tuple[str, ...] = ()
        self.followers: list[_Inbound] = []

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        """The raw record of an undecodable or unrouted message (reason ``unrouted`` for the latter)."""
        if record.error_type == "UnroutedTopicError":
            record.headers["pywats-reason"] = DeadLetterReason.UNROUTED
        return record

    async def ack(self, result: SettleResult) -> None:
        """Settled: PUBACK this message (and copies merged with it) in arrival order."""
        self.transport._settled_ok(self)

    def ack_nowait(self, result: SettleResult) -> bool:
        """A PUBACK is only written to the socket buffer: settled at once, without a task."""
        self.transport._settled_ok(self)
        return True

    async def settle_failed(self, exc: BaseException) -> None:
        """Not recorded: no PUBACK; the transport reconnects so that the broker redelivers it."""
        self.transport._settled_failed(self, exc)


class _Plan:
    """What the rules make: the mapper and the subscriptions (swapped as one by ``reload``)."""

    __slots__ = ("filters", "ids", "mapper", "subscriptions")

    def __init__(self, s: MQTTSettings, where: str) -> None:
        rules: list[MappingRule] = []
        for i, r in enumerate(s.rules):
            try:
                rules.append(
                    MappingRule.build(
                        r.topic, decoder=r.decoder, type=r.type, source=r.source, subjects=r.subjects,
                        severity=r.severity, id_field=r.id_field, event_id=r.event_id, index=i,
                    )
                )
            except MQTTConfigError as exc:  # name the table and the rule: transports[l1].rules[2].topic
                text = str(exc)
                text = f"{where}.{text}" if text.startswith("rules[") else f"{where}.rules[{i}].topic: {text}"
                raise type(exc)(text) from None
        self.mapper = TopicMapper(rules)
        subs: list[tuple[str, int]] = [(x.topic, x.qos) for x in s.subscriptions]
        subs = _without_covered(subs or [(f, s.qos) for f in self.mapper.filters])
        # Filters that overlap without one covering the other (a/+/c and a/b/+) may still bring two copies
        # of one message. MQTT 5 Subscription Identifiers say which subscription each copy is for: only the
        # copy for the first matching subscription is taken (the rest are acknowledged and dropped), the
        # same choice in every process of a shared group. MQTT 3.1.1 has no such field: there, copies get
        # the same content-derived event id, and the transport and the idempotency records merge them.
        self.filters = [TopicFilter(f) for f, _ in subs]
        self.ids = s.protocol == "5" and len(subs) > 1
        if s.shared_group:
            subs = [(f"$share/{s.shared_group}/{f}", q) for f, q in subs]
        self.subscriptions = subs


class MQTTTransport(Transport):
    """MQTT transport (MQTT 3.1.1 and 5) with at-least-once delivery for QoS 1.

    Args:
        name: transport name within the bus (default ``mqtt``).
        settings: an ``MQTTSettings``; or give its fields as keyword ``options`` instead.
        options: ``MQTTSettings`` fields (``host=..., rules=[...]``) when ``settings`` is not given.

    Raises:
        MQTTConfigError: invalid settings, topic filter or template, unreadable TLS files.

    Attributes:
        state_detail: why the transport is in its current state (broker, client id and session when
            connected; the last connection failure while reconnecting).
        received: PUBLISH packets received (count). acknowledged: PUBACKs sent (count).
        overlap_copies: copies dropped because MQTT 5 Subscription Identifiers showed them sent for a
            second, overlapping subscription (count).
        merged_copies: copies whose event ids equal those of a message still being settled, acknowledged
            with it instead of being submitted again (count).
        too_large: messages over ``max_message_bytes`` dead-lettered with reason ``too_large`` (count).
        pending_bytes_high_water: the most payload bytes ever received but unsettled at once (bytes).
        queue_high_water: the most messages ever waiting in the internal queue at once (count).
        pending_high_water: the most messages ever received but unsettled at once (count).
    """

    kind = "mqtt"

    def __init__(self, name: str = "mqtt", settings: MQTTSettings | None = None, **options: Any) -> None:
        super().__init__(name)
        if settings is None:
            settings = MQTTSettings.from_options(options, f"transports[{name}]")
        elif options:
            raise TypeError("give either settings or keyword options, not both")
        self.settings = settings
        s = settings
        plan = _Plan(s, f"transports[{name}]")
        self.mapper = plan.mapper
        self.client_id = s.client_id or f"pywats-{socket.gethostname()}-{name}"
        self._publish_topic = Template(s.publish_topic, PUBLISH_FIELDS, "publish_topic")
        self.status_topic = (
            Template(s.status_topic, ("client_id",), "status_topic").render({"client_id": self.client_id})
            if s.status_topic
            else None
        )
        self._ssl = s.tls.ssl_context() if s.tls is not None else None
        self._sub_filters = plan.filters
        self._sub_ids = plan.ids
        self._canonical_cache: dict[str, int | None] = {}
        self.subscriptions = plan.subscriptions
        #: Builds the connection (``pywats_mqtt.testing.MQTTTestBroker`` gives its own); keyword arguments
        #: as ``MQTTConnection`` takes them.
        self.connection_factory: Callable[..., MQTTConnection] = MQTTConnection
        self._reconnector = Reconnector(
            self,
            s.reconnect,
            where=f"{s.host}:{s.port} as {self.client_id}",
            permanent=_permanent,
        )
        self._attempts = 0
        self._origin_prefix = f"mqtt://{s.host}:{s.port}/"
        self._decoder_name = f"mqtt:{name}"
        # Registered so that dead-lettered MQTT messages can be replayed through the (fixed) rules.
        register_decoder(self._decoder_name, self._replay_decode)
        self._publish_props: Properties | None = None
        if s.protocol == "5":
            self._publish_props = Properties(PacketTypes.PUBLISH)
            self._publish_props.ContentType = "application/json"

        self._conn: MQTTConnection | None = None
        self._queue: asyncio.Queue[_Inbound] = asyncio.Queue()
        self._unacked: collections.deque[_Inbound] = collections.deque()
        #: Messages being settled, by their event ids (copies that arrive meanwhile are settled with them).
        self._inflight: dict[tuple[str, ...], _Inbound] = {}
        self._pending = 0
        self._pending_bytes = 0
        self._generation = 0
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._settle_failures = 0
        self._stopping = False
        self._started = False
        self._pump_task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.state_detail: str | None = None
        self.received = 0
        self.acknowledged = 0
        self.queue_high_water = 0
        self.pending_high_water = 0
        self.overlap_copies = 0
        self.merged_copies = 0
        self.too_large = 0
        self.pending_bytes_high_water = 0

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[transports]] kind = "mqtt"`` table (``options`` without ``kind``/``name``).

        Raises:
            MQTTConfigError: the first invalid key, named as ``transports[<name>].<key>``.
        """
        return cls(name, MQTTSettings.from_options(options, f"transports[{name}]"))

    # -- status ------------------------------------------------------------------------------
    @property
    def queue_length(self) -> int:
        """Messages received and waiting to be submitted to the bus (count)."""
        return self._queue.qsize()

    @property
    def pending(self) -> int:
        """Messages received and not yet settled, queued or in the bus (count); at most ``max_in_flight``
        plus what paho parsed in the same read (one packet while only consuming)."""
        return self._pending

    def describe(self) -> dict[str, Any]:
        """State, broker, client id, subscriptions and flow counters; no secrets."""
        return super().describe() | {
            "broker": f"{self.settings.host}:{self.settings.port}",
            "client_id": self.client_id,
            "protocol": self.settings.protocol,
            "detail": self.state_detail,
            "subscriptions": [f"{t} (qos {q})" for t, q in self.subscriptions],
            "pending": self._pending,
            "queue_length": self.queue_length,
            "received": self.received,
            "acknowledged": self.acknowledged,
            "overlap_copies": self.overlap_copies,
            "merged_copies": self.merged_copies,
            "too_large": self.too_large,
            "pending_bytes": self._pending_bytes,
            "settings": self.settings.describe(),
        }

    def __repr__(self) -> str:
        s = self.settings
        return f"MQTTTransport(name={self.name!r}, broker={s.host}:{s.port}, client_id={self.client_id!r})"

    def _set_state(self, new: TransportState, detail: str | None = None) -> None:
        if detail is not None or new is not self._state:
            self.state_detail = detail
        super()._set_state(new, detail)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect, subscribe and begin consuming. Returns after the first connection attempt; when it
        fails the transport is RECONNECTING (or ERROR for refused credentials) and keeps trying."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        return_large_buffers()  # large payloads must not keep the process's memory up after they are freed
        s = self.settings
        self._conn = self.connection_factory(
            host=s.host,
            port=s.port,
            client_id=self.client_id,
            protocol=s.protocol,
            persistent_session=s.persistent_session,
            session_expiry=s.session_expiry,
            receive_maximum=s.max_in_flight,
            keepalive=s.keepalive,
            connect_timeout=s.connect_timeout,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            ssl_context=self._ssl,
            will=(self.status_topic, s.status_offline) if self.status_topic else None,
            on_message=self._on_message,
            on_lost=self._on_lost,
        )
        self._queue = asyncio.Queue()
        self._connected = asyncio.Event()
        self._lost = asyncio.Event()
        self._pump_task = asyncio.create_task(self._pump(), name=f"pywats-mqtt-{self.name}-pump")
        self._set_state(TransportState.CONNECTING, f"{s.host}:{s.port} as {self.client_id}")
        self._attempts = 0
        try:
            await self._attempt()
        except Exception:
            self._lost.set()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"pywats-mqtt-{self.name}-supervisor")

    async def stop(self) -> None:
        """Stop taking messages, wait up to ``drain_timeout`` seconds for those in the bus to settle and
        acknowledge them, publish ``offline`` on the status topic, and disconnect. Unsettled messages stay
        unacknowledged: the broker redelivers them to the next session with this client id."""
        if not self._started:
            return
        self._stopping = True
        conn = self._conn
        for task in (self._supervisor, self._pump_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._supervisor = self._pump_task = None
        if conn is not None:
            # Reading goes on (the PUBACK of the offline message must be read); what arrives now is never
            # submitted nor acknowledged, and the broker redelivers it to the next session.
            await self.drain_settlements(self.settings.drain_timeout)
            if conn.connected and self.status_topic:
                with contextlib.suppress(MQTTError, TimeoutError):
                    async with asyncio.timeout(2.0):
                        await conn.publish(self.status_topic, self.settings.status_offline, 1, True)
            await conn.disconnect()
        self._conn = None
        self._started = False
        self._pending = 0
        self._pending_bytes = 0
        self._unacked.clear()
        self._inflight.clear()
        self._set_state(TransportState.DISCONNECTED)

    # -- reload ------------------------------------------------------------------------------
    async def reload(self, options: Mapping[str, Any]) -> list[str]:
        """Apply changed options while running (``SIGHUP``): the topic mapping rules and subscriptions.

        ``options`` are keys of this transport's configuration table (all of them or only the changed
        ones; unchanged values are ignored). Changed ``rules``, ``subscriptions`` and ``qos`` are applied:
        the new rule table and subscription list are checked first (an invalid one raises and changes
        nothing), then swapped in at once between two messages (a message already mapped settles as it
        was mapped), the new subscription list is sent (filters already subscribed are replaced, without
        their retained messages again: MQTT 5 Retain Handling 1), and filters no longer wanted are
        unsubscribed. Messages that arrive for a removed filter before its UNSUBACK are mapped by the new
        rules (no rule: dead-lettered ``unrouted``, replayable), never dropped. While disconnected, the next
        connection subscribes the new list.

        Returns:
            The changed option keys that were NOT applied (broker, client id, credentials, TLS, shared group,
            limits...): they take effect only after a restart. Sorted.

        Raises:
            MQTTConfigError: the new options are invalid (the message names the key); nothing changed.
            MQTTSubscribeError: the broker refused a new subscription or the unsubscription; the new rules
                are in place and the next reconnection subscribes again.
        """
        old = self.settings
        options = {k: v for k, v in options.items() if k not in ("kind", "name")}  # the table's own keys
        table = {**old.model_dump(exclude_unset=True), **options}
        new = MQTTSettings.from_options(table, f"transports[{self.name}]")
        field_of = {**MQTTSettings.aliases, **MQTTSettings.deprecated}
        changed = sorted(
            key
            for key in options
            if getattr(new, field_of.get(key, key).partition(".")[0], None)
            != getattr(old, field_of.get(key, key).partition(".")[0], None)
        )
        apply = [k for k in changed if k in RELOADABLE]
        if apply:
            plan = _Plan(new, f"transports[{self.name}]")  # may raise MQTTConfigError: nothing is changed then
            before = set(self.subscriptions)
            # One synchronous step: the pump reads these per message, so no message sees half of them.
            self.settings = old.model_copy(update={k: getattr(new, k) for k in RELOADABLE})
            self.mapper = plan.mapper
            self.subscriptions = plan.subscriptions
            self._sub_filters = plan.filters
            self._sub_ids = plan.ids
            self._canonical_cache = {}
            removed = [f for f, _ in before - set(plan.subscriptions) if f not in {t for t, _ in plan.subscriptions}]
            log.info(
                "transport %s: reloaded %s: %d rule(s), subscriptions %s%s",
                self.name, ", ".join(apply), len(plan.mapper.rules), [t for t, _ in plan.subscriptions],
                f", unsubscribing {removed}" if removed else "",
            )  # fmt: skip
            conn = self._conn
            if conn is not None and conn.connected:
                limit = self.settings.connect_timeout
                reasons = await conn.subscribe(self.subscriptions, limit, identifiers=self._sub_ids)
                refused = [f"{t}: {r}" for (t, _), r in zip(self.subscriptions, reasons, strict=False) if r.is_failure]
                if refused:
                    raise MQTTSubscribeError(f"broker refused subscriptions: {'; '.join(refused)}")
                await conn.unsubscribe(removed, limit)
        rest = [k for k in changed if k not in RELOADABLE]
        if rest:
            log.warning("transport %s: changed option(s) %s need a restart to take effect", self.name, rest)
        return rest

    # -- connection supervision --------------------------------------------------------------
    async def _connect_once(self) -> None:
        conn = self._conn
        assert conn is not None
        s = self.settings
        session_present = await conn.connect(s.connect_timeout)
        # Subscribe even when the broker resumed the session: the rules may have changed since it was
        # made, and a repeated SUBSCRIBE just replaces the subscription (MQTT 5: without resending
        # retained messages, see MQTTConnection.subscribe).
        reasons = await conn.subscribe(self.subscriptions, s.connect_timeout, identifiers=self._sub_ids)
        pairs = zip(self.subscriptions, reasons, strict=False)
        refused = [f"{t}: {r}" for (t, _), r in pairs if r.is_failure]
        if refused:
            raise MQTTSubscribeError(f"broker refused subscriptions: {'; '.join(refused)}")
        if self.status_topic:
            try:
                async with asyncio.timeout(s.connect_timeout):
                    await conn.publish(self.status_topic, s.status_online, 1, True)
            except (MQTTError, TimeoutError) as exc:
                log.warning("transport %s: birth message on %s failed: %s", self.name, self.status_topic, exc)
        self._connected.set()
        self._set_state(
            TransportState.CONNECTED,
            f"{s.host}:{s.port} as {self.client_id} (session {'resumed' if session_present else 'new'})",
        )

    def _report_failure(self, exc: BaseException, attempt: int, wait: float | None = None) -> None:
        """State ERROR (refused login or subscription: retrying cannot help until a setting changes) or
        RECONNECTING, and a WARNING saying what to check."""
        permanent = _permanent(exc)
        s = self.settings
        if isinstance(exc, MQTTSubscribeError):
            check = "the broker refused a subscription: check its ACL for the rule filters and shared_group"
        elif permanent:
            check = (
                "the broker refused the connection: check username and password (password / password_env), "
                "client_id and the broker's ACL"
            )
        elif "SSL" in str(exc).upper() or "certificate" in str(exc).lower():
            check = "TLS failed: check tls.ca_file, tls.cert_file/key_file and tls.verify_hostname"
        else:
            check = (
                f"cannot reach {s.host}:{s.port}: check host and port (1883 plain, 8883 TLS), that the broker "
                "runs, and firewalls"
            )
        user = f"user {s.username!r}" if s.username else "no user name (anonymous)"
        log.warning(
            "transport %s: connecting to the MQTT broker failed (attempt %d; %s): %s. %s. Settings: broker "
            "%s:%d, %s, client id %r, MQTT %s, TLS %s",
            self.name,
            attempt,
            ("fix the setting; still retrying" if permanent else "retrying")
            + (f", next in {wait:.1f}s" if wait is not None else ""),
            exc,
            check[:1].upper() + check[1:],
            s.host,
            s.port,
            user,
            self.client_id,
            s.protocol,
            "on" if s.tls is not None else "off",
        )
        self._set_state(TransportState.ERROR if permanent else TransportState.RECONNECTING, str(exc))

    def _on_lost(self, reason: str) -> None:
        self._generation += 1  # settlements of earlier messages must not ack on the new connection
        self._unacked.clear()
        self._connected.clear()
        if self._stopping:
            return
        self._set_state(TransportState.RECONNECTING, reason)
        self._lost.set()

    async def _attempt(self) -> None:
        """One connection attempt; a failure is logged with what to check, then raised for the retry."""
        self._attempts += 1
        try:
            await self._connect_once()
        except Exception as exc:
            self._report_failure(exc, self._attempts, None)
            raise
        self._attempts = 0

    async def _supervise(self) -> None:
        s = self.settings
        while True:
            await self._lost.wait()
            self._lost.clear()
            conn = self._conn
            if conn is not None and conn.connected:
                await conn.disconnect()  # asked to reconnect while connected (settling failed)
            if self._settle_failures:
                # Settling failed (store down): wait before asking the broker for the messages again.
                r = s.reconnect
                delay = min(r.max_delay, r.initial_delay * 2 ** min(self._settle_failures, 16))
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            # Any failure is retried (a paho error we did not foresee included): giving up would leave the
            # line without its input; the state and the log say what is wrong. Only ``give_up_after``
            # ends it (state ERROR).
            try:
                await self._reconnector.connect(self._attempt, first=False)
            except ConnectFailedError as exc:
                log.error("transport %s: %s", self.name, exc)
                return

    def _request_redelivery(self, reason: str) -> None:
        conn = self._conn
        if conn is None or self._stopping or not conn.connected:
            return
        self._settle_failures += 1
        log.error("transport %s: %s; reconnecting so that the broker redelivers", self.name, reason)
        # The broker redelivers unacknowledged messages only to a new connection of the session.
        self._on_lost(reason)

    # -- intake ------------------------------------------------------------------------------
    def _on_message(self, message: paho.MQTTMessage) -> None:
        msg = _Inbound(self, message, self._generation)
        self.received += 1
        self._pending += 1
        self._pending_bytes += msg.size
        if msg.qos and self.settings.ack_in_order:
            self._unacked.append(msg)
        self._queue.put_nowait(msg)
        size = self._queue.qsize()
        if size > self.queue_high_water:
            self.queue_high_water = size
        if self._pending > self.pending_high_water:
            self.pending_high_water = self._pending
        if self._pending_bytes > self.pending_bytes_high_water:
            self.pending_bytes_high_water = self._pending_bytes
        s = self.settings
        if (self._pending >= s.max_in_flight or self._pending_bytes >= s.max_inflight_bytes) and self._conn is not None:
            self._conn.pause_reading()

    def _headers(self, msg: _Inbound) -> dict[str, Any]:
        headers: dict[str, Any] = {
            "transport": self.name,
            "mqtt_topic": msg.topic,
            "mqtt_qos": msg.qos,
            "mqtt_retain": msg.retain,
            "mqtt_dup": msg.dup,
        }
        props = msg.properties
        if props is not None:
            user = getattr(props, "UserProperty", None)
            if user:
                own = headers["mqtt_user_properties"] = dict(user)
                for key in TRACE_PROPERTIES:  # W3C Trace Context travels as MQTT 5 user properties
                    if key in own:
                        headers[key] = own[key]
            ctype = getattr(props, "ContentType", None)
            if ctype:
                headers["mqtt_content_type"] = ctype
        return headers

    def _canonical_subscription(self, topic: str) -> int | None:
        """Subscription Identifier (1-based index) of the first subscription matching ``topic``."""
        cache = self._canonical_cache
        try:
            return cache[topic]
        except KeyError:
            pass
        found = next((i + 1 for i, f in enumerate(self._sub_filters) if f.match(topic) is not None), None)
        if len(cache) >= 4096:
            cache.clear()
        cache[topic] = found
        return found

    def _is_overlap_copy(self, msg: _Inbound) -> bool:
        ids: Any = getattr(msg.properties, "SubscriptionIdentifier", None) if msg.properties else None
        if not ids:
            return False
        canonical = self._canonical_subscription(msg.topic)
        return canonical is not None and canonical not in (ids if isinstance(ids, list) else [ids])

    async def _pump(self) -> None:
        queue = self._queue
        while True:
            msg = await queue.get()
            if self._sub_ids and self._is_overlap_copy(msg):
                # The broker sent this copy for a second, overlapping subscription; the copy for the first
                # one is (or was) taken. Acknowledge it, or the broker would send it again.
                self.overlap_copies += 1
                self._release(msg)
                self._ack(msg)
                continue
            if msg.size > self.settings.max_message_bytes:
                await self._dead_letter_too_large(msg)
                continue
            msg.headers = self._headers(msg)
            try:
                # Mapped here (the rule table of this moment: ``reload`` swaps it between messages) so that
                # copies of a message still in the bus can be merged with it before submitting.
                events = self.mapper.map(msg.topic, msg.body, msg.headers, msg.origin)
            except Exception:
                pass  # ``intake`` decodes it again with the registered decoder and dead-letters it whole
            else:
                key = tuple(e.id for e in events)
                leader = self._inflight.get(key) if key else None
                if leader is not None:
                    # A copy of a message still in the bus (same content-derived or sender ids): settled with it.
                    self.merged_copies += 1
                    leader.followers.append(msg)
                    continue
                msg.events = events
                msg.key = key
                if key:
                    self._inflight[key] = msg
            try:
                await self.intake(msg)
            except BusClosedError:
                self._forget(msg)  # not acknowledged: the broker redelivers it to the next session
            except Exception as exc:
                self._forget(msg)
                self._request_redelivery(f"submitting a message from {msg.topic!r} failed: {exc}")

    async def _dead_letter_too_large(self, msg: _Inbound) -> None:
        limit = self.settings.max_message_bytes
        record = too_large_record(
            msg.body,
            msg.origin,
            self.name,
            limit,
            {"mqtt_topic": msg.topic, "mqtt_qos": msg.qos, "mqtt_retain": msg.retain},
        )
        # Only the prefix is kept: free the body now, not when the store write is done.
        msg.body = b""
        log.warning("transport %s: %s from %r; dead-lettered (too_large)", self.name, record.reason, msg.topic)
        try:
            await self.sink.dead_letter_raw(record)
        except Exception as store_exc:
            self._release(msg)
            self._request_redelivery(f"dead-lettering a too-large message from {msg.topic!r} failed: {store_exc}")
            return
        self.too_large += 1
        self._release(msg)
        self._ack(msg)

    def _release(self, msg: _Inbound) -> None:
        self._pending -= 1
        self._pending_bytes -= msg.size
        conn = self._conn
        if conn is not None and conn.paused and not self._stopping:
            s = self.settings
            # Half the byte budget free before reading again: one large message settling must not let the
            # next large one in at once, over and over.
            if self._pending < s.max_in_flight and self._pending_bytes < s.max_inflight_bytes // 2:
                conn.resume_reading()

    def _forget(self, msg: _Inbound) -> list[_Inbound]:
        """Release ``msg`` and the copies merged with it; returns those copies."""
        if msg.key and self._inflight.get(msg.key) is msg:
            del self._inflight[msg.key]
        followers, msg.followers = msg.followers, []
        self._release(msg)
        for copy in followers:
            self._release(copy)
        return followers

    def _settled_ok(self, msg: _Inbound) -> None:
        followers = self._forget(msg)
        self._settle_failures = 0
        self._ack(msg)
        for copy in followers:
            self._ack(copy)

    def _settled_failed(self, msg: _Inbound, exc: BaseException) -> None:
        self._forget(msg)
        self._request_redelivery(f"settling a message from {msg.topic!r} failed: {type(exc).__name__}: {exc}")

    def _ack(self, msg: _Inbound) -> None:
        if msg.qos == 0:
            return
        msg.settled = True
        conn = self._conn
        if conn is None or msg.generation != self._generation or not conn.connected:
            return  # the connection it came on is gone: the broker redelivers it, idempotency skips it
        if not self.settings.ack_in_order:
            conn.ack(msg.mid, msg.qos)
            self.acknowledged += 1
            return
        unacked = self._unacked
        while unacked and unacked[0].settled:
            head = unacked.popleft()
            conn.ack(head.mid, head.qos)
            self.acknowledged += 1

    # -- replay ------------------------------------------------------------------------------
    def _replay_decode(self, body: bytes, ctx: DecodeContext) -> list[Event]:
        origin = ctx.origin
        topic = origin.split("/", 3)[3] if origin.startswith("mqtt://") and origin.count("/") >= 3 else origin
        headers = {"transport": self.name, "mqtt_topic": topic, **ctx.headers}
        return self.mapper.map(topic, body, headers, origin)

    # -- publishing --------------------------------------------------------------------------
    async def send(self, event: Event) -> None:
        """Publish ``event`` as normalized event JSON to ``publish_topic`` (rendered from the event) with
        ``publish_qos`` and ``publish_retain``. Waits for a connection and, for QoS 1/2, the broker's
        acknowledgement, together at most ``send_timeout`` seconds. With MQTT 5 the message carries W3C
        ``traceparent``/``tracestate`` user properties (``tracing.send_span``: a PRODUCER span's context
        while tracing, else the event's own); MQTT 3.1.1 has no place for them.

        Raises:
            MQTTPublishError: the transport is not started, the rendered topic is not a valid topic name
                (empty, or contains ``+``, ``#`` or NUL), no connection or acknowledgement in time, or the
                broker refused it. After a timeout the message may still reach the broker (at least once).
        """
        conn = self._conn
        if conn is None or self._stopping:
            raise MQTTPublishError(f"transport {self.name!r} is not started")
        values = {
            "type": event.type,
            "category": event.category,
            "source": event.source,
            "severity": event.severity.value,
            "id": event.id,
        }
        topic = self._publish_topic.render(values)
        if not topic or any(c in topic for c in "+#\x00"):
            raise MQTTPublishError(
                f"publish topic {topic!r} (from {self._publish_topic.text!r}) is not a valid topic name"
            )
        s = self.settings
        try:
            async with asyncio.timeout(s.send_timeout):
                await self._connected.wait()
                body = event.to_json().encode()
                with tracing.send_span("mqtt", topic, event) as trace:
                    props = self._publish_props
                    if trace and props is not None:  # W3C Trace Context as MQTT 5 user properties
                        props = Properties(PacketTypes.PUBLISH)
                        props.ContentType = "application/json"
                        props.UserProperty = list(trace.items())
                    await conn.publish(topic, body, s.publish_qos, s.publish_retain, props)
        except TimeoutError:
            what = "acknowledgement" if self._connected.is_set() else "connection"
            raise MQTTPublishError(
                f"no {what} from the broker within {s.send_timeout:g}s publishing to {topic!r}"
            ) from None
