"""The AsyncAPI 3.0 document of a configuration's message-broker channels
(``pywats-events docs asyncapi --config FILE``).

Each ``[[transports]]`` kind describes its own part (servers, channels, operations, messages) through a
*documenter*: a callable ``(name, options) -> AsyncAPIPart`` registered under the entry-point group
``pywats_events.asyncapi`` with the kind as its name (as transports are found), or at run time with
``register_documenter``. The core names no plug-in: ``pywats_cfx``, ``pywats_mqtt`` and ``pywats_nats``
register theirs in ``pyproject.toml``. Kinds without one (drop folder, webhook, mock: not brokers) are
listed in the document's ``info.description`` as not described, never left out silently.

Standard: AsyncAPI 3.0.0 (https://www.asyncapi.com/docs/reference/specification/v3.0.0). Payloads are
AsyncAPI Schema objects (a JSON Schema draft-07 superset), generated from the pydantic models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from ._version import __version__
from .config import Settings
from .errors import ConfigError
from .event import Event

__all__ = [
    "ASYNCAPI_VERSION",
    "DOCUMENTER_GROUP",
    "AsyncAPIPart",
    "Documenter",
    "MappingRuleDoc",
    "add_publish_channel",
    "add_rule_channels",
    "build_asyncapi",
    "decoder_message",
    "event_message",
    "find_documenter",
    "model_schema",
    "register_documenter",
    "template_address",
]

ASYNCAPI_VERSION = "3.0.0"
DOCUMENTER_GROUP = "pywats_events.asyncapi"
_REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass
class AsyncAPIPart:
    """What one transport adds to the document; every mapping is keyed by the id it gets in the document.

    Attributes:
        servers: AsyncAPI Server objects (``host``, ``protocol``, ``protocolVersion``...).
        channels: Channel objects (``address``, ``parameters``, ``messages``, ``servers`` as ``$ref``s).
        operations: Operation objects (``action`` ``receive`` or ``send``, ``channel`` as a ``$ref``).
        messages: Message objects for ``components.messages``.
        schemas: Schema objects for ``components.schemas`` (model schemas, by model name).
    """

    servers: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    operations: dict[str, Any] = field(default_factory=dict)
    messages: dict[str, Any] = field(default_factory=dict)
    schemas: dict[str, Any] = field(default_factory=dict)


#: ``(transport name, kind options) -> AsyncAPIPart``; raises ``ConfigError`` on invalid options.
Documenter = Callable[[str, dict[str, Any]], AsyncAPIPart]

_REGISTERED: dict[str, Documenter] = {}


def register_documenter(kind: str, documenter: Documenter) -> None:
    """Describe transports of ``kind`` with ``documenter`` (takes precedence over an entry point)."""
    _REGISTERED[kind] = documenter


def find_documenter(kind: str) -> Documenter | None:
    """The documenter of ``kind``: registered at run time, else the ``pywats_events.asyncapi`` entry point
    of that name, else ``None`` (the kind has no broker channels to describe).

    Raises:
        ConfigError: the entry point exists but cannot be imported (its package's extra is missing).
    """
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    for ep in entry_points(group=DOCUMENTER_GROUP):
        if ep.name == kind:
            try:
                loaded: Documenter = ep.load()
            except ImportError as exc:
                raise ConfigError(f"cannot load the AsyncAPI documenter of kind {kind!r} ({ep.value}): {exc}") from None
            return loaded
    return None


def model_schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    """Put ``model``'s JSON schema (validation mode: what a receiver accepts) and its nested definitions
    into ``schemas`` by name, and return a ``$ref`` to it."""
    raw = model.model_json_schema(ref_template=_REF_TEMPLATE, mode="validation")
    schemas.update(raw.pop("$defs", {}))
    raw["description"] = raw.get("description", "").split("\n\nRaises:")[0]
    if model is Event:
        raw["properties"]["category"] = {
            "type": "string",
            "readOnly": True,
            "description": "derived: the first dotted segment of `type`; ignored on input",
        }
    schemas[model.__name__] = raw
    return {"$ref": _REF_TEMPLATE.format(model=model.__name__)}


def event_message(part: AsyncAPIPart) -> dict[str, str]:
    """Add the normalized ``Event`` message (``Event.to_json`` on the wire) to ``part``; return its ``$ref``."""
    part.messages["Event"] = {
        "name": "Event",
        "title": "pyWATS event",
        "summary": "A normalized event in its JSON form (Event.to_json_dict)",
        "contentType": "application/json",
        "payload": model_schema(Event, part.schemas),
    }
    return {"$ref": "#/components/messages/Event"}


_FIELD = re.compile(r"\{([^{}]+)\}")


def template_address(template: str, separator: str, wildcards: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Turn a topic or subject template into an AsyncAPI channel address and its parameters.

    ``{name}`` placeholders stay (AsyncAPI 3.0 channel address expressions); a wildcard level (MQTT ``+``
    and ``#``, NATS ``*`` and ``>``, given in ``wildcards`` as wildcard -> meaning) becomes a parameter
    named after its position (``level3``), since an address cannot hold a wildcard. Dotted fields
    (``payload.serial``) become ``payload_serial``: a parameter name is a plain identifier.

    Args:
        template: ``stations/{station}/+/results`` or ``line1.{station}.>``.
        separator: the level separator (``/`` for MQTT, ``.`` for NATS).
        wildcards: wildcard level text -> description of what it matches.

    Returns:
        ``(address, parameters)``, the parameters as AsyncAPI Parameter objects with descriptions.
    """
    # Split on the separator outside braces only: a NATS field {payload.kind} is one level.
    levels = re.split(rf"{re.escape(separator)}(?![^{{]*\}})", template)
    params: dict[str, Any] = {}
    out: list[str] = []
    for i, level in enumerate(levels, start=1):
        if level in wildcards:
            name = f"level{i}"
            params[name] = {"description": f"wildcard {level!r}: {wildcards[level]}"}
            out.append("{" + name + "}")
            continue

        def rename(m: re.Match[str]) -> str:
            raw = m.group(1)
            name = re.sub(r"\W", "_", raw)
            params[name] = {"description": f"the template field {{{raw}}}"}
            return "{" + name + "}"

        out.append(_FIELD.sub(rename, level))
    return separator.join(out), params


_RAW_MESSAGES = {
    "json": ("application/json", {"description": "any JSON value; the rule maps it to an event"}),
    "text": ("text/plain", {"type": "string", "description": "UTF-8 text; becomes payload.text"}),
    "bytes": ("application/octet-stream", {"type": "string", "description": "raw bytes; becomes payload.base64"}),
}


def decoder_message(part: AsyncAPIPart, decoder: str) -> dict[str, str]:
    """Add the message a mapping rule's ``decoder`` takes to ``part`` and return its ``$ref``: ``event``
    is the Event message, ``cfx`` the CFX envelope, ``json`` / ``text`` / ``bytes`` a raw payload.

    Raises:
        ConfigError: an unknown decoder name.
    """
    if decoder == "event":
        return event_message(part)
    if decoder == "cfx":
        from importlib import import_module

        # Resolved at call time: pywats_cfx is a plug-in, present when a cfx-decoding rule is configured.
        envelope = import_module("pywats_cfx.envelope").CFXEnvelope
        part.messages["CFXEnvelope"] = {
            "name": "CFXEnvelope",
            "title": "IPC-CFX envelope",
            "contentType": "application/json",
            "payload": model_schema(envelope, part.schemas),
        }
        return {"$ref": "#/components/messages/CFXEnvelope"}
    if decoder not in _RAW_MESSAGES:
        raise ConfigError(f"no AsyncAPI message for decoder {decoder!r}; known: event, cfx, {', '.join(_RAW_MESSAGES)}")
    content_type, payload = _RAW_MESSAGES[decoder]
    msg_id = f"Raw{decoder.capitalize()}"
    part.messages[msg_id] = {"name": msg_id, "contentType": content_type, "payload": payload}
    return {"$ref": f"#/components/messages/{msg_id}"}


@dataclass(frozen=True)
class MappingRuleDoc:
    """One topic or subject mapping rule as the document shows it (MQTT ``rules``, NATS ``rules``).

    Attributes:
        filter: the topic or subject filter with wildcards and ``{name}`` levels.
        decoder: ``json``, ``text``, ``bytes``, ``cfx`` or ``event``.
        type / source / severity / subjects: the event templates the rule fills (``None``: default).
    """

    filter: str
    decoder: str
    type: str | None = None
    source: str | None = None
    severity: str | None = None
    subjects: tuple[str, ...] = ()


def add_rule_channels(
    part: AsyncAPIPart,
    name: str,
    rules: Iterable[MappingRuleDoc],
    *,
    separator: str,
    wildcards: dict[str, str],
    server: str,
    operation_bindings: dict[str, Any],
) -> None:
    """Add one channel and one ``receive`` operation per rule to ``part`` (ids ``<name>-rule<N>``, N from
    1 in configuration order, the order in which rules are tried: the first match wins)."""
    for i, rule in enumerate(rules, start=1):
        channel = f"{name}-rule{i}"
        address, params = template_address(rule.filter, separator, wildcards)
        message = decoder_message(part, rule.decoder)
        msg_key = message["$ref"].rpartition("/")[2]
        templates = (("type", rule.type), ("source", rule.source), ("severity", rule.severity))
        mapping: dict[str, Any] = {k: v for k, v in templates if v}
        if rule.subjects:
            mapping["subjects"] = list(rule.subjects)
        part.channels[channel] = {
            "address": address,
            "title": f"rule {i}: {rule.filter}",
            "description": f"Filter {rule.filter!r}, decoder {rule.decoder!r}; rules are tried in order.",
            "servers": [{"$ref": f"#/servers/{server}"}],
            "messages": {msg_key: message},
            **({"parameters": params} if params else {}),
            "x-pywats-event": mapping,
        }
        part.operations[f"{channel}-receive"] = {
            "action": "receive",
            "summary": "Acknowledged once every handler succeeded or it is durably dead-lettered",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{msg_key}"}],
            "bindings": operation_bindings,
        }


def add_publish_channel(
    part: AsyncAPIPart,
    name: str,
    template: str,
    *,
    separator: str,
    server: str,
    operation_bindings: dict[str, Any],
) -> None:
    """Add the ``send`` channel of a transport that publishes events as Event JSON to a rendered
    ``template`` (fields ``type``, ``category``, ``source``, ``severity``, ``id``)."""
    channel = f"{name}-publish"
    address, params = template_address(template, separator, {})
    event = event_message(part)
    part.channels[channel] = {
        "address": address,
        "title": f"publish {template}",
        "description": "What send(event) publishes, as normalized event JSON",
        "servers": [{"$ref": f"#/servers/{server}"}],
        "messages": {"Event": event},
        **({"parameters": params} if params else {}),
    }
    part.operations[f"{channel}-send"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/Event"}],
        "bindings": operation_bindings,
    }


def _not_described(names: Iterable[str]) -> str:
    listed = ", ".join(names)
    return f" Not described (no broker channels, or no AsyncAPI documenter for the kind): {listed}." if listed else ""


def build_asyncapi(settings: Settings, *, title: str = "pyWATS events") -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the broker transports in ``settings`` (``[[transports]]``).

    Args:
        settings: a loaded configuration (``load_settings``).
        title: ``info.title``.

    Returns:
        The document as a JSON-ready dict; ids of servers, channels and operations start with the
        transport's name (``line1-...``), so two transports of one kind never collide.

    Raises:
        ConfigError: a transport's options are invalid (the message names the transport and key), two
            transports produce the same id, or a documenter cannot be loaded.
    """
    doc: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": __version__},
        "defaultContentType": "application/json",
        "servers": {},
        "channels": {},
        "operations": {},
        "components": {"messages": {}, "schemas": {}},
    }
    skipped: list[str] = []
    for index, cfg in enumerate(settings.transports):
        name = cfg.name or f"{cfg.kind}{index or ''}"
        documenter = find_documenter(cfg.kind)
        if documenter is None:
            skipped.append(f"{name} ({cfg.kind})")
            continue
        part = documenter(name, cfg.options())
        for section, items in (
            ("servers", part.servers),
            ("channels", part.channels),
            ("operations", part.operations),
        ):
            clash = doc[section].keys() & items.keys()
            if clash:
                raise ConfigError(f"transport {name!r}: AsyncAPI {section} ids used twice: {sorted(clash)}")
            doc[section].update(items)
        doc["components"]["messages"].update(part.messages)
        doc["components"]["schemas"].update(part.schemas)
    doc["info"]["description"] = (
        "The message-broker channels this pyWATS events configuration receives from and sends to."
        + _not_described(skipped)
    )
    return doc
