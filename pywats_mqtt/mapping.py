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
import string
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pywats_events.codec import DecodeContext
from pywats_events.event import Event, Severity, derive_event_id

from .codec import EVENT_DECODERS, PAYLOAD_DECODERS, decode_events, decode_payload
from .errors import MQTTConfigError, PayloadDecodeError, TemplateError, TopicFilterError, UnroutedTopicError

__all__ = ["EVENT_ID_MODES", "MappingRule", "Template", "TopicFilter", "TopicMapper", "content_key", "filter_covers"]

#: Field names a rule's named segments may not take (they are provided by the mapper itself).
RESERVED_FIELDS = frozenset({"topic", "payload"})

#: How a rule without ``id_field`` makes event ids: from the message's content, or fresh per delivery.
EVENT_ID_MODES = ("content", "delivery")

_MISSING = object()


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


class TopicFilter:
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

    __slots__ = ("_levels", "_multi", "mqtt_filter", "names", "pattern")

    def __init__(self, pattern: str) -> None:
        if not pattern:
            raise TopicFilterError("topic filter is empty")
        if "\x00" in pattern:
            raise TopicFilterError(f"topic filter {pattern!r} contains a NUL character")
        if pattern.startswith("$share/"):
            raise TopicFilterError(
                f"topic filter {pattern!r}: write the plain filter and set shared_group instead of $share/"
            )
        self.pattern = pattern
        levels = pattern.split("/")
        # Each compiled level is None (any one level), a str literal, or ("name",) capturing the level.
        compiled: list[str | tuple[str] | None] = []
        names: list[str] = []
        self._multi = False
        for i, level in enumerate(levels):
            if level == "#":
                if i != len(levels) - 1:
                    raise TopicFilterError(f"topic filter {pattern!r}: '#' must be the last level")
                self._multi = True
                break
            if level == "+":
                compiled.append(None)
            elif level.startswith("{") and level.endswith("}"):
                name = level[1:-1]
                if not name.isidentifier():
                    raise TopicFilterError(
                        f"topic filter {pattern!r}: segment name {name!r} is not an identifier"
                    )
                if name in RESERVED_FIELDS or name in names:
                    raise TopicFilterError(
                        f"topic filter {pattern!r}: segment name {name!r} is reserved or used twice"
                    )
                names.append(name)
                compiled.append((name,))
            elif any(c in level for c in "+#{}"):
                raise TopicFilterError(
                    f"topic filter {pattern!r}: level {level!r} mixes a wildcard or brace with text; "
                    "'+', '#' and '{name}' must fill a whole level"
                )
            else:
                compiled.append(level)
        self._levels = tuple(compiled)
        self.names = tuple(names)
        self.mqtt_filter = "/".join(
            "+" if lv is None or isinstance(lv, tuple) else lv for lv in self._levels
        ) + ("/#" if self._multi and self._levels else "#" if self._multi else "")

    def match(self, topic: str) -> dict[str, str] | None:
        """The named segments' values when ``topic`` matches this filter, else ``None``.

        Args:
            topic: a topic name as received (no wildcards).
        """
        parts = topic.split("/")
        levels = self._levels
        if topic.startswith("$") and (not levels or not isinstance(levels[0], str)):
            return None
        if self._multi:
            if len(parts) < len(levels):
                return None
        elif len(parts) != len(levels):
            return None
        fields: dict[str, str] = {}
        for level, part in zip(levels, parts, strict=False):
            if level is None:
                continue
            if isinstance(level, tuple):
                fields[level[0]] = part
            elif level != part:
                return None
        return fields

    def __repr__(self) -> str:
        return f"TopicFilter({self.pattern!r})"


