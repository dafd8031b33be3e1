"""Name mapping rules for broker transports: which messages, by their topic or subject, become which events.

A rule pairs a filter on the message's name (an MQTT topic, a NATS subject, any ``sep``-separated name)
with what to build from a matching message::

    stations/{station}/results  ->  type "test.result", source "{station}", decoder "json"

What differs between protocols is only the filter syntax, and that is data: a ``FilterSyntax`` gives the
level separator, the one-level and the multi-level wildcard, whether the multi-level wildcard also matches
the parent level (MQTT ``a/#`` matches ``a``; NATS ``a.>`` does not), whether empty levels and whitespace
are allowed, the word for the name (``topic``, ``subject``), the header prefix, how an event id is derived
when a rule names no id field, and the error classes to raise. A level written ``{name}`` matches one level
like the one-level wildcard and captures it as the field ``name``.

Templates (event type, source, subjects, publish topic) are plain text with ``{field}`` placeholders.
Inbound fields: the name (``topic`` / ``subject``), the rule's named levels, and ``payload.<key>[.<key>...]``
(a JSON payload's members).

Payload decoders turn the body into an event payload (the rule supplies type and source): ``json`` (UTF-8
JSON, gzip accepted; an object as is, any other value as ``{"value": ...}``), ``text`` (``{"text": ...}``),
``bytes`` (``{"base64": ..., "size": <bytes>}``). Event decoders turn the body into whole events with a
registered decoder: ``cfx`` (IPC-CFX envelopes) and ``event`` (pyWATS event JSON).

Rules are tried in order; the first match wins. A message no rule matches raises the syntax's unrouted
error (a ``DecodeError``), which the transport turns into a dead-letter entry with reason ``unrouted``.

This module names no plug-in: ``pywats_mqtt.mapping`` and ``pywats_nats.mapping`` fill in a syntax each.
"""

from __future__ import annotations

import base64
import json
import os
import string
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from pydantic import SecretStr, ValidationError, model_validator

from .. import _json
from ..codec import DecodeContext, get_decoder, json_error_text, maybe_gunzip
from ..errors import ConfigError, DecodeError
from ..event import Event, Severity, derive_event_id
from .settings import TransportSettings

__all__ = [
    "EVENT_DECODERS",
    "EVENT_ID_MODES",
    "PAYLOAD_DECODERS",
    "FilterSyntax",
    "NameFilter",
    "NameMapper",
    "PayloadCodec",
    "Rule",
    "RuleTransportSettings",
    "Template",
    "check_rule_settings",
    "decode_events",
    "decode_payload",
]

#: Decoders that turn the body into the event payload; the mapping rule supplies type and source.
PAYLOAD_DECODERS: Final = ("json", "text", "bytes")
#: Decoders that turn the body into whole events, mapped to their name in ``pywats_events.codec``.
EVENT_DECODERS: Final = {"cfx": "cfx", "event": "event-json"}
#: How a rule without ``id_field`` makes event ids: by the syntax's identity (content or message id), or
#: fresh per delivery.
EVENT_ID_MODES: Final = ("content", "delivery")

_MISSING = object()
_WHITESPACE = frozenset(" \t\r\n\f\v")


def decode_payload(
    decoder: str, body: bytes, origin: str, error: type[DecodeError] = DecodeError
) -> dict[str, Any]:
    """Decode ``body`` into an event payload with the ``json``, ``text`` or ``bytes`` decoder.

    Args:
        decoder: one of ``PAYLOAD_DECODERS``.
        body: the message bytes.
        origin: where they came from (``mqtt://host:port/topic``), named in error messages.
        error: the ``DecodeError`` subclass to raise (the transport package's own).

    Raises:
        error: invalid UTF-8 or JSON (RFC 8259), corrupt gzip (RFC 1952), JSON nested too deeply, or an
            unknown decoder name.
    """
    if decoder == "json":
        try:
            text = maybe_gunzip(body, origin).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"invalid UTF-8 at byte {exc.start}", origin) from None
        except DecodeError as exc:  # corrupt gzip: report it with the transport's class
            raise error(exc.reason, origin) from None
        try:
            data = _json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"invalid JSON: {json_error_text(exc)}", origin) from None
        except RecursionError:
            raise error("JSON nested too deeply", origin) from None
        return data if isinstance(data, dict) else {"value": data}
    if decoder == "text":
        try:
            return {"text": body.decode("utf-8")}
        except UnicodeDecodeError as exc:
            raise error(f"invalid UTF-8 at byte {exc.start}", origin) from None
    if decoder == "bytes":
        return {"base64": base64.b64encode(body).decode("ascii"), "size": len(body)}
    raise error(f"unknown payload decoder {decoder!r}; expected one of {PAYLOAD_DECODERS}", origin)


