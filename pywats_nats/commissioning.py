"""``pywats-events publish --to <nats transport>``: this plug-in's publisher (entry point
``pywats_events.publishers``: ``nats``).

Opens a connection of its own to the transport's ``servers`` (its credentials, a connection named
``pywats-publish-<transport>``), publishes to JetStream and waits for each PubAck. No consumer is made or
bound: a pull consumer shares its messages among everyone pulling, so binding the service's durable would
take messages away from the running service.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

from pywats_events import jsonsafe, tracing
from pywats_events.commissioning.publish import OutgoingTest, PublishTarget
from pywats_events.errors import ConfigError

__all__ = ["publish"]


async def publish(target: PublishTarget, message: OutgoingTest) -> dict[str, Any]:
    """Publish ``message`` to the JetStream of the ``nats`` transport ``target``, with header
    ``Nats-Msg-Id`` (an event's id, an envelope's ``UniqueID``) so that publishing the same file again
    within the stream's duplicate window stores it once (``duplicates`` in the result counts those).

    Args:
        target: the transport entry; ``target.topic`` is the subject (default: the transport's
            ``publish_subject`` rendered from each event, as ``NATSTransport.send`` does; required for
            a CFX envelope, sent whole as one message).
        message: from ``pywats_events.commissioning.publish.load_message``.

    Returns:
        ``{"destination": "nats://... stream '<name>'", "subjects": [...], "message_ids": [...],
        "sequences": [...], "duplicates": n}``.

    Raises:
        ConfigError: a CFX envelope without ``--topic``, or a subject that is not a valid NATS subject.
        NATSConfigError: an invalid option of the entry.
        NATSConnectError: no server answered within ``connect_timeout`` (per server) or it refused us.
        NATSPublishError: no JetStream stream captures the subject, or no PubAck within ``send_timeout``.
    """
    import nats
    import nats.errors
    import nats.js.errors

    from .errors import NATSConnectError, NATSPublishError
    from .mapping import valid_subject
    from .settings import NATSSettings
    from .transport import MSG_ID_HEADER, NATSTransport

    s = NATSSettings.from_options(target.options, f"transports[{target.name}]")
    sends: list[tuple[str, bytes, str]] = []
    if message.kind == "cfx":
        if target.topic is None:
            raise ConfigError("--topic: required to publish a CFX envelope over NATS (the subject a cfx rule maps)")
        unique = message.first.get("UniqueID")
        body = jsonsafe.dumps(message.body, default=None, compact=False).encode()
        sends.append((target.topic, body, str(unique or uuid.uuid4())))
    else:
        transport = NATSTransport(target.name, s)  # not started: only its public subject rendering is used
        for ev in message.events():
            subject = target.topic or transport.publish_subject_for(ev)
            sends.append((subject, ev.to_json().encode(), ev.id))
    for subject, _, _ in sends:
        if not valid_subject(subject):
            raise ConfigError(f"{subject!r} is not a NATS subject one can publish to (empty, spaces, wildcards)")

    where = ",".join(s.servers)
    nc = nats.NATS()
    try:
        async with asyncio.timeout(s.connect_timeout * len(s.servers) + 1):
            await nc.connect(
                servers=list(s.servers),
                name=f"pywats-publish-{target.name}",
                user=s.user,
                password=s.password.get_secret_value() if s.password else None,
                token=s.token.get_secret_value() if s.token else None,
                connect_timeout=max(1, round(s.connect_timeout)),
                allow_reconnect=False,
                max_reconnect_attempts=0,
            )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        with contextlib.suppress(Exception):
            await nc.close()
        text = "no server answered" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        raise NATSConnectError(f"cannot connect to {where}: {text}") from None
    sequences: list[int] = []
    streams: list[str] = []
    duplicates = 0
    trace_ids: list[str | None] = []
    try:
        js = nc.jetstream(timeout=s.send_timeout)
        for subject, body, msg_id in sends:
            with tracing.producer_span("nats", subject) as trace:
                headers = {MSG_ID_HEADER: msg_id, "Content-Type": "application/json", **trace}
                trace_ids.append(tracing.trace_id_of(trace))
            try:
                ack = await js.publish(subject, body, timeout=s.send_timeout, headers=headers)
            except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError):
                raise NATSPublishError(f"no JetStream stream captures subject {subject!r} on {where}") from None
            except (TimeoutError, nats.errors.TimeoutError):
                raise NATSPublishError(f"no PubAck within {s.send_timeout:g}s publishing to {subject!r}") from None
            except nats.errors.Error as exc:
                raise NATSPublishError(f"publishing to {subject!r} failed: {type(exc).__name__}: {exc}") from None
            sequences.append(ack.seq)
            if ack.stream not in streams:
                streams.append(ack.stream)
            duplicates += bool(ack.duplicate)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    return {
        "destination": f"{where} stream {', '.join(streams)}",
        "subjects": [subject for subject, _, _ in sends],
        "message_ids": [msg_id for _, _, msg_id in sends],
        "sequences": sequences,
        "duplicates": duplicates,
        "trace_ids": trace_ids,
    }
