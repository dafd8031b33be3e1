"""Settings of an MQTT transport: the ``[[transports]] kind = "mqtt"`` table of the configuration file.

Validated with pydantic; ``MQTTSettings.from_options`` turns validation failures into ``MQTTConfigError``
naming the bad key. The password and the TLS key password are ``SecretStr``: never logged or shown.

``MQTTSettings`` derives from ``pywats_events.transports.settings.TransportSettings``: ``tls``,
``reconnect.initial_delay`` / ``reconnect.max_delay``, ``connect_timeout``, ``send_timeout``,
``drain_timeout``, ``max_in_flight`` (alias ``receive_maximum``, the MQTT 5 word, and ``max_inflight``) and
``max_message_bytes`` mean what they mean for every transport. The keys of the previous release
(``reconnect_initial``, ``reconnect_max``, ``max_message_size``) still work, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from pywats_events.event import Severity
from pywats_events.transports.mapping import RuleTransportSettings
from pywats_events.transports.settings import ReconnectSettings, TLSSettings

from .errors import MQTTConfigError

__all__ = ["MQTTRuleSettings", "MQTTSettings", "MQTTSubscriptionSettings", "MQTTTLSSettings"]

_FORBID = ConfigDict(extra="forbid", frozen=True)


class MQTTTLSSettings(TLSSettings):
    """TLS towards the broker (usually port 8883); ``pywats_events.transports.settings.TLSSettings``
    where the key may be inside ``cert_file``.

    Attributes:
        ca_file: PEM file of the CA(s) that signed the broker's certificate; ``None`` uses the system CAs.
        cert_file: PEM client certificate, for brokers that authenticate clients by certificate.
        key_file: PEM private key of ``cert_file`` (may be inside ``cert_file``).
        key_password: password of an encrypted ``key_file``.
        verify_hostname: check that the broker's certificate names ``host`` (leave on outside labs).
    """

    model_config = _FORBID

    @model_validator(mode="after")
    def _key_with_cert(self) -> MQTTTLSSettings:  # replaces the base check: the key may be in cert_file
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file: set cert_file as well")
        return self

    def ssl_context(self) -> ssl.SSLContext:
        """A client ``SSLContext`` (TLS 1.2 or later) built from these settings.

        Raises:
            MQTTConfigError: a file is missing or unreadable, or the key does not match the certificate.
        """
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise MQTTConfigError(f"tls.ca_file: cannot load {self.ca_file}: {exc}") from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.check_hostname = self.verify_hostname
        if self.cert_file is not None:
            password = self.key_password.get_secret_value() if self.key_password else None
            try:
                ctx.load_cert_chain(
                    str(self.cert_file), str(self.key_file) if self.key_file else None, password=password
                )
            except (OSError, ssl.SSLError) as exc:
                raise MQTTConfigError(f"tls.cert_file: cannot load certificate and key: {exc}") from None
        elif self.key_file is not None:
            raise MQTTConfigError("tls.key_file: set cert_file as well")
        return ctx


class MQTTSubscriptionSettings(BaseModel):
    """One subscription.

    Attributes:
        topic: MQTT topic filter (``+`` and ``#`` wildcards; not ``$share/...``: use ``shared_group``).
        qos: 0 (at most once) or 1 (at least once; the default). QoS 2 is not offered because a QoS 2
            message is released by the broker at PUBREC, before the bus has settled it, so a crash would
            lose it; subscribing at QoS 1 downgrades QoS 2 publications to QoS 1 and keeps them safe.
    """

    model_config = _FORBID

    topic: str = Field(min_length=1)
    qos: Literal[0, 1] = 1


class MQTTRuleSettings(BaseModel):
    """One topic mapping rule (see ``pywats_mqtt.mapping``).

    Attributes:
        topic: topic filter with ``+``, ``#`` and named segments (``stations/{station}/results``).
        type: event type template (``test.result``, ``sensor.{kind}``); required unless ``decoder`` is
            ``cfx`` or ``event``.
        source: source template (default ``{topic}``).
        decoder: ``json`` (default), ``text``, ``bytes``, ``cfx`` or ``event``.
        severity: severity of the events (payload decoders only; default ``info``).
        subjects: subject templates (``["{station}"]``).
        id_field: dotted path of the JSON member holding the message's own id (``meta.uuid``).
        event_id: without ``id_field``: ``content`` (default; the id is a UUID5 of topic, payload and
            MQTT 5 properties, so copies of one message are one event) or ``delivery`` (a fresh id per
            delivery, for streams that repeat identical messages as separate events).
    """

    model_config = _FORBID

    topic: str = Field(min_length=1)
    type: str | None = None
    source: str | None = None
    decoder: Literal["json", "text", "bytes", "cfx", "event"] = "json"
    severity: Severity | None = None
    subjects: list[str] = Field(default_factory=list)
    id_field: str | None = None
    event_id: Literal["content", "delivery"] = "content"


class MQTTSettings(RuleTransportSettings):
    """Everything an ``MQTTTransport`` needs.

    Attributes:
        host: broker host name or address.
        port: broker TCP port (1883 plain, 8883 TLS by convention).
        protocol: ``"5"`` (MQTT 5, default) or ``"3.1.1"``.
        client_id: MQTT client identifier; must be unique per process on the broker (two clients with
            the same id take the session from each other). Default ``pywats-<hostname>-<transport name>``.
        persistent_session: keep the session (subscriptions and unacknowledged QoS 1 messages) at the
            broker while disconnected (``clean_session=0`` in 3.1.1, ``clean_start=0`` plus a session
            expiry in 5). Required for at-least-once across restarts; on by default.
        session_expiry: seconds the broker keeps the session after a disconnect (MQTT 5 only; 3.1.1
            brokers apply their own expiry, Mosquitto's ``persistent_client_expiration``).
        keepalive: seconds between keepalive pings; a broker silent for 1.5x this is taken as lost.
        username / password: broker credentials (the password is secret: never logged or shown).
        password_env: name of an environment variable holding the password, read when the settings are
            validated (keeps the password out of configuration files); used when ``password`` is unset.
        tls: TLS settings; ``None`` means plain TCP.
        subscriptions: explicit subscriptions; when empty the filters of ``rules`` are subscribed at ``qos``.
        qos: QoS of the subscriptions derived from ``rules`` (0 or 1; default 1).
        shared_group: subscribe as ``$share/<group>/<filter>`` so several processes split the messages
            (MQTT 5 shared subscriptions; Mosquitto also offers them to 3.1.1 clients).
        rules: ordered topic mapping rules.
        max_in_flight: messages received but not yet settled, at most (count; aliases ``receive_maximum``
            and ``max_inflight``). Sent to the broker as the MQTT 5 Receive Maximum; reading from the socket
            pauses when this many are pending.
        max_message_bytes: largest payload accepted, in bytes (default 8 MiB; formerly
            ``max_message_size``). A larger one is not decoded:
            it goes to the dead-letter queue with reason ``too_large``, keeping its first 4096 bytes and its
            size, and is acknowledged.
        max_inflight_bytes: payload bytes received but not yet settled, at most (default 64 MiB); reading
            from the socket pauses at this many and resumes below half of it.
        ack_in_order: send PUBACKs in the order the messages arrived, as MQTT 3.1.1 section 4.6 and
            MQTT 5 section 4.6 require of a client. Turn off only if your broker accepts PUBACKs out of
            order and a slow message must not hold back the acknowledgement of later ones.
        publish_topic: topic template of ``send(event)``; fields ``type``, ``category``, ``source``,
            ``severity``, ``id``.
        publish_qos: QoS of ``send`` (0, 1 or 2; 1 waits for PUBACK).
        publish_retain: set the retain flag on ``send``.
        status_topic: where the birth (``status_online``) and last-will (``status_offline``) messages go,
            retained, QoS 1; field ``client_id``; ``None`` disables them.
        status_online / status_offline: the two status payloads.
        reconnect: ``initial_delay`` / ``max_delay`` (formerly ``reconnect_initial`` / ``reconnect_max``):
            first and largest wait between reconnection attempts, seconds (exponential backoff with jitter,
            ``pywats_events.transports.reconnect.Reconnector``).
        connect_timeout: seconds to wait for the broker's CONNACK (and SUBACK).
        send_timeout: seconds ``send`` waits for a connection and the PUBACK.
        drain_timeout: seconds ``stop`` waits for messages being handled to settle so they can be
            acknowledged; later ones are redelivered by the broker.
    """

    model_config = _FORBID
    config_error = MQTTConfigError
    aliases = {"receive_maximum": "max_in_flight", "max_inflight": "max_in_flight"}
    deprecated = {
        "reconnect_initial": "reconnect.initial_delay",
        "reconnect_max": "reconnect.max_delay",
        "max_message_size": "max_message_bytes",
    }

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    protocol: Literal["3.1.1", "5"] = "5"
    client_id: str | None = Field(default=None, min_length=1, max_length=256)
    persistent_session: bool = True
    session_expiry: int = Field(default=86_400, ge=0, le=4_294_967_295)
    keepalive: int = Field(default=30, ge=5, le=65_535)
    username: str | None = None
    password: SecretStr | None = None
    password_env: str | None = Field(default=None, min_length=1)
    tls: MQTTTLSSettings | None = None
    subscriptions: list[MQTTSubscriptionSettings] = Field(default_factory=list)
    qos: Literal[0, 1] = 1
    shared_group: str | None = Field(default=None, min_length=1)
    rules: list[MQTTRuleSettings] = Field(default_factory=list)
    max_in_flight: int = Field(default=100, ge=1, le=65_535)
    max_message_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_inflight_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    ack_in_order: bool = True
    publish_topic: str = Field(default="pywats/{category}/{type}", min_length=1)
    publish_qos: Literal[0, 1, 2] = 1
    publish_retain: bool = False
    status_topic: str | None = "pywats/status/{client_id}"
    status_online: str = "online"
    status_offline: str = "offline"
    reconnect: ReconnectSettings = Field(default_factory=ReconnectSettings)

    @field_validator("protocol", mode="before")
    @classmethod
    def _protocol_text(cls, value: Any) -> Any:
        # TOML users write 5 or 5.0 as often as "5".
        if isinstance(value, int | float) and not isinstance(value, bool):
            return "5" if value == 5 else str(value)
        return value

    @field_validator("shared_group")
    @classmethod
    def _group_name(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "/+#\x00"):
            raise ValueError("a share name may not contain '/', '+', '#' (MQTT 5 section 4.8.2)")
        return value

    @property
    def max_message_size(self) -> int:
        """``max_message_bytes`` (the name of the previous release)."""
        return self.max_message_bytes

    def describe(self) -> dict[str, Any]:
        """The settings as shown in readiness and the admin API: no password, no key password."""
        return self.model_dump(
            mode="json", exclude={"password", "rules"}, exclude_none=True
        ) | {"rules": len(self.rules), "password": "**********" if self.password else None}