class Template:
    """A text with ``{field}`` placeholders, checked against the allowed field names when built.

    Args:
        text: e.g. ``pywats/{category}/{type}`` or ``{station}``. ``{{`` and ``}}`` stand for braces.
        allowed: field names the template may use; a name ``payload`` also allows ``payload.<path>``.
        what: the setting the template comes from, named in error messages.

    Raises:
        TemplateError: unknown field, empty placeholder, a conversion (``!r``) or format spec (``:>5``),
            or an unbalanced brace.
    """

    __slots__ = ("_parts", "fields", "text")

    def __init__(self, text: str, allowed: Iterable[str], what: str = "template") -> None:
        allowed = set(allowed)
        self.text = text
        parts: list[tuple[str, tuple[str, ...] | None]] = []
        fields: list[str] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(f"{what} {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if literal:
                parts.append((literal, None))
            if field is None:
                continue
            if spec or conversion:
                raise TemplateError(f"{what} {text!r}: format specs and conversions are not supported")
            path = tuple(field.split("."))
            if not field or any(not p for p in path) or "[" in field:
                raise TemplateError(f"{what} {text!r}: invalid placeholder {{{field}}}")
            head = path[0]
            nested_ok = len(path) > 1 if head == "payload" else len(path) == 1
            if head not in allowed or not nested_ok:
                known = sorted(a if a != "payload" else "payload.<key>" for a in allowed)
                raise TemplateError(f"{what} {text!r}: unknown field {{{field}}}; known: {known}")
            parts.append(("", path))
            fields.append(field)
        self._parts = tuple(parts)
        self.fields = tuple(fields)

    @property
    def constant(self) -> bool:
        """True when the template has no placeholders."""
        return not self.fields

    def render(self, values: Mapping[str, Any], origin: str = "") -> str:
        """Fill the placeholders from ``values`` (``payload`` maps to the decoded JSON payload).

        Raises:
            PayloadDecodeError: a field is missing from ``values`` (for instance a payload member).
        """
        out: list[str] = []
        for literal, path in self._parts:
            if path is None:
                out.append(literal)
                continue
            value: Any = values.get(path[0], _MISSING)
            for key in path[1:]:
                value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
            if value is _MISSING or value is None:
                raise PayloadDecodeError(
                    f"template {self.text!r} needs field {'.'.join(path)!r}, which this message lacks", origin
                )
            out.append(value if isinstance(value, str) else str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


@dataclass(frozen=True, slots=True)
class MappingRule:
    """One compiled rule: a topic filter and how to build events from matching messages.

    Attributes:
        filter: the topic filter.
        decoder: ``json``, ``text``, ``bytes`` (payload decoders) or ``cfx``, ``event`` (whole events).
        type: event type template; required for payload decoders, ``None`` for ``cfx``/``event``.
        source: source template (default ``{topic}``).
        subjects: subject templates, in order.
        severity: severity for payload decoders (default ``info``).
        id_field: dotted path of a JSON payload member holding the message's own id; the event id is then
            derived from topic and that value (RFC 4122 v5), so a redelivered copy keeps its id and
            handlers that already finished skip it.
        event_id: without ``id_field``: ``content`` (default) derives the id from the message's content
            (``content_key``, RFC 4122 v5), so copies of one message are one event; ``delivery`` gives each
            delivery a fresh UUID4 (identical messages are separate events, copies are not caught).
        source_set: the rule names ``source`` itself; for ``cfx``/``event`` rules it then replaces the
            source the message carries (otherwise it is only the fallback for a CFX envelope without one).
        index: position in the rule list (reported in event headers).
    """

    filter: TopicFilter
    decoder: str
    type: Template | None
    source: Template
    subjects: tuple[Template, ...] = ()
    severity: Severity | None = None
    id_field: str | None = None
    event_id: str = "content"
    source_set: bool = False
    index: int = 0

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
        """Compile a rule from its settings (see the class attributes for the meaning of each).

        Raises:
            TopicFilterError: invalid topic filter.
            TemplateError: a template uses an unknown field.
            MQTTConfigError: unknown decoder, ``type`` missing for a payload decoder or given for
                ``cfx``/``event``, ``id_field`` without the ``json`` decoder, unknown severity or
                ``event_id`` mode.
        """
        where = f"rules[{index}]"
        if event_id not in EVENT_ID_MODES:
            raise MQTTConfigError(f"{where}.event_id: {event_id!r}; expected one of {list(EVENT_ID_MODES)}")
        flt = TopicFilter(topic)
        if decoder not in PAYLOAD_DECODERS and decoder not in EVENT_DECODERS:
            raise MQTTConfigError(
                f"{where}.decoder: unknown decoder {decoder!r}; "
                f"expected one of {[*PAYLOAD_DECODERS, *EVENT_DECODERS]}"
            )
        whole = decoder in EVENT_DECODERS
        allowed = {"topic", *flt.names} | ({"payload"} if decoder == "json" else set())
        if whole:
            if type is not None or severity is not None or id_field is not None:
                raise MQTTConfigError(
                    f"{where}: the {decoder!r} decoder takes type, severity and id from the message; "
                    "remove type, severity and id_field from this rule"
                )
        elif not type:
            raise MQTTConfigError(f"{where}.type: required with the {decoder!r} decoder")
        if id_field is not None and decoder != "json":
            raise MQTTConfigError(f"{where}.id_field: only the 'json' decoder has payload members")
        try:
            sev = Severity(severity) if severity is not None else None
        except ValueError:
            raise MQTTConfigError(
                f"{where}.severity: unknown severity {severity!r}; "
                f"expected one of {[s.value for s in Severity]}"
            ) from None
        return cls(
            filter=flt,
            decoder=decoder,
            type=Template(type, allowed, f"{where}.type") if type else None,
            source=Template(source or "{topic}", allowed, f"{where}.source"),
            subjects=tuple(Template(s, allowed, f"{where}.subjects") for s in subjects),
            severity=sev,
            id_field=id_field,
            event_id=event_id,
            source_set=source is not None,
            index=index,
        )

    def to_events(
        self, topic: str, fields: dict[str, str], body: bytes, headers: dict[str, Any], origin: str
    ) -> list[Event]:
        """Build the events of one matching message.

        Args:
            topic: the message's topic name.
            fields: the named segments' values (from ``TopicFilter.match``).
            body: the payload bytes.
            headers: transport metadata copied into each event's ``headers``.
            origin: the message's origin (``mqtt://host:port/topic``) for error messages.

        Raises:
            DecodeError: the payload cannot be decoded (``PayloadDecodeError`` or the CFX decoder's error),
                a template field is missing, or the resulting event is invalid.
        """
        values: dict[str, Any] = {"topic": topic, **fields}
        if self.decoder in EVENT_DECODERS:
            source = self.source.render(values, origin)
            ctx = DecodeContext(origin=origin, source=source, headers=headers)
            events = decode_events(self.decoder, body, ctx)
            if self.source_set:
                if not 1 <= len(source) <= 500:
                    raise PayloadDecodeError(
                        f"event field 'source': {self.source.text!r} gives {len(source)} characters (1..500)", origin
                    )
                # The rule's own source template wins over the one in the message: the integrator wrote it
                # because the message's (a CFX handle, another bus's source) is not the name wanted here.
                events = [e if e.source == source else e.model_copy(update={"source": source}) for e in events]
            return events
        payload = decode_payload(self.decoder, body, origin)
        values["payload"] = payload
        assert self.type is not None  # guaranteed by build() for payload decoders
        event_id: str | None = None
        if self.id_field is not None:
            own = Template("{payload." + self.id_field + "}", ("payload",)).render(values, origin)
            event_id = derive_event_id(f"mqtt:{topic}#{own}", 0)
        elif self.event_id == "content":
            event_id = derive_event_id("mqtt-content:" + content_key(topic, body, headers), 0)
        try:
            return [
                Event(
                    id=event_id or str(uuid.uuid4()),
                    type=self.type.render(values, origin),
                    source=self.source.render(values, origin),
                    payload=payload,
                    severity=self.severity or Severity.INFO,
                    subjects=tuple(s.render(values, origin) for s in self.subjects),
                    headers=headers,
                )
            ]
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(event)"
            raise PayloadDecodeError(f"event field {loc!r}: {first['msg']}", origin) from None


class TopicMapper:
    """The ordered rule list: finds the first rule matching a topic and builds its events.

    Args:
        rules: compiled rules, tried in order.
        cache_size: number of distinct topics whose matching rule is remembered (topics repeat a lot on
            a factory line; the cache keeps matching cost flat).
    """

    def __init__(self, rules: Sequence[MappingRule], cache_size: int = 4096) -> None:
        self.rules = tuple(rules)
        self._cache: dict[str, tuple[MappingRule, dict[str, str]] | None] = {}
        self._cache_size = cache_size

    @property
    def filters(self) -> list[str]:
        """The distinct MQTT filters of the rules, in rule order (what to subscribe to by default)."""
        return list(dict.fromkeys(r.filter.mqtt_filter for r in self.rules))

    def route(self, topic: str) -> tuple[MappingRule, dict[str, str]] | None:
        """The first rule matching ``topic`` and its named segments, or ``None``."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found: tuple[MappingRule, dict[str, str]] | None = None
        for rule in self.rules:
            fields = rule.filter.match(topic)
            if fields is not None:
                found = (rule, fields)
                break
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # cheap bound; refills with the topics actually in use
        self._cache[topic] = found
        return found

    def map(self, topic: str, body: bytes, headers: dict[str, Any], origin: str) -> list[Event]:
        """Events for one message (``headers`` gain ``mqtt_fields`` and ``mqtt_rule``).

        Raises:
            UnroutedTopicError: no rule matches ``topic``.
            DecodeError: the matching rule cannot build events from the payload.
        """
        found = self.route(topic)
        if found is None:
            raise UnroutedTopicError(f"no mapping rule matches topic {topic!r}", origin)
        rule, fields = found
        headers = {**headers, "mqtt_fields": dict(fields), "mqtt_rule": rule.index}
        return rule.to_events(topic, fields, body, headers, origin)
