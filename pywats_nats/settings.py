"""Settings of a NATS JetStream transport: the ``[[transports]] kind = "nats"`` table of the configuration.

Validated with pydantic; ``NATSSettings.from_options`` turns validation failures into ``NATSConfigError``
naming the bad key. The password is a ``SecretStr``: never logged or shown. Durations are seconds.

``NATSSettings`` derives from ``pywats_events.transports.settings.TransportSettings``: ``tls``,
``reconnect.initial_delay`` / ``reconnect.max_delay``, ``connect_timeout``, ``send_timeout``,
``drain_timeout``, ``max_in_flight`` (alias ``max_ack_pending``, the JetStream word, and ``max_inflight``)
mean what they mean for every transport. The keys of the previous release (``reconnect_initial``,
``reconnect_max``) still work, with a ``DeprecationWarning``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from pywats_events.event import Severity
from pywats_events.transports.mapping import RuleTransportSettings
from pywats_events.transports.settings import ReconnectSettings

from .errors import NATSConfigError

__all__ = ["NATSRuleSettings", "NATSSettings"]

_FORBID = ConfigDict(extra="forbid", frozen=True)
#: JetStream stream and consumer names may not contain these (NATS docs, "Naming Streams, Consumers").
_BAD_NAME_CHARS = frozenset(" \t\r\n.*>/\\")


def _check_name(value: str, what: str) -> str:
    bad = sorted(c for c in set(value) if c in _BAD_NAME_CHARS)
    if bad:
        raise ValueError(f"a JetStream {what} name may not contain {bad!r}")
    return value


class NATSRuleSettings(BaseModel):
    """One subject mapping rule (see ``pywats_nats.mapping``).

    Attributes:
        subject: subject filter with ``*``, ``>`` and named tokens (``line1.stations.{station}.results``).
        type: event type template (``test.result``, ``sensor.{kind}``); required unless ``decoder`` is
            ``cfx`` or ``event``.
        source: source template (default ``{subject}``).
        decoder: ``json`` (default), ``text``, ``bytes``, ``cfx`` or ``event``.
        severity: severity of the events (payload decoders only; default ``info``).
        subjects: event subject templates (``["{payload.serial}"]``).
        id_field: dotted path of the JSON member holding the message's own id (``meta.uuid``); without it
            the id comes from the ``Nats-Msg-Id`` header or the stream sequence.
    """

    model_config = _FORBID

    subject: str = Field(min_length=1)
    type: str | None = None
    source: str | None = None
    decoder: Literal["json", "text", "bytes", "cfx", "event"] = "json"
    severity: Severity | None = None
    subjects: list[str] = Field(default_factory=list)
    id_field: str | None = None


class NATSSettings(RuleTransportSettings):
    """Everything a ``NATSTransport`` needs.

    Attributes:
        servers: server URLs (``nats://host:4222``, ``tls://host:4222``); nats-py tries them in turn.
        connection_name: the name this client shows in the server's monitoring (default
            ``pywats-<transport name>``).
        user / password: credentials (the password is secret: never logged or shown).
        password_env: environment variable holding the password, read when the settings are validated;
            used when ``password`` is unset.
        token: an authorization token instead of user and password.
        stream: the JetStream stream to consume from.
        create_stream: create the stream (or update its subjects) when the transport starts; off: bind
            to an existing stream and fail with ``NATSStreamError`` when it does not exist.
        stream_subjects: the stream's subjects when ``create_stream`` is on (``["line1.>"]``).
        storage: ``file`` (survives a server restart; the default) or ``memory``, for a created stream.
        duplicate_window: seconds the server remembers ``Nats-Msg-Id`` values of a created stream and
            drops a second publish with the same id (JetStream message de-duplication).
        durable: name of the durable pull consumer. Several processes with the same ``durable`` on the
            same stream share its messages (each message goes to one of them).
        filter_subject: only this subject (wildcards allowed) of the stream reaches the consumer; default
            the whole stream.
        deliver_policy: ``all`` (the stream from its first message) or ``new`` (from when the consumer is
            made), for a consumer created now; an existing durable keeps its position.
        rules: ordered subject mapping rules.
        max_in_flight: messages fetched but not yet settled, at most (count); aliases ``max_ack_pending``,
            the consumer setting it becomes (the server sends no more until some are acknowledged), and
            ``max_inflight``.
        ack_wait: seconds the server waits for an acknowledgement before it redelivers (JetStream
            AckWait). Long deliveries are kept alive with ``in_progress`` ("+WPI") well before that.
        in_progress_interval: seconds a message may be in the bus before the transport tells the server
            it is still being worked on, and again after each further interval; default a third of
            ``ack_wait``.
        max_deliver: deliveries of one message at most (JetStream MaxDeliver). When the last one cannot be
            settled, the transport stores the message whole in the dead-letter queue and acknowledges it.
        nak_delay / nak_delay_max: a message whose settlement failed is negatively acknowledged with a
            redelivery delay of ``nak_delay * 2**(deliveries - 1)`` seconds, at most ``nak_delay_max``.
        fetch_batch: messages asked for per pull request (count, at most ``max_inflight``).
        fetch_timeout: seconds one pull request waits at the server for messages.
        trust_redelivered_flag: a message the server reports as delivered for the first time
            (``num_delivered == 1``) skips the idempotency lookup (much faster). Turn off when producers
            may publish the same message twice outside the server's duplicate window.
        dead_letter_subject: where a message goes (published whole with ``Pywats-*`` reason headers, to
            be kept by a stream that captures that subject) when its last delivery could neither be
            settled nor stored in the dead-letter queue because the store is down; ``None``: the message
            is then left to JetStream's own MaxDeliver handling (it stays in the stream, the server
            publishes a ``MAX_DELIVERIES`` advisory) and the transport logs an error.
        publish_subject: subject template of ``send(event)``; fields ``type``, ``category``, ``source``,
            ``severity``, ``id``.
        connect_timeout: seconds one connection attempt may take.
        reconnect: ``initial_delay`` / ``max_delay`` (formerly ``reconnect_initial`` / ``reconnect_max``):
            first and largest wait between reconnection attempts, seconds (the first connection through
            ``pywats_events.transports.reconnect.Reconnector``; nats-py waits ``initial_delay`` between its
            own reconnection attempts once connected).
        tls: TLS towards the servers (``tls://`` URLs, or a server that requires TLS); ``None``: plain.
        send_timeout: seconds ``send`` waits for a connection and the stream's PubAck.
        drain_timeout: seconds ``stop`` waits for messages in the bus to settle and be acknowledged;
            later ones are redelivered by the server after ``ack_wait``.
    """

    model_config = _FORBID
    config_error = NATSConfigError
    aliases = {"max_ack_pending": "max_in_flight", "max_inflight": "max_in_flight"}
    deprecated = {"reconnect_initial": "reconnect.initial_delay", "reconnect_max": "reconnect.max_delay"}

    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"], min_length=1)
    connection_name: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    password_env: str | None = Field(default=None, min_length=1)
    token: SecretStr | None = None
    stream: str = Field(default="PYWATS", min_length=1, max_length=255)
    create_stream: bool = False
    stream_subjects: list[str] = Field(default_factory=list)
    storage: Literal["file", "memory"] = "file"
    duplicate_window: float = Field(default=120.0, gt=0)
    durable: str = Field(default="pywats", min_length=1, max_length=255)
    filter_subject: str | None = Field(default=None, min_length=1)
    deliver_policy: Literal["all", "new"] = "all"
    rules: list[NATSRuleSettings] = Field(default_factory=list)
    max_in_flight: int = Field(default=256, ge=1, le=1_000_000)
    ack_wait: float = Field(default=30.0, ge=1.0)
    in_progress_interval: float | None = Field(default=None, gt=0)
    max_deliver: int = Field(default=5, ge=1)
    nak_delay: float = Field(default=1.0, ge=0)
    nak_delay_max: float = Field(default=60.0, ge=0)
    fetch_batch: int = Field(default=128, ge=1)
    fetch_timeout: float = Field(default=1.0, ge=0.05)
    trust_redelivered_flag: bool = True
    dead_letter_subject: str | None = Field(default=None, min_length=1)
    publish_subject: str = Field(default="pywats.{category}.{type}", min_length=1)
    connect_timeout: float = Field(default=5.0, gt=0)
    reconnect: ReconnectSettings = Field(default_factory=lambda: ReconnectSettings(max_delay=10.0))
    drain_timeout: float = Field(default=5.0, ge=0)

    @field_validator("stream")
    @classmethod
    def _stream_name(cls, value: str) -> str:
        return _check_name(value, "stream")

    @field_validator("durable")
    @classmethod
    def _durable_name(cls, value: str) -> str:
        return _check_name(value, "consumer")

    @field_validator("servers")
    @classmethod
    def _server_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if "://" not in url:
                raise ValueError(f"server {url!r}: write a URL such as nats://127.0.0.1:4222")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NATSSettings:
        if self.nak_delay_max < self.nak_delay:
            raise ValueError("nak_delay_max must be >= nak_delay")
        if self.in_progress_interval is not None and self.in_progress_interval >= self.ack_wait:
            raise ValueError("in_progress_interval must be shorter than ack_wait, or the server redelivers first")
        if self.create_stream and not self.stream_subjects:
            raise ValueError("stream_subjects: give the subjects of the stream to create (create_stream = true)")
        return self

    @property
    def progress_every(self) -> float:
        """Seconds between ``in_progress`` signals for a message still in the bus."""
        return self.in_progress_interval if self.in_progress_interval is not None else self.ack_wait / 3

    def describe(self) -> dict[str, Any]:
        """The settings as shown in readiness and the admin API: no password, no token."""
        return self.model_dump(mode="json", exclude={"password", "token", "rules"}, exclude_none=True) | {
            "rules": len(self.rules),
            "password": "**********" if self.password else None,
        }
