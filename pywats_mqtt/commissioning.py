"""``pywats-events publish --to <mqtt transport>``: this plug-in's publisher (entry point
``pywats_events.publishers``: ``mqtt``).

Connects with a client id of its own (``pywats-publish-<host>-<pid>``, clean session: borrowing the
service's id would take its session away from it), publishes with the transport's ``publish_qos`` and
waits for the acknowledgement (PUBACK / PUBCOMP) within ``send_timeout``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from pywats_events import jsonsafe, tracing
from pywats_events.commissioning.publish import OutgoingTest, PublishTarget
from pywats_events.errors import ConfigError

__all__ = ["publish"]


async def publish(target: PublishTarget, message: OutgoingTest) -> dict[str, Any]:
    """Publish ``message`` to the broker of the ``mqtt`` transport ``target``.

    Args:
        target: the transport entry; ``target.topic`` is the topic (default: ``publish_topic`` rendered
            from each event; required for a CFX envelope).
        message: from ``pywats_events.commissioning.publish.load_message``.

    Returns:
        ``{"destination": "mqtt://host:port", "topics": [...], "qos": n}``.

    Raises:
        ConfigError: a CFX envelope without ``--topic``. MQTTConfigError: an invalid option.
        MQTTConnectError / MQTTPublishError: no connection, an invalid topic name, or no acknowledgement
            within ``send_timeout`` seconds.
    """
    from .connection import MQTTConnection
    from .errors import MQTTPublishError
    from .mapping import Template
    from .settings import MQTTSettings

    s = MQTTSettings.from_options(target.options, f"transports[{target.name}]")
    if message.kind == "cfx":
        if target.topic is None:
            raise ConfigError("--topic: required to publish a CFX envelope over MQTT (the topic a cfx rule maps)")
        sends = [(target.topic, jsonsafe.dumps(message.body, default=None, compact=False).encode())]
    else:
        sends = []
        for ev in message.events():
            values = {"type": ev.type, "category": ev.category, "source": ev.source}
            values |= {"severity": ev.severity.value, "id": ev.id}
            t = target.topic or Template(s.publish_topic, tuple(values), "publish_topic").render(values)
            sends.append((t, ev.to_json().encode()))
    for t, _ in sends:
        if not t or any(c in t for c in "+#\x00"):
            raise MQTTPublishError(f"{t!r} is not a topic name one can publish to (empty, or has + # NUL)")
    conn = MQTTConnection(
        host=s.host,
        port=s.port,
        client_id=f"pywats-publish-{socket.gethostname()}-{os.getpid()}",
        protocol=s.protocol,
        persistent_session=False,
        session_expiry=0,
        receive_maximum=s.max_inflight,
        keepalive=s.keepalive,
        connect_timeout=s.connect_timeout,
        username=s.username,
        password=s.password.get_secret_value() if s.password else None,
        ssl_context=s.tls.ssl_context() if s.tls is not None else None,
        will=None,
        on_message=lambda *_: None,
        on_lost=lambda *_: None,
    )
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    trace_ids: list[str | None] = []
    try:
        await conn.connect(s.connect_timeout)  # raises MQTTConnectError; returns session-present
        async with asyncio.timeout(s.send_timeout):
            for t, body in sends:
                with tracing.producer_span("mqtt", t) as trace:
                    props = None
                    if s.protocol == "5":  # MQTT 3.1.1 has no headers: nothing to carry the trace context
                        props = Properties(PacketTypes.PUBLISH)
                        props.UserProperty = list(trace.items())
                        trace_ids.append(tracing.trace_id_of(trace))
                    await conn.publish(t, body, s.publish_qos, False, props)
    except TimeoutError:
        raise MQTTPublishError(f"no acknowledgement from mqtt://{s.host}:{s.port} within {s.send_timeout:g}s") from None
    except MQTTPublishError:
        raise
    except Exception as exc:
        raise MQTTPublishError(f"cannot publish to mqtt://{s.host}:{s.port}: {exc}") from None
    finally:
        await conn.disconnect()
    return {
        "destination": f"mqtt://{s.host}:{s.port}",
        "topics": [t for t, _ in sends],
        "qos": s.publish_qos,
        "trace_ids": trace_ids,
    }