def decode_events(
    decoder: str, body: bytes, ctx: DecodeContext, error: type[DecodeError] = DecodeError
) -> list[Event]:
    """Decode ``body`` into whole events with the ``cfx`` or ``event`` decoder.

    Args:
        decoder: a key of ``EVENT_DECODERS``.
        body: the message bytes.
        ctx: origin, a default source and the transport headers copied into each event.
        error: the ``DecodeError`` subclass for an unknown decoder name.

    Raises:
        DecodeError: as the underlying decoder raises (``CFXDecodeError`` subclasses, ``InvalidEventError``).
        error: an unknown decoder name.
    """
    try:
        name = EVENT_DECODERS[decoder]
    except KeyError:
        known = sorted(EVENT_DECODERS)
        raise error(f"unknown event decoder {decoder!r}; expected one of {known}", ctx.origin) from None
    return get_decoder(name)(body, ctx)


class PayloadCodec:
    """``decode_payload`` and ``decode_events`` raising one transport package's ``DecodeError`` subclass.

    Args:
        error: the package's payload error (``pywats_mqtt.PayloadDecodeError``...).
    """

    def __init__(self, error: type[DecodeError]) -> None:
        self.error = error

    def decode_payload(self, decoder: str, body: bytes, origin: str) -> dict[str, Any]:
        """``decode_payload`` (module function) with this codec's error class."""
        return decode_payload(decoder, body, origin, self.error)

    def decode_events(self, decoder: str, body: bytes, ctx: DecodeContext) -> list[Event]:
        """``decode_events`` (module function) with this codec's error class."""
        return decode_events(decoder, body, ctx, self.error)


