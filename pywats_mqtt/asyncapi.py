"""AsyncAPI 3.0 part of a ``kind = "mqtt"`` transport: the broker, one channel per mapping rule (topic
levels ``{station}`` as channel parameters, ``+`` / ``#`` as positional ones), the publish topic and the
birth / last-will status topic (``pywats-events docs asyncapi``).

Bindings follow the AsyncAPI MQTT bindings 0.2.0; topic filters are MQTT 5 section 4.7.
"""

from __future__ import annotations

from typing import Any

from pywats_events.asyncapi import (
    AsyncAPIPart,
    MappingRuleDoc,
    add_publish_channel,
    add_rule_channels,
    template_address,
)

from .settings import MQTTSettings

__all__ = ["asyncapi_part"]

_BINDING = "0.2.0"
_WILDCARDS = {"+": "exactly one topic level", "#": "any number of levels (last level only)"}


def asyncapi_part(name: str, options: dict[str, Any]) -> AsyncAPIPart:
    """The servers, channels, operations and messages of the MQTT transport ``name``.

    Args:
        name: the transport's name (ids in the document start with it).
        options: its ``[[transports]]`` options (validated as ``MQTTSettings``).

    Raises:
        MQTTConfigError: an option is invalid (named by its path).
    """
    s = MQTTSettings.from_options(options, where=f"transports[{name}]")
    part = AsyncAPIPart()
    server = f"{name}-mqtt"
    part.servers[server] = {
        "host": f"{s.host}:{s.port}",
        "protocol": "secure-mqtt" if s.tls is not None else "mqtt",
        "protocolVersion": s.protocol,
        "description": f"MQTT broker of transport {name!r}"
        + (f"; subscriptions shared as $share/{s.shared_group}/<filter>" if s.shared_group else ""),
    }
    add_rule_channels(
        part,
        name,
        (
            MappingRuleDoc(
                filter=r.topic,
                decoder=r.decoder,
                type=r.type,
                source=r.source,
                severity=r.severity.value if r.severity else None,
                subjects=tuple(r.subjects),
            )
            for r in s.rules
        ),
        separator="/",
        wildcards=_WILDCARDS,
        server=server,
        operation_bindings={"mqtt": {"qos": s.qos, "bindingVersion": _BINDING}},
    )
    add_publish_channel(
        part,
        name,
        s.publish_topic,
        separator="/",
        server=server,
        operation_bindings={"mqtt": {"qos": s.publish_qos, "retain": s.publish_retain, "bindingVersion": _BINDING}},
    )
    if s.status_topic is not None:
        channel = f"{name}-status"
        address, params = template_address(s.status_topic, "/", {})
        part.messages["MQTTStatus"] = {
            "name": "MQTTStatus",
            "contentType": "text/plain",
            "payload": {"type": "string", "enum": [s.status_online, s.status_offline]},
            "summary": "birth message on connect, last will when the connection is lost",
        }
        part.channels[channel] = {
            "address": address,
            "title": "status (birth and last will)",
            "servers": [{"$ref": f"#/servers/{server}"}],
            "messages": {"MQTTStatus": {"$ref": "#/components/messages/MQTTStatus"}},
            **({"parameters": params} if params else {}),
        }
        part.operations[f"{channel}-send"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/MQTTStatus"}],
            "bindings": {"mqtt": {"qos": 1, "retain": True, "bindingVersion": _BINDING}},
        }
    return part
