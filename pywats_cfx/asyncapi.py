"""AsyncAPI 3.0 part of a ``kind = "cfx"`` (or ``"amqp"``) transport: the broker, the queue it consumes
with its binding keys, and the exchange it publishes on (``pywats-events docs asyncapi``).

Bindings follow the AsyncAPI AMQP 0-9-1 bindings 0.3.0 (channel ``is: routingKey`` / ``is: queue``).
Routing keys are IPC-CFX's ``<handle>.<MessageName>`` (CFX SDK ``AmqpCFXEndpoint``); events that are not
CFX messages go out as normalized event JSON under ``<handle>.pyWATS.<type>`` (``publisher.event_message``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from pywats_events.asyncapi import AsyncAPIPart, event_message, model_schema

from .envelope import CFXEnvelope
from .settings import CFXSettings

__all__ = ["asyncapi_part"]

_BINDING = "0.3.0"


def asyncapi_part(name: str, options: dict[str, Any]) -> AsyncAPIPart:
    """The servers, channels, operations and messages of the CFX transport ``name``.

    Args:
        name: the transport's name (ids in the document start with it).
        options: its ``[[transports]]`` options (validated as ``CFXSettings``).

    Raises:
        ConfigError: an option is invalid (names the key; secrets are not echoed).
    """
    s = CFXSettings.from_options(options)
    parts = urlsplit(s.url.get_secret_value())
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    port = parts.port or (5671 if s.uses_tls else 5672)
    part = AsyncAPIPart()
    server = f"{name}-amqp"
    part.servers[server] = {
        "host": f"{parts.hostname}:{port}",
        "protocol": "amqps" if s.uses_tls else "amqp",
        "protocolVersion": "0.9.1",
        "pathname": "/" + vhost if vhost != "/" else "/",
        "description": f"RabbitMQ of transport {name!r} (vhost {vhost!r}); the URL's password is not shown",
    }
    part.messages["CFXEnvelope"] = {
        "name": "CFXEnvelope",
        "title": "IPC-CFX envelope",
        "summary": "CFX.CFXEnvelope: MessageName, TimeStamp, UniqueID, Source, Target, RequestID, MessageBody",
        "contentType": "application/json",
        "payload": model_schema(CFXEnvelope, part.schemas),
        "bindings": {"amqp": {"messageType": "CFX message", "bindingVersion": _BINDING}},
    }
    envelope = {"$ref": "#/components/messages/CFXEnvelope"}
    event = event_message(part)
    exchange = {
        "name": s.exchange,
        "type": s.exchange_type,
        "durable": True,
        "autoDelete": False,
        "vhost": vhost,
    }
    servers = [{"$ref": f"#/servers/{server}"}]
    received = {"CFXEnvelope": envelope}
    if s.decoder == "auto":
        received["Event"] = event
    queue_channel = f"{name}-queue"
    part.channels[queue_channel] = {
        "address": s.queue,
        "title": f"queue {s.queue}",
        "description": (
            f"Durable queue bound to exchange {s.exchange!r} ({s.exchange_type}) with binding keys "
            f"{', '.join(repr(k) for k in s.binding_keys)}; decoder {s.decoder!r}. Undecodable messages are "
            f"dead-lettered to {s.dlx_name!r} / {s.dlq_name!r}."
        ),
        "servers": servers,
        "messages": received,
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {
                    "name": s.queue,
                    "durable": True,
                    "exclusive": False,
                    "autoDelete": False,
                    "vhost": vhost,
                },
                "bindingVersion": _BINDING,
            }
        },
    }
    part.operations[f"{name}-receive"] = {
        "action": "receive",
        "title": f"consume {s.queue}",
        "summary": "Each message is acknowledged once every handler succeeded or it is durably dead-lettered",
        "channel": {"$ref": f"#/channels/{queue_channel}"},
        "messages": [{"$ref": f"#/channels/{queue_channel}/messages/{m}"} for m in received],
        "bindings": {"amqp": {"ack": True, "bindingVersion": _BINDING}},
    }
    publish_channel = f"{name}-publish"
    part.channels[publish_channel] = {
        "address": f"{s.handle}.{{messageName}}",
        "title": f"exchange {s.exchange}",
        "description": (
            f"Routing keys of what this endpoint publishes on exchange {s.exchange!r}: "
            f"<handle>.<MessageName> for CFX messages, <handle>.pyWATS.<type> for other events"
            + (" (gzip content-encoding)" if s.gzip else "")
        ),
        "parameters": {
            "messageName": {
                "description": "the CFX MessageName (CFX.Production.WorkStarted) or pyWATS.<event type>",
            }
        },
        "servers": servers,
        "messages": {"CFXEnvelope": envelope, "Event": event},
        "bindings": {"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": _BINDING}},
    }
    part.operations[f"{name}-send"] = {
        "action": "send",
        "title": f"publish on {s.exchange}",
        "summary": "Publisher-confirmed publishing (send / publish_envelope)",
        "channel": {"$ref": f"#/channels/{publish_channel}"},
        "messages": [{"$ref": f"#/channels/{publish_channel}/messages/{m}"} for m in ("CFXEnvelope", "Event")],
        "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": _BINDING}},
    }
    return part