class Template:
    """A text with ``{field}`` placeholders, checked against the allowed field names when built.

    Args:
        text: e.g. ``pywats/{category}/{type}`` or ``{station}``. ``{{`` and ``}}`` stand for braces.
        allowed: field names the template may use; a name ``payload`` also allows ``payload.<path>``.
        what: the setting the template comes from, named in error messages.

    Raises:
        config_error: unknown field, empty placeholder, a conversion (``!r``) or format spec (``:>5``), or
            an unbalanced brace.

    Subclasses set ``config_error`` (raised when built) and ``decode_error`` (raised by ``render``).
    """

    __slots__ = ("_constant", "_parts", "fields", "text")

    config_error: ClassVar[type[ConfigError]] = ConfigError
    decode_error: ClassVar[type[DecodeError]] = DecodeError

    def __init__(self, text: str, allowed: Iterable[str], what: str = "template") -> None:
        allowed = set(allowed)
        self.text = text
        parts: list[tuple[str, tuple[str, ...] | None]] = []
        fields: list[str] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise self.config_error(f"{what} {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            if literal:
                parts.append((literal, None))
            if field is None:
                continue
            if spec or conversion:
                raise self.config_error(f"{what} {text!r}: format specs and conversions are not supported")
            path = tuple(field.split("."))
            if not field or any(not p for p in path) or "[" in field:
                raise self.config_error(f"{what} {text!r}: invalid placeholder {{{field}}}")
            head = path[0]
            nested_ok = len(path) > 1 if head == "payload" else len(path) == 1
            if head not in allowed or not nested_ok:
                known = sorted(a if a != "payload" else "payload.<key>" for a in allowed)
                raise self.config_error(f"{what} {text!r}: unknown field {{{field}}}; known: {known}")
            parts.append(("", path))
            fields.append(field)
        self._parts = tuple(parts)
        self.fields = tuple(fields)
        self._constant = None if fields else "".join(literal for literal, _ in parts)

    @property
    def constant(self) -> bool:
        """True when the template has no placeholders."""
        return not self.fields

    def render(self, values: Mapping[str, Any], origin: str = "") -> str:
        """Fill the placeholders from ``values`` (``payload`` maps to the decoded JSON payload).

        Raises:
            decode_error: a field is missing from ``values`` (for instance a payload member).
        """
        if self._constant is not None:
            return self._constant  # no placeholders: no work per message
        out: list[str] = []
        for literal, path in self._parts:
            if path is None:
                out.append(literal)
                continue
            value: Any = values.get(path[0], _MISSING)
            for key in path[1:]:
                value = value.get(key, _MISSING) if isinstance(value, Mapping) else _MISSING
            if value is _MISSING or value is None:
                raise self.decode_error(
                    f"template {self.text!r} needs field {'.'.join(path)!r}, which this message lacks", origin
                )
            out.append(value if isinstance(value, str) else str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


@dataclass(frozen=True, slots=True)
class FilterSyntax:
    """How one protocol writes names and filters, and which errors its package raises.

    Attributes:
        protocol: the protocol's name in messages (``MQTT``, ``NATS``).
        sep: level separator (``/``, ``.``).
        one: the one-level wildcard (``+``, ``*``). many: the multi-level wildcard, last level only
            (``#``, ``>``).
        many_matches_parent: ``a/#`` also matches ``a`` (MQTT section 4.7.1.2); off: ``many`` needs at least
            one level (NATS ``>``).
        dollar_names: names starting with ``$`` are not matched by a filter starting with a wildcard (MQTT
            section 4.7.2).
        empty_levels: empty levels are allowed (MQTT); off: an empty level is an error (NATS).
        whitespace: whitespace is allowed in a filter (MQTT); off: refused (NATS).
        name_field: the field holding the message's name in templates (``topic``, ``subject``).
        level_word: what one level is called (``level``, ``token``). capture_word: what a named level is
            called (``segment``, ``token``).
        header_prefix: the mapper adds ``<prefix>_fields`` and ``<prefix>_rule`` to the event headers.
        id_scheme: prefix of ids derived from ``id_field`` (``mqtt`` gives ``mqtt:<name>#<value>``).
        identity: the id seed of a message when the rule names no ``id_field`` and ``event_id`` is
            ``content``: ``identity(name, body, headers, message_id)``; the event id is its RFC 4122 v5 UUID.
        check: extra checks of a filter pattern (raise ``filter_error``), or ``None``.
        filter_error, template, config_error, decode_error, unrouted_error: the package's exception
            classes and its ``Template`` subclass.
    """

    protocol: str
    sep: str
    one: str
    many: str
    many_matches_parent: bool
    dollar_names: bool
    empty_levels: bool
    whitespace: bool
    name_field: str
    level_word: str
    capture_word: str
    header_prefix: str
    id_scheme: str
    identity: Callable[[str, bytes, Mapping[str, Any], str | None], str]
    filter_error: type[ConfigError]
    template: type[Template]
    config_error: type[ConfigError]
    decode_error: type[DecodeError]
    unrouted_error: type[DecodeError]
    check: Callable[[str], None] | None = None

    @property
    def filter_word(self) -> str:
        """``topic filter``, ``subject filter``."""
        return f"{self.name_field} filter"


class NameFilter:
    """A filter on message names in ``syntax``, optionally with named single-level captures.

    Args:
        pattern: e.g. ``stations/{station}/results``, ``sensors/+/temperature``, ``line1/#``.
        syntax: the protocol's ``FilterSyntax`` (subclasses set it as a class attribute).

    Attributes:
        native: the filter as the protocol writes it (named levels become the one-level wildcard).
        names: the named levels, in order.

    Raises:
        syntax.filter_error: empty pattern, the multi-level wildcard not alone in the last level, a wildcard
            or brace mixed with text, a name that is not an identifier, repeated or reserved; what the
            syntax forbids besides (empty levels, whitespace, its own ``check``).
    """

    __slots__ = ("_levels", "_multi", "names", "native", "pattern")

    syntax: ClassVar[FilterSyntax]

    def __init__(self, pattern: str) -> None:
        sx = self.syntax
        err, what, unit = sx.filter_error, sx.filter_word, sx.level_word
        if not pattern:
            raise err(f"{what} is empty")
        if not sx.whitespace and any(c in _WHITESPACE for c in pattern):
            raise err(f"{what} {pattern!r} contains whitespace")
        if sx.check is not None:
            sx.check(pattern)
        self.pattern = pattern
        reserved = (sx.name_field, "payload")
        specials = f"{sx.one}{sx.many}{{}}"
        # Each compiled level is None (any one level), a str literal, or ("name",) capturing the level.
        compiled: list[str | tuple[str] | None] = []
        names: list[str] = []
        self._multi = False
        levels = pattern.split(sx.sep)
        for i, level in enumerate(levels):
            if not level and not sx.empty_levels:
                raise err(f"{what} {pattern!r}: empty {unit} (two {sx.sep!r} together or one at an end)")
            if level == sx.many:
                if i != len(levels) - 1:
                    raise err(f"{what} {pattern!r}: '{sx.many}' must be the last {unit}")
                self._multi = True
                break
            if level == sx.one:
                compiled.append(None)
            elif level.startswith("{") and level.endswith("}"):
                name = level[1:-1]
                if not name.isidentifier():
                    raise err(f"{what} {pattern!r}: {sx.capture_word} name {name!r} is not an identifier")
                if name in reserved or name in names:
                    raise err(f"{what} {pattern!r}: {sx.capture_word} name {name!r} is reserved or used twice")
                names.append(name)
                compiled.append((name,))
            elif any(c in level for c in specials):
                raise err(
                    f"{what} {pattern!r}: {unit} {level!r} mixes a wildcard or brace with text; "
                    f"'{sx.one}', '{sx.many}' and '{{name}}' must fill a whole {unit}"
                )
            else:
                compiled.append(level)
        self._levels = tuple(compiled)
        self.names = tuple(names)
        parts = [sx.one if lv is None or isinstance(lv, tuple) else lv for lv in self._levels]
        self.native = sx.sep.join([*parts, sx.many] if self._multi else parts)

    def match(self, name: str) -> dict[str, str] | None:
        """The named levels' values when ``name`` matches this filter, else ``None``.

        Args:
            name: a message name as received (no wildcards).
        """
        sx = self.syntax
        parts = name.split(sx.sep)
        levels = self._levels
        if sx.dollar_names and name.startswith("$") and (not levels or not isinstance(levels[0], str)):
            return None
        if self._multi:
            if len(parts) < len(levels) or (len(parts) == len(levels) and not sx.many_matches_parent):
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
        return f"{type(self).__name__}({self.pattern!r})"


class Rule:
    """One compiled rule: a name filter and how to build events from matching messages.

    Build with ``compile`` (or the package's ``MappingRule.build``).

    Attributes:
        filter: the name filter.
        decoder: ``json``, ``text``, ``bytes`` (payload decoders) or ``cfx``, ``event`` (whole events).
        type: event type template; required for payload decoders, ``None`` for ``cfx``/``event``.
        source: source template (default ``{<name field>}``).
        subjects: subject templates, in order.
        severity: severity for payload decoders (default ``info``).
        id_field: dotted path of a JSON payload member holding the message's own id; the event id is then
            an RFC 4122 v5 UUID of the name and that value, so a redelivered copy keeps its id.
        event_id: without ``id_field``: ``content`` (default) derives the id from the syntax's
            ``identity`` (MQTT: the message's content; NATS: its message id), ``delivery`` gives each
            delivery a fresh UUID4.
        source_set: the rule names ``source`` itself; for ``cfx``/``event`` rules it then replaces the
            source the message carries (otherwise it is only the fallback when the message names none).
        index: position in the rule list (reported in event headers).
    """

    __slots__ = ("decoder", "event_id", "filter", "id_field", "index", "severity", "source", "source_set",
                 "subjects", "type")

    syntax: ClassVar[FilterSyntax]

    def __init__(
        self,
        filter: NameFilter,
        decoder: str,
        type: Template | None,
        source: Template,
        subjects: tuple[Template, ...] = (),
        severity: Severity | None = None,
        id_field: str | None = None,
        event_id: str = "content",
        source_set: bool = False,
        index: int = 0,
    ) -> None:
        self.filter = filter
        self.decoder = decoder
        self.type = type
        self.source = source
        self.subjects = subjects
        self.severity = severity
        self.id_field = id_field
        self.event_id = event_id
        self.source_set = source_set
        self.index = index

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.filter.pattern!r}, decoder={self.decoder!r}, index={self.index})"

    @classmethod
    def compile(
        cls,
        filter: NameFilter,
        *,
        decoder: str = "json",
        type: str | None = None,
        source: str | None = None,
        subjects: Sequence[str] = (),
        severity: str | Severity | None = None,
        id_field: str | None = None,
        event_id: str = "content",
        index: int = 0,
    ) -> Any:
        """Compile a rule from its settings (see the class attributes for the meaning of each).

        Raises:
            syntax.template.config_error: a template uses an unknown field.
            syntax.config_error: unknown decoder, ``type`` missing for a payload decoder or given for
                ``cfx``/``event``, ``id_field`` without the ``json`` decoder, unknown severity or
                ``event_id`` mode.
        """
        sx = cls.syntax
        err = sx.config_error
        where = f"rules[{index}]"
        if event_id not in EVENT_ID_MODES:
            raise err(f"{where}.event_id: {event_id!r}; expected one of {list(EVENT_ID_MODES)}")
        if decoder not in PAYLOAD_DECODERS and decoder not in EVENT_DECODERS:
            raise err(
                f"{where}.decoder: unknown decoder {decoder!r}; expected one of {[*PAYLOAD_DECODERS, *EVENT_DECODERS]}"
            )
        whole = decoder in EVENT_DECODERS
        allowed = {sx.name_field, *filter.names} | ({"payload"} if decoder == "json" else set())
        if whole:
            if type is not None or severity is not None or id_field is not None:
                raise err(
                    f"{where}: the {decoder!r} decoder takes type, severity and id from the message; "
                    "remove type, severity and id_field from this rule"
                )
        elif not type:
            raise err(f"{where}.type: required with the {decoder!r} decoder")
        if id_field is not None and decoder != "json":
            raise err(f"{where}.id_field: only the 'json' decoder has payload members")
        try:
            sev = Severity(severity) if severity is not None else None
        except ValueError:
            raise err(
                f"{where}.severity: unknown severity {severity!r}; expected one of {[s.value for s in Severity]}"
            ) from None
        tpl = sx.template
        return cls(
            filter=filter,
            decoder=decoder,
            type=tpl(type, allowed, f"{where}.type") if type else None,
            source=tpl(source or "{" + sx.name_field + "}", allowed, f"{where}.source"),
            subjects=tuple(tpl(s, allowed, f"{where}.subjects") for s in subjects),
            severity=sev,
            id_field=id_field,
            event_id=event_id,
            source_set=source is not None,
            index=index,
        )

    def build_events(
        self,
        name: str,
        fields: dict[str, str],
        body: bytes,
        headers: dict[str, Any],
        origin: str,
        message_id: str | None = None,
    ) -> list[Event]:
        """Build the events of one matching message.

        Args:
            name: the message's topic or subject.
            fields: the named levels' values (from ``NameFilter.match``).
            body: the message bytes.
            headers: transport metadata copied into each event's ``headers``.
            origin: the message's origin (``mqtt://host:port/topic``) for error messages.
            message_id: the message's own stable id, if the protocol has one (given to ``identity``).

        Raises:
            DecodeError: the body cannot be decoded (the syntax's ``decode_error`` or the CFX decoder's
                error), a template field is missing, or the resulting event is invalid.
        """
        sx = self.syntax
        values: dict[str, Any] = {sx.name_field: name, **fields}
        if self.decoder in EVENT_DECODERS:
            source = self.source.render(values, origin)
            ctx = DecodeContext(origin=origin, source=source, headers=headers)
            events = decode_events(self.decoder, body, ctx, sx.decode_error)
            if self.source_set:
                if not 1 <= len(source) <= 500:
                    raise sx.decode_error(
                        f"event field 'source': {self.source.text!r} gives {len(source)} characters (1..500)", origin
                    )
                # The rule's own source template wins over the one in the message: the integrator wrote it
                # because the message's (a CFX handle, another bus's source) is not the name wanted here.
                events = [e if e.source == source else e.model_copy(update={"source": source}) for e in events]
            return events
        payload = decode_payload(self.decoder, body, origin, sx.decode_error)
        values["payload"] = payload
        assert self.type is not None  # guaranteed by compile() for payload decoders
        if self.id_field is not None:
            own = sx.template("{payload." + self.id_field + "}", ("payload",)).render(values, origin)
            event_id = derive_event_id(f"{sx.id_scheme}:{name}#{own}", 0)
        elif self.event_id == "content":
            event_id = derive_event_id(sx.identity(name, body, headers, message_id), 0)
        else:
            event_id = str(uuid.uuid4())
        try:
            return [
                Event(
                    id=event_id,
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
            raise sx.decode_error(f"event field {loc!r}: {first['msg']}", origin) from None


class NameMapper:
    """The ordered rule list: finds the first rule matching a name and builds its events.

    Args:
        rules: compiled rules, tried in order (all of one syntax).
        cache_size: number of distinct names whose matching rule is remembered (names repeat a lot on a
            factory line; the cache keeps matching cost flat).
    """

    syntax: ClassVar[FilterSyntax]

    def __init__(self, rules: Sequence[Rule], cache_size: int = 4096) -> None:
        self.rules = tuple(rules)
        self._cache: dict[str, tuple[Rule, dict[str, str]] | None] = {}
        self._cache_size = cache_size
        prefix = self.syntax.header_prefix
        self._fields_key = f"{prefix}_fields"
        self._rule_key = f"{prefix}_rule"

    @property
    def filters(self) -> list[str]:
        """The distinct native filters of the rules, in rule order (what to subscribe to by default)."""
        return list(dict.fromkeys(r.filter.native for r in self.rules))

    def route(self, name: str) -> tuple[Rule, dict[str, str]] | None:
        """The first rule matching ``name`` and its named levels, or ``None``."""
        try:
            return self._cache[name]
        except KeyError:
            pass
        found: tuple[Rule, dict[str, str]] | None = None
        for rule in self.rules:
            fields = rule.filter.match(name)
            if fields is not None:
                found = (rule, fields)
                break
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # cheap bound; refills with the names actually in use
        self._cache[name] = found
        return found

    def map_message(
        self, name: str, body: bytes, headers: dict[str, Any], origin: str, message_id: str | None = None
    ) -> list[Event]:
        """Events for one message (``headers`` gain ``<prefix>_fields`` and ``<prefix>_rule``).

        Raises:
            syntax.unrouted_error: no rule matches ``name``.
            DecodeError: the matching rule cannot build events from the body.
        """
        found = self.route(name)
        if found is None:
            sx = self.syntax
            raise sx.unrouted_error(f"no mapping rule matches {sx.name_field} {name!r}", origin)
        rule, fields = found
        headers = {**headers, self._fields_key: dict(fields), self._rule_key: rule.index}
        return rule.build_events(name, fields, body, headers, origin, message_id)


def check_rule_settings(settings: TransportSettings) -> None:
    """The checks every rule-mapping transport's settings model runs after validation (call it from a
    pydantic ``model_validator(mode="after")``): the reconnect delays are in order, ``decoder`` is not set
    on the transport (each rule names its own), at least one rule is given, and a ``password_env``
    variable is read into ``password`` (a ``SecretStr``) when ``password`` is unset.

    Raises:
        ValueError: what is inconsistent, naming the key (pydantic reports it as a validation error).
    """
    r = settings.reconnect
    if r.max_delay < r.initial_delay:
        raise ValueError("reconnect.max_delay (reconnect_max) must be >= reconnect.initial_delay (reconnect_initial)")
    if "decoder" in settings.model_fields_set:
        raise ValueError("decoder: set the decoder on each mapping rule (rules[].decoder), not on the transport")
    env = getattr(settings, "password_env", None)
    if getattr(settings, "password", None) is None and env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ValueError(f"password_env: environment variable {env} is not set")
        object.__setattr__(settings, "password", SecretStr(value))
    if not getattr(settings, "rules", None):
        raise ValueError("rules: give at least one mapping rule (unmatched messages are dead-lettered)")


class RuleTransportSettings(TransportSettings):
    """Base of the settings of a rule-mapping transport (MQTT, NATS): ``from_options`` raising the
    package's ``config_error`` and naming the key as written, the checks of ``check_rule_settings``, and
    the attribute names of the previous release (``max_inflight``, ``reconnect_initial``,
    ``reconnect_max``) as read-only properties. Subclasses set ``config_error`` and add ``rules``."""

    config_error: ClassVar[type[Exception]] = ConfigError

    @model_validator(mode="after")
    def _rule_settings(self) -> Self:
        check_rule_settings(self)
        return self

    @classmethod
    def from_options(cls, options: dict[str, Any], where: str = "transport") -> Self:
        """Validate a configuration table.

        Args:
            options: the table's keys, without ``kind`` and ``name``.
            where: prefix naming the table in error messages (``transports[line1]``).

        Raises:
            config_error: the first invalid key, named by its path (``transports[l1].rules[0].topic``).
        """
        return cls.from_table(options, where, cls.config_error)

    @property
    def max_inflight(self) -> int:
        """``max_in_flight`` (the name of the previous release)."""
        return self.max_in_flight

    @property
    def reconnect_initial(self) -> float:
        """``reconnect.initial_delay`` (the name of the previous release)."""
        return self.reconnect.initial_delay

    @property
    def reconnect_max(self) -> float:
        """``reconnect.max_delay`` (the name of the previous release)."""
        return self.reconnect.max_delay
