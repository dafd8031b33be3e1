"""``pywats-events publish --to <cfx transport>``: this plug-in's publisher (entry point
``pywats_events.publishers``: ``cfx``, ``amqp``).

Publishes to the transport's AMQP exchange as ``CFXTransport.publish_envelope`` does (persistent,
``mandatory``, publisher confirms), on a connection of its own: no queue is declared and nothing is
consumed, so the running service's messages stay its own.
"""

from __future__ import annotations

from typing import Any

from pywats_events import tracing
from pywats_events.commissioning.publish import OutgoingTest, PublishTarget

__all__ = ["publish"]


async def publish(target: PublishTarget, message: OutgoingTest) -> dict[str, Any]:
    """Publish ``message`` (CFX envelopes as they are, events as ``event_message`` wraps them) to the
    exchange of the ``cfx`` transport ``target`` and wait for the broker's confirm of each.

    Args:
        target: the transport entry; ``target.topic`` is the routing key (default
            ``<Source>.<MessageName>`` for envelopes; the event's own key for events).
        message: from ``pywats_events.commissioning.publish.load_message``.

    Returns:
        ``{"destination": "<url> exchange '<name>'", "routing_keys": [...], "message_ids": [...]}``.

    Raises:
        CFXConfigError: an invalid option of the entry.
        CFXPublishError: no connection, the exchange is missing, nothing is bound for the routing key
            (``mandatory``), or the broker did not confirm.
    """
    import aio_pika
    import aiormq

    from .errors import CFXPublishError
    from .publisher import envelope_message, event_message
    from .settings import CFXSettings

    s = CFXSettings.from_options(target.options)
    if message.kind == "cfx":
        outs = [envelope_message(message.body, handle=s.handle, gzip=s.gzip, routing_key=target.topic)]
    else:
        outs = [event_message(ev, handle=s.handle, gzip=s.gzip) for ev in message.events()]
    try:
        conn = await aio_pika.connect(s.connection_url(), ssl_context=s.ssl_context(), timeout=s.connect_timeout)
    except Exception as exc:  # aiormq and the socket layer raise many kinds
        raise CFXPublishError(f"cannot connect to {s.where()}: {exc}") from None
    trace_ids: list[str | None] = []
    try:
        channel = await conn.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(s.exchange, ensure=False)
        for out in outs:
            with tracing.producer_span("rabbitmq", f"{s.exchange} {out.routing_key}") as trace:
                amqp = aio_pika.Message(
                    out.body,
                    headers={**out.headers, **trace},
                    content_type=out.content_type,
                    content_encoding=out.content_encoding,
                    message_id=out.message_id,
                    timestamp=out.timestamp,
                    app_id=s.app_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                try:
                    confirm = await exchange.publish(amqp, out.routing_key, timeout=s.publish_timeout, mandatory=True)
                except aio_pika.exceptions.DeliveryError as exc:
                    raise CFXPublishError(
                        f"exchange {s.exchange!r} routed {out.routing_key!r} to no queue (is the service's queue "
                        f"bound? binding_keys {s.binding_keys}): {exc}"
                    ) from None
                except Exception as exc:
                    raise CFXPublishError(f"publish to exchange {s.exchange!r} failed: {exc}") from None
                if confirm is not None and not isinstance(confirm, aiormq.spec.Basic.Ack):
                    raise CFXPublishError(f"broker refused the message for {out.routing_key!r}")
            trace_ids.append(tracing.trace_id_of(trace))
    finally:
        await conn.close()
    return {
        "destination": f"{s.redacted_url} exchange {s.exchange!r}",
        "routing_keys": [o.routing_key for o in outs],
        "message_ids": [o.message_id for o in outs],
        "trace_ids": trace_ids,
    }
