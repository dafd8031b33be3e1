"""Topic mapping: which MQTT messages become which events.

A rule pairs a topic filter with what to build from a matching message::

    stations/{station}/results  ->  type "test.result", source "{station}", decoder "json"

Topic filters follow MQTT 3.1.1 / MQTT 5 section 4.7: levels separated by ``/``, ``+`` matches exactly one
level, ``#`` (last level only) matches the parent level and any number of levels below it. A level written
``{name}`` matches one level like ``+`` and captures it as the field ``name``. Topics starting with ``$``
(``$SYS/...``) are not matched by a filter starting with a wildcard, as the standard says.

Templates (event type, source, subjects, publish topic) are plain text with ``{field}`` placeholders.
Inbound fields: ``topic``, the rule's named segments, and ``payload.<key>[.<key>...]`` (a JSON payload's
members). Outbound (publish) fields: ``type``, ``category``, ``source``, ``severity``, ``id``.

Rules are tried in order; the first match wins. A message no rule matches raises ``UnroutedTopicError``,
which the transport turns into a dead-letter entry with reason ``unrouted``.

Event ids (one message is one event): the sender's own id when the rule names it (``id_field``), else by
default a UUID5 of the message's content (topic, payload bytes, MQTT 5 user properties and content type),
so a copy of the same message (redelivered after a crash, or sent twice by the broker for overlapping
subscriptions) gets the same id and is skipped by the bus's idempotency records. ``event_id = "delivery"``
gives every delivery a fresh id instead, for streams whose identical readings are separate events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pywats_events.event import Event, Severity
from pywats_events.transports import mapping as _core

from .errors import MQTTConfigError, PayloadDecodeError, TemplateError, TopicFilterError, UnroutedTopicError

__all__ = ["EVENT_ID_MODES", "MappingRule", "Template", "TopicFilter", "TopicMapper", "content_key", "filter_covers"]

#: Field names a rule's named segments may not take (they are provided by the mapper itself).
RESERVED_FIELDS = frozenset({"topic", "payload"})

#: How a rule without ``id_field`` makes event ids: from the message's content, or fresh per delivery.
EVENT_ID_MODES = _core.EVENT_ID_MODES


def filter_covers(outer: str, inner: str) -> bool:
    """True when every topic name matching MQTT filter ``inner`` also matches filter ``outer``.

    Used to subscribe to a set of filters without overlap: a filter covered by another one is left out, so
    the broker never sends two copies of one message for it (MQTT 3.1.1 section 3.3.5 lets a server send one
    copy per matching subscription; Mosquitto does).

    Args:
        outer, inner: plain MQTT topic filters (``+`` and ``#``; no ``$share/`` prefix, no named segments).
    """
    a, b = outer.split("/"), inner.split("/")
    # A filter starting with a wildcard matches no $-topic (MQTT section 4.7.2): it cannot cover one.
    if b[0].startswith("$") and a[0] in ("+", "#"):
        return False
    for i, level in enumerate(a):
        if level == "#":
            return True  # covers the rest, and the parent level itself ("a/#" matches "a")
        if i >= len(b):
            return False
        other = b[i]
        if other == "#":
            return False
        if level == "+":
            continue
        if level != other:
            return False
    return len(a) == len(b)


def content_key(topic: str, body: bytes, headers: Mapping[str, Any]) -> str:
    """A stable digest of one MQTT message's content: topic, payload and the MQTT 5 properties a copy keeps.

    Two copies of one message (a redelivery, a second copy for an overlapping subscription) give the same
    key. Left out on purpose: the packet id, DUP flag, QoS and Subscription Identifiers (they differ between
    copies) and the Message Expiry Interval (the broker lowers it while the message waits).

    Args:
        topic: the topic name.
        body: the payload bytes.
        headers: the transport headers; ``mqtt_user_properties`` and ``mqtt_content_type`` are used.

    Returns:
        40 hex digits (SHA-1).
    """
    h = hashlib.sha1(topic.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(body)
    user = headers.get("mqtt_user_properties")
    ctype = headers.get("mqtt_content_type")
    if user or ctype:
        h.update(b"\x00")
        h.update(json.dumps([sorted(user.items()) if user else None, ctype], default=str).encode())
    return h.hexdigest()


def _check(pattern: str) -> None:
    if "\x00" in pattern:
        raise TopicFilterError(f"topic filter {pattern!r} contains a NUL character")
    if pattern.startswith("$share/"):
        raise TopicFilterError(
            f"topic filter {pattern!r}: write the plain filter and set shared_group instead of $share/"
        )


def _identity(topic: str, body: bytes, headers: Mapping[str, Any], message_id: str | None) -> str:
    return "mqtt-content:" + content_key(topic, body, headers)


class Template(_core.Template):
    """A text with ``{field}`` placeholders (``pywats_events.transports.mapping.Template``) raising
    ``TemplateError`` when built and ``PayloadDecodeError`` when a message lacks a field."""

    __slots__ = ()
    config_error = TemplateError
    decode_error = PayloadDecodeError


#: MQTT 3.1.1 / MQTT 5 section 4.7 topic filters.
SYNTAX = _core.FilterSyntax(
    protocol="MQTT",
    sep="/",
    one="+",
    many="#",
    many_matches_parent=True,
    dollar_names=True,
    empty_levels=True,
    whitespace=True,
    name_field="topic",
    level_word="level",
    capture_word="segment",
    header_prefix="mqtt",
    id_scheme="mqtt",
    identity=_identity,
    check=_check,
    filter_error=TopicFilterError,
    template=Template,
    config_error=MQTTConfigError,
    decode_error=PayloadDecodeError,
    unrouted_error=UnroutedTopicError,
)


class TopicFilter(_core.NameFilter):
    """An MQTT topic filter, optionally with named single-level segments.

    Args:
        pattern: e.g. ``stations/{station}/results``, ``sensors/+/temperature``, ``line1/#``.

    Attributes:
        mqtt_filter: the filter to subscribe with (named segments become ``+``).
        names: the named segments, in order.

    Raises:
        TopicFilterError: empty pattern, ``#`` not alone in the last level, ``+`` or ``{`` inside a level,
            a segment name that is not an identifier, repeated or reserved (``topic``, ``payload``).
    """

    __slots__ = ()
    syntax = SYNTAX

    @property
    def mqtt_filter(self) -> str:
        """The filter to subscribe with (named segments become ``+``)."""
        return self.native


class MappingRule(_core.Rule):
    """One compiled rule: a topic filter and how to build events from matching messages
    (``pywats_events.transports.mapping.Rule``; ``content`` ids come from ``content_key``)."""

    __slots__ = ()
    syntax = SYNTAX

    @classmethod
    def build(
        cls,
        topic: str,
        *,
        decoder: str = "json",
        type: str | None = None,
        source: str | None = None,
        subjects: Sequence[str] = (),
        severity: str | Severity | None = None,
        id_field: str | None = None,
        event_id: str = "content",
        index: int = 0,
    ) -> MappingRule:
        """Compile a rule from its settings (see ``Rule`` for the meaning of each).

        Raises:
            TopicFilterError: invalid topic filter.
            TemplateError: a template uses an unknown field.
            MQTTConfigError: unknown decoder, ``type`` missing for a payload decoder or given for
                ``cfx``/``event``, ``id_field`` without the ``json`` decoder, unknown severity or
                ``event_id`` mode.
        """
        if event_id not in EVENT_ID_MODES:
            raise MQTTConfigError(f"rules[{index}].event_id: {event_id!r}; expected one of {list(EVENT_ID_MODES)}")
        rule: MappingRule = cls.compile(
            TopicFilter(topic), decoder=decoder, type=type, source=source, subjects=subjects, severity=severity,
            id_field=id_field, event_id=event_id, index=index,
        )  # fmt: skip
        return rule

    def to_events(
        self, topic: str, fields: dict[str, str], body: bytes, headers: dict[str, Any], origin: str
    ) -> list[Event]:
        """Build the events of one matching message (``origin``: ``mqtt://host:port/topic``).

        Raises:
            DecodeError: the payload cannot be decoded (``PayloadDecodeError`` or the CFX decoder's error),
                a template field is missing, or the resulting event is invalid.
        """
        return self.build_events(topic, fields, body, headers, origin)


class TopicMapper(_core.NameMapper):
    """The ordered rule list: finds the first rule matching a topic and builds its events.

    Args:
        rules: compiled rules, tried in order.
        cache_size: number of distinct topics whose matching rule is remembered.
    """

    syntax = SYNTAX

    def map(self, topic: str, body: bytes, headers: dict[str, Any], origin: str) -> list[Event]:
        """Events for one message (``headers`` gain ``mqtt_fields`` and ``mqtt_rule``).

        Raises:
            UnroutedTopicError: no rule matches ``topic``.
            DecodeError: the matching rule cannot build events from the payload.
        """
        return self.map_message(topic, body, headers, origin)
