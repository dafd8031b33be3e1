"""AsyncAPI 3.0 part of a ``kind = "nats"`` transport: the servers, one channel per subject mapping rule
of the JetStream consumer (``{station}`` tokens as channel parameters, ``*`` / ``>`` as positional ones)
and the publish subject (``pywats-events docs asyncapi``).

Subjects are NATS subject names (tokens separated by ``.``); AsyncAPI NATS bindings 0.1.0.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pywats_events.asyncapi import AsyncAPIPart, MappingRuleDoc, add_publish_channel, add_rule_channels

from .settings import NATSSettings

__all__ = ["asyncapi_part"]

_BINDING = "0.1.0"
_WILDCARDS = {"*": "exactly one subject token", ">": "one or more tokens (last token only)"}


def asyncapi_part(name: str, options: dict[str, Any]) -> AsyncAPIPart:
    """The servers, channels, operations and messages of the NATS transport ``name``.

    Args:
        name: the transport's name (ids in the document start with it).
        options: its ``[[transports]]`` options (validated as ``NATSSettings``).

    Raises:
        NATSConfigError: an option is invalid (named by its path).
    """
    s = NATSSettings.from_options(options, where=f"transports[{name}]")
    part = AsyncAPIPart()
    servers = []
    for i, url in enumerate(s.servers, start=1):
        parts = urlsplit(url)
        server = f"{name}-nats{i}"
        part.servers[server] = {
            "host": f"{parts.hostname}:{parts.port or 4222}",
            "protocol": "nats",
            "description": f"NATS server of transport {name!r}"
            + (" (TLS)" if parts.scheme == "tls" else "")
            + f"; JetStream stream {s.stream!r}, durable consumer {s.durable!r}",
        }
        servers.append(server)
    add_rule_channels(
        part,
        name,
        (
            MappingRuleDoc(
                filter=r.subject,
                decoder=r.decoder,
                type=r.type,
                source=r.source,
                severity=r.severity.value if r.severity else None,
                subjects=tuple(r.subjects),
            )
            for r in s.rules
        ),
        separator=".",
        wildcards=_WILDCARDS,
        server=servers[0],
        operation_bindings={"nats": {"bindingVersion": _BINDING}},
    )
    add_publish_channel(
        part,
        name,
        s.publish_subject,
        separator=".",
        server=servers[0],
        operation_bindings={"nats": {"bindingVersion": _BINDING}},
    )
    refs = [{"$ref": f"#/servers/{srv}"} for srv in servers]
    for channel_id, channel in part.channels.items():
        if channel_id.startswith(f"{name}-"):
            channel["servers"] = refs
    return part
