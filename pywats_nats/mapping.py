"""Subject mapping: which JetStream messages become which events.

A rule pairs a subject filter with what to build from a matching message::

    line1.stations.{station}.results  ->  type "test.result", source "{station}", decoder "json"

Subject filters follow NATS subject syntax (NATS docs, "Subject-Based Messaging"): tokens separated by
``.``, ``*`` matches exactly one token, ``>`` (last token only) matches one or more tokens. A token written
``{name}`` matches one token like ``*`` and captures it as the field ``name``.

Templates (event type, source, subjects, publish subject) are plain text with ``{field}`` placeholders.
Inbound fields: ``subject``, the rule's named tokens, and ``payload.<key>[.<key>...]`` (a JSON body's
members). Outbound (publish) fields: ``type``, ``category``, ``source``, ``severity``, ``id``.

Event ids (the settlement contract needs a redelivered copy to keep its id): a payload rule with
``id_field`` derives the id from the subject and that member; otherwise from the message's own id, which
the transport takes from the ``Nats-Msg-Id`` header, or failing that from the stream name and stream
sequence (unique and stable for as long as the message is in the stream). ``cfx`` and ``event`` rules keep
the ids the messages carry (CFX ``UniqueID``, the event's ``id``).

Rules are tried in order; the first match wins. A message no rule matches raises ``UnroutedSubjectError``,
which the transport turns into a dead-letter entry with reason ``unrouted``.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from pywats_events.codec import DecodeContext
from pywats_events.event import Event, Severity, derive_event_id

from .codec import EVENT_DECODERS, PAYLOAD_DECODERS, decode_events, decode_payload
from .errors import NATSConfigError, PayloadDecodeError, SubjectFilterError, TemplateError, UnroutedSubjectError

__all__ = ["MappingRule", "SubjectFilter", "SubjectMapper", "Template", "valid_subject"]

#: Field names a rule's named tokens may not take (they are provided by the mapper itself).
RESERVED_FIELDS = frozenset({"subject", "payload"})

_MISSING = object()
_WHITESPACE = frozenset(" \t\r\n\f\v")


def valid_subject(subject: str) -> bool:
    """True when ``subject`` is a publishable NATS subject: non-empty tokens, no wildcards, no whitespace."""
    if not subject or any(c in _WHITESPACE for c in subject):
        return False
    return all(tok and tok not in ("*", ">") for tok in subject.split("."))


class SubjectFilter:
    """A NATS subject filter, optionally with named single-token captures.

    Args:
        pattern: e.g. ``line1.stations.{station}.results``, ``sensors.*.temperature``, ``line1.>``.

    Attributes:
        nats_filter: the filter as NATS writes it (named tokens become ``*``).
        names: the named tokens, in order.

    Raises:
        SubjectFilterError: empty pattern or token, whitespace, ``>`` not the last token, ``*``, ``>`` or a
            brace mixed with text in a token, a token name that is not an identifier, repeated or reserved.
    """

    __slots__ = ("_multi", "_tokens", "names", "nats_filter", "pattern")

    def __init__(self, pattern: str) -> None:
        if not pattern:
            raise SubjectFilterError("subject filter is empty")
        if any(c in _WHITESPACE for c in pattern):
            raise SubjectFilterError(f"subject filter {pattern!r} contains whitespace")
        self.pattern = pattern
        tokens = pattern.split(".")
        # Each compiled token is None (any one token), a str literal, or ("name",) capturing the token.
        compiled: list[str | tuple[str] | None] = []
        names: list[str] = []
        self._multi = False
        for i, tok in enumerate(tokens):
            if not tok:
                raise SubjectFilterError(f"subject filter {pattern!r}: empty token (two dots or a dot at an end)")
            if tok == ">":
                if i != len(tokens) - 1:
                    raise SubjectFilterError(f"subject filter {pattern!r}: '>' must be the last token")
                self._multi = True
                break
            if tok == "*":
                compiled.append(None)
            elif tok.startswith("{") and tok.endswith("}"):
                name = tok[1:-1]
                if not name.isidentifier():
                    raise SubjectFilterError(f"subject filter {pattern!r}: token name {name!r} is not an identifier")
                if name in RESERVED_FIELDS or name in names:
                    raise SubjectFilterError(
                        f"subject filter {pattern!r}: token name {name!r} is reserved or used twice"
                    )
                names.append(name)
                compiled.append((name,))
            elif any(c in tok for c in "*>{}"):
                raise SubjectFilterError(
                    f"subject filter {pattern!r}: token {tok!r} mixes a wildcard or brace with text; "
                    "'*', '>' and '{name}' must fill a whole token"
                )
            else:
                compiled.append(tok)
        self._tokens = tuple(compiled)
        self.names = tuple(names)
        self.nats_filter = ".".join(
            ["*" if t is None or isinstance(t, tuple) else t for t in self._tokens] + ([">"] if self._multi else [])
        )

    def match(self, subject: str) -> dict[str, str] | None:
        """The named tokens' values when ``subject`` matches this filter, else ``None``.

        Args:
            subject: a subject as received (no wildcards).
        """
        parts = subject.split(".")
        tokens = self._tokens
        if self._multi:
            if len(parts) <= len(tokens):  # '>' needs at least one token
                return None
        elif len(parts) != len(tokens):
            return None
        fields: dict[str, str] = {}
        for tok, part in zip(tokens, parts, strict=False):
            if tok is None:
                continue
            if isinstance(tok, tuple):
                fields[tok[0]] = part
            elif tok != part:
                return None
        return fields

    def __repr__(self) -> str:
        return f"SubjectFilter({self.pattern!r})"


class Template:
    """A text with ``{field}`` placeholders, checked against the allowed field names when built.

    Args:
        text: e.g. ``pywats.{category}.{type}`` or ``{station}``. ``{{`` and ``}}`` stand for braces.
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

    def render(self, values: Mapping[str, Any], origin: str = "") -> str:
        """Fill the placeholders from ``values`` (``payload`` maps to the decoded JSON body).

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
    """One compiled rule: a subject filter and how to build events from matching messages.

    Attributes:
        filter: the subject filter.
        decoder: ``json``, ``text``, ``bytes`` (payload decoders) or ``cfx``, ``event`` (whole events).
        type: event type template; required for payload decoders, ``None`` for ``cfx``/``event``.
        source: source template (default ``{subject}``).
        subjects: event subject templates, in order.
        severity: severity for payload decoders (default ``info``).
        id_field: dotted path of a JSON body member holding the message's own id (see the module text).
        index: position in the rule list (reported in event headers).
    """

    filter: SubjectFilter
    decoder: str
    type: Template | None
    source: Template
    subjects: tuple[Template, ...] = ()
    severity: Severity | None = None
    id_field: str | None = None
    index: int = 0

    @classmethod
    def build(
        cls,
        subject: str,
        *,
        decoder: str = "json",
        type: str | None = None,
        source: str | None = None,
        subjects: Sequence[str] = (),
        severity: str | Severity | None = None,
        id_field: str | None = None,
        index: int = 0,
    ) -> MappingRule:
        """Compile a rule from its settings (see the class attributes for the meaning of each).

        Raises:
            SubjectFilterError: invalid subject filter.
            TemplateError: a template uses an unknown field.
            NATSConfigError: unknown decoder, ``type`` missing for a payload decoder or given for
                ``cfx``/``event``, ``id_field`` without the ``json`` decoder, unknown severity.
        """
        where = f"rules[{index}]"
        flt = SubjectFilter(subject)
        if decoder not in PAYLOAD_DECODERS and decoder not in EVENT_DECODERS:
            raise NATSConfigError(
                f"{where}.decoder: unknown decoder {decoder!r}; expected one of {[*PAYLOAD_DECODERS, *EVENT_DECODERS]}"
            )
        whole = decoder in EVENT_DECODERS
        allowed = {"subject", *flt.names} | ({"payload"} if decoder == "json" else set())
        if whole:
            if type is not None or severity is not None or id_field is not None:
                raise NATSConfigError(
                    f"{where}: the {decoder!r} decoder takes type, severity and id from the message; "
                    "remove type, severity and id_field from this rule"
                )
        elif not type:
            raise NATSConfigError(f"{where}.type: required with the {decoder!r} decoder")
        if id_field is not None and decoder != "json":
            raise NATSConfigError(f"{where}.id_field: only the 'json' decoder has payload members")
        try:
            sev = Severity(severity) if severity is not None else None
        except ValueError:
            raise NATSConfigError(
                f"{where}.severity: unknown severity {severity!r}; expected one of {[s.value for s in Severity]}"
            ) from None
        return cls(
            filter=flt,
            decoder=decoder,
            type=Template(type, allowed, f"{where}.type") if type else None,
            source=Template(source or "{subject}", allowed, f"{where}.source"),
            subjects=tuple(Template(s, allowed, f"{where}.subjects") for s in subjects),
            severity=sev,
            id_field=id_field,
            index=index,
        )

    def to_events(
        self,
        subject: str,
        fields: dict[str, str],
        body: bytes,
        headers: dict[str, Any],
        origin: str,
        message_id: str,
    ) -> list[Event]:
        """Build the events of one matching message.

        Args:
            subject: the message's subject.
            fields: the named tokens' values (from ``SubjectFilter.match``).
            body: the message body bytes.
            headers: transport metadata copied into each event's ``headers``.
            origin: the message's origin (``nats://host/stream/subject``) for error messages.
            message_id: the message's own stable id (``Nats-Msg-Id`` or ``<stream>#<sequence>``); payload
                rules without ``id_field`` derive the event id from it.

        Raises:
            DecodeError: the body cannot be decoded (``PayloadDecodeError`` or the CFX decoder's error), a
                template field is missing, or the resulting event is invalid.
        """
        values: dict[str, Any] = {"subject": subject, **fields}
        if self.decoder in EVENT_DECODERS:
            source = self.source.render(values, origin)
            return decode_events(self.decoder, body, DecodeContext(origin=origin, source=source, headers=headers))
        payload = decode_payload(self.decoder, body, origin)
        values["payload"] = payload
        assert self.type is not None  # guaranteed by build() for payload decoders
        if self.id_field is not None:
            own = Template("{payload." + self.id_field + "}", ("payload",)).render(values, origin)
            event_id = derive_event_id(f"nats:{subject}#{own}", 0)
        else:
            event_id = derive_event_id(f"nats:{message_id}", 0)
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
            raise PayloadDecodeError(f"event field {loc!r}: {first['msg']}", origin) from None


class SubjectMapper:
    """The ordered rule list: finds the first rule matching a subject and builds its events.

    Args:
        rules: compiled rules, tried in order.
        cache_size: number of distinct subjects whose matching rule is remembered (subjects repeat a lot
            on a factory line; the cache keeps matching cost flat).
    """

    def __init__(self, rules: Sequence[MappingRule], cache_size: int = 4096) -> None:
        self.rules = tuple(rules)
        self._cache: dict[str, tuple[MappingRule, dict[str, str]] | None] = {}
        self._cache_size = cache_size

    @property
    def filters(self) -> list[str]:
        """The distinct NATS filters of the rules, in rule order."""
        return list(dict.fromkeys(r.filter.nats_filter for r in self.rules))

    def route(self, subject: str) -> tuple[MappingRule, dict[str, str]] | None:
        """The first rule matching ``subject`` and its named tokens, or ``None``."""
        try:
            return self._cache[subject]
        except KeyError:
            pass
        found: tuple[MappingRule, dict[str, str]] | None = None
        for rule in self.rules:
            fields = rule.filter.match(subject)
            if fields is not None:
                found = (rule, fields)
                break
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # cheap bound; refills with the subjects actually in use
        self._cache[subject] = found
        return found

    def map(self, subject: str, body: bytes, headers: dict[str, Any], origin: str, message_id: str) -> list[Event]:
        """Events for one message (``headers`` gain ``nats_fields`` and ``nats_rule``).

        Raises:
            UnroutedSubjectError: no rule matches ``subject``.
            DecodeError: the matching rule cannot build events from the body.
        """
        found = self.route(subject)
        if found is None:
            raise UnroutedSubjectError(f"no mapping rule matches subject {subject!r}", origin)
        rule, fields = found
        headers = {**headers, "nats_fields": dict(fields), "nats_rule": rule.index}
        return rule.to_events(subject, fields, body, headers, origin, message_id)
