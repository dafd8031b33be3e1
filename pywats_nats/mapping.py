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

from collections.abc import Mapping, Sequence
from typing import Any

from pywats_events.event import Event, Severity
from pywats_events.transports import mapping as _core

from .errors import NATSConfigError, PayloadDecodeError, SubjectFilterError, TemplateError, UnroutedSubjectError

__all__ = ["MappingRule", "SubjectFilter", "SubjectMapper", "Template", "valid_subject"]

#: Field names a rule's named tokens may not take (they are provided by the mapper itself).
RESERVED_FIELDS = frozenset({"subject", "payload"})

_WHITESPACE = frozenset(" \t\r\n\f\v")


def valid_subject(subject: str) -> bool:
    """True when ``subject`` is a publishable NATS subject: non-empty tokens, no wildcards, no whitespace."""
    if not subject or any(c in _WHITESPACE for c in subject):
        return False
    return all(tok and tok not in ("*", ">") for tok in subject.split("."))


def _identity(subject: str, body: bytes, headers: Mapping[str, Any], message_id: str | None) -> str:
    return f"nats:{message_id}"


class Template(_core.Template):
    """A text with ``{field}`` placeholders (``pywats_events.transports.mapping.Template``) raising
    ``TemplateError`` when built and ``PayloadDecodeError`` when a message lacks a field."""

    __slots__ = ()
    config_error = TemplateError
    decode_error = PayloadDecodeError


#: NATS subject syntax (NATS docs, "Subject-Based Messaging").
SYNTAX = _core.FilterSyntax(
    protocol="NATS",
    sep=".",
    one="*",
    many=">",
    many_matches_parent=False,
    dollar_names=False,
    empty_levels=False,
    whitespace=False,
    name_field="subject",
    level_word="token",
    capture_word="token",
    header_prefix="nats",
    id_scheme="nats",
    identity=_identity,
    filter_error=SubjectFilterError,
    template=Template,
    config_error=NATSConfigError,
    decode_error=PayloadDecodeError,
    unrouted_error=UnroutedSubjectError,
)


class SubjectFilter(_core.NameFilter):
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

    __slots__ = ()
    syntax = SYNTAX

    @property
    def nats_filter(self) -> str:
        """The filter as NATS writes it (named tokens become ``*``)."""
        return self.native


class MappingRule(_core.Rule):
    """One compiled rule: a subject filter and how to build events from matching messages
    (``pywats_events.transports.mapping.Rule``; without ``id_field`` the id comes from the message id)."""

    __slots__ = ()
    syntax = SYNTAX

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
        """Compile a rule from its settings (see ``Rule`` for the meaning of each).

        Raises:
            SubjectFilterError: invalid subject filter.
            TemplateError: a template uses an unknown field.
            NATSConfigError: unknown decoder, ``type`` missing for a payload decoder or given for
                ``cfx``/``event``, ``id_field`` without the ``json`` decoder, unknown severity.
        """
        rule: MappingRule = cls.compile(
            SubjectFilter(subject), decoder=decoder, type=type, source=source, subjects=subjects,
            severity=severity, id_field=id_field, index=index,
        )  # fmt: skip
        return rule

    def to_events(
        self, subject: str, fields: dict[str, str], body: bytes, headers: dict[str, Any], origin: str, message_id: str
    ) -> list[Event]:
        """Build the events of one matching message; ``message_id`` is the message's own stable id
        (``Nats-Msg-Id`` or ``<stream>#<sequence>``), from which payload rules without ``id_field`` derive
        the event id.

        Raises:
            DecodeError: the body cannot be decoded, a template field is missing, or the event is invalid.
        """
        return self.build_events(subject, fields, body, headers, origin, message_id)


class SubjectMapper(_core.NameMapper):
    """The ordered rule list: finds the first rule matching a subject and builds its events.

    Args:
        rules: compiled rules, tried in order.
        cache_size: number of distinct subjects whose matching rule is remembered.
    """

    syntax = SYNTAX

    def map(self, subject: str, body: bytes, headers: dict[str, Any], origin: str, message_id: str) -> list[Event]:
        """Events for one message (``headers`` gain ``nats_fields`` and ``nats_rule``).

        Raises:
            UnroutedSubjectError: no rule matches ``subject``.
            DecodeError: the matching rule cannot build events from the body.
        """
        return self.map_message(subject, body, headers, origin, message_id)
