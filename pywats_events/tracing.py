"""Distributed tracing (OpenTelemetry, W3C Trace Context) and the delivery context of log lines.

OpenTelemetry is optional (the ``otel`` extra) and imported only when tracing is enabled. Until then every
hook in the core is one module attribute check (``tracing.active`` / ``tracing.hooked``) and nothing else;
with the extra absent, the functions here that the core calls are never reached and the outbound helpers
still pass a received ``traceparent`` through unchanged (W3C Trace Context, section 3.2: a participant that
does not trace forwards the header as it got it).

What is traced once ``enable()`` (or ``configure_from_environment()``) has run:

- **receive** (span kind CONSUMER), one per inbound message, in ``Transport.intake``: the parent is the
  remote context in the message's headers (``traceparent``/``tracestate`` from AMQP headers, MQTT 5 user
  properties, NATS headers, HTTP request headers); it ends when the message is settled (acked, or given
  back: status ERROR). Its own context replaces ``traceparent``/``tracestate`` in the message's headers,
  so every event decoded from the message carries it in ``event.headers`` and so does any dead-letter
  entry made from the message or its events.
- **process** (CONSUMER), one per (event, handler) delivery, in the delivery layer: the parent is the
  context in ``event.headers`` (the receive span; for a replay from the dead-letter queue, the receive span
  of the original message, so the replay continues the trace). Every failed attempt is a span event
  ``attempt_failed`` (attempt number, exception type and message); the status is OK when handled, ERROR
  when dead-lettered (the reason and the last exception), unset when parked (breaker open). The span is the
  current span while the handler runs, so the handler's own outbound calls are its children.
- **outbound**: the HTTP forwarder and the WATS client make a CLIENT span per request and send its
  context (``traceparent``/``tracestate``); ``pywats-events publish`` makes a PRODUCER span; a transport's
  ``send`` (CFX/AMQP, MQTT, NATS) makes a PRODUCER span per message with ``send_span`` and puts its
  context on the message (AMQP headers, MQTT 5 user properties, NATS headers); a handler that sends
  through a transport thus continues the delivery's trace in the receiver.
- **dead-letter notices**: the ``system.dead_letter`` event the bus emits when a dead letter is written
  carries the dead-lettered event's (or raw message's) ``traceparent``/``tracestate`` in its headers, so
  the trace shows where its message died: while tracing, the notice's process spans are children of the
  message's receive span, beside the failed delivery's process span (status ERROR).

Delivery log context: with ``enable_log_context()`` (``--log-format json`` turns it on), every log line
written during a delivery (retries, breaker transitions, the handler's own lines) carries the fields
``event_id``, ``handler``, ``transport`` and ``trace_id`` (and ``span_id`` while tracing), added by
``DeliveryContextFilter``; dead-letter lines carry them explicitly.

Standards: W3C Trace Context Level 1 (``traceparent``, ``tracestate``); OpenTelemetry semantic
conventions for messaging spans (``messaging.system``, ``messaging.operation.type``,
``messaging.destination.name``, ``messaging.message.id``) and HTTP client spans (``http.request.method``,
``url.full``, ``http.response.status_code``).
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from .dead_letter import DeadLetterEntry
    from .delivery import DeliveryResult
    from .event import Event
    from .registry import Subscription
    from .transport import InboundMessage, RawRecord, SettleResult, Transport

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "DeliveryContextFilter",
    "available",
    "client_span",
    "configure_from_environment",
    "disable",
    "disable_log_context",
    "enable",
    "enable_log_context",
    "new_traceparent",
    "outbound_headers",
    "producer_span",
    "send_span",
    "trace_headers",
    "trace_id_of",
]

log = logging.getLogger(__name__)

#: W3C Trace Context header names (lower case, as the standard writes them; matched in any case).
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

#: True while OpenTelemetry spans are made (``enable``). The core's hooks test this attribute only.
active = False
#: True while deliveries go through ``deliver`` (spans or log context): ``active`` or ``enable_log_context``.
hooked = False
_log_context = False

# Bound by ``enable``: the OpenTelemetry modules and this library's tracer.
_trace: Any = None
_propagate: Any = None
_tracer: Any = None

_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32

#: ``messaging.system`` of each transport kind (OpenTelemetry names where there is one).
_SYSTEMS = {"cfx": "rabbitmq", "amqp": "rabbitmq", "amqp1": "amqp", "mqtt": "mqtt", "nats": "nats", "webhook": "http"}

#: (event, handler name, transport name) of the delivery running in this task (log context).
_delivery: contextvars.ContextVar[tuple[Event, str, str] | None] = contextvars.ContextVar(
    "pywats_delivery", default=None
)


# -- switching on and off ---------------------------------------------------------------------------
def available() -> bool:
    """True when the OpenTelemetry API is installed (``pip install 'pywats-events[otel]'``)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def enable(tracer_provider: Any = None) -> None:
    """Make spans from now on (receive, process, outbound; see the module docstring).

    Args:
        tracer_provider: an ``opentelemetry.trace.TracerProvider`` (the SDK's, with your exporters);
            ``None``: the global one (``opentelemetry.trace.set_tracer_provider``, or what
            ``opentelemetry-instrument`` configured). Propagation uses the global propagator (W3C
            Trace Context and Baggage unless ``OTEL_PROPAGATORS`` says otherwise).

    Raises:
        ConfigError: the OpenTelemetry API is not installed.
    """
    global active, hooked, _trace, _propagate, _tracer
    try:
        from opentelemetry import propagate, trace
    except ImportError as exc:
        raise ConfigError(
            f"tracing needs OpenTelemetry ({exc}); pip install 'pywats-events[otel]'"
        ) from None
    from ._version import __version__

    _trace, _propagate = trace, propagate
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    _tracer = provider.get_tracer("pywats_events", __version__)
    active = hooked = True


def disable() -> None:
    """Stop making spans (hooks go back to one attribute check; the log context stays as it was)."""
    global active, hooked, _tracer
    active = False
    _tracer = None
    hooked = _log_context


def enable_log_context() -> None:
    """Add ``event_id``, ``handler``, ``transport``, ``trace_id`` to log lines written during a delivery
    (``DeliveryContextFilter`` on the log handler reads them). Costs one context variable set and reset per
    delivery; ``setup_logging(..., "json")`` calls it."""
    global hooked, _log_context
    _log_context = hooked = True


def disable_log_context() -> None:
    """Undo ``enable_log_context``."""
    global hooked, _log_context
    _log_context = False
    hooked = active


def configure_from_environment() -> bool:
    """Enable tracing when this process is configured for it, the way OpenTelemetry's own tools are:

    - ``OTEL_SDK_DISABLED=true``: never.
    - OpenTelemetry installed but neither imported yet nor asked for by ``OTEL_TRACES_EXPORTER``: off,
      without importing it (start-up stays as fast as without the extra).
    - a tracer provider was already set globally (by ``opentelemetry-instrument pywats-events run``, or
      by the program): use it.
    - ``OTEL_TRACES_EXPORTER`` is ``otlp`` or ``console`` (comma-separated list allowed) and the SDK is
      installed: set up the SDK's provider with a batch processor per exporter, the resource from
      ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (default service name ``pywats-events``) and
      the OTLP exporter's own ``OTEL_EXPORTER_OTLP_*`` variables.
    - otherwise: tracing stays off (with a WARNING when ``OTEL_TRACES_EXPORTER`` asks for an exporter but
      the extra is not installed).

    Returns:
        True when tracing is now enabled.

    Raises:
        ConfigError: ``OTEL_TRACES_EXPORTER`` names an exporter whose package is not installed, or one
            this function does not know.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not available():
        if os.environ.get("OTEL_TRACES_EXPORTER", "none").strip() not in ("", "none"):
            log.warning(
                "OTEL_TRACES_EXPORTER is set but OpenTelemetry is not installed: tracing is off "
                "(pip install 'pywats-events[otel]')"
            )
        return False
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    if not names and "opentelemetry.trace" not in sys.modules:
        # Installed but not configured: nothing imported (a provider set before start-up, by the program or
        # by opentelemetry-instrument, means the module was imported already).
        return False
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        enable()
        return True
    if not names:
        return False
    try:
        from opentelemetry.sdk.resources import OTEL_SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={','.join(names)} needs the OpenTelemetry SDK ({exc}); "
            "pip install 'pywats-events[otel]'"
        ) from None
    service = os.environ.get(OTEL_SERVICE_NAME) or "pywats-events"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for name in names:
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
        else:
            raise ConfigError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r}; use otlp, console or none")
    trace.set_tracer_provider(provider)
    enable()
    return True


def _otlp_exporter() -> Any:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    try:
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[no-redef]
    except ImportError as exc:
        package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if protocol == "grpc" else "http")
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER=otlp ({protocol}) needs {package} ({exc}); pip install {package}"
        ) from None
    return OTLPSpanExporter()


# -- headers ------------------------------------------------------------------------------------------
def _lookup(headers: Mapping[str, Any], name: str) -> Any:
    value = headers.get(name)
    if value is None:
        for key, v in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return v
    return value


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    """The value of header ``name`` (lower case) in any letter case, as text: at the top level, else in a
    mapping one level down (MQTT 5 user properties kept as ``headers["mqtt_user_properties"]``). AMQP
    headers may hold bytes; a repeated name (a list) counts by its first value."""
    value = _lookup(headers, name)
    if value is None:
        for nested in headers.values():
            if isinstance(nested, Mapping):
                value = _lookup(nested, name)
                if value is not None:
                    break
        else:
            return None
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    return value if isinstance(value, str) else None


def trace_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """``traceparent`` and ``tracestate`` from ``headers`` (any letter case, text or bytes values), under
    their lower-case names; ``{}`` when there is no ``traceparent``."""
    parent = _header(headers, TRACEPARENT)
    if parent is None:
        return {}
    out = {TRACEPARENT: parent.strip()}
    state = _header(headers, TRACESTATE)
    if state:
        out[TRACESTATE] = state.strip()
    return out


def trace_id_of(headers: Mapping[str, Any] | None) -> str | None:
    """The trace id (32 lower-case hex digits) of the ``traceparent`` in ``headers``; ``None`` when there
    is none or it is not a valid W3C ``traceparent`` (version-traceid-parentid-flags, trace id not zero)."""
    if not headers:
        return None
    parent = _header(headers, TRACEPARENT)
    if parent is None:
        return None
    m = _TRACEPARENT_RE.match(parent.strip())
    if m is None or m.group(1) == _ZERO_TRACE:
        return None
    return m.group(1)


def new_traceparent() -> str:
    """A fresh, sampled W3C ``traceparent`` (random 128-bit trace id and 64-bit parent id): what a first
    sender without OpenTelemetry sends, so the message can be found by trace id downstream."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def _replace_trace(headers: Mapping[str, Any], trace: Mapping[str, str]) -> dict[str, Any]:
    """``headers`` with every case variant of the trace headers removed and ``trace`` put in."""
    out = {k: v for k, v in headers.items() if not (isinstance(k, str) and k.lower() in (TRACEPARENT, TRACESTATE))}
    out.update(trace)
    return out


def outbound_headers(event: Event | None = None, *, new_trace: bool = False) -> dict[str, str]:
    """The trace headers to send with an outbound message or request (a transport's ``send``, a
    forwarder, a client): the current span's context when tracing (injected by the global propagator);
    else ``event``'s own ``traceparent``/``tracestate`` passed through; else, with ``new_trace``, a fresh
    ``traceparent``; else ``{}``.

    Args:
        event: the event being sent, if any.
        new_trace: start a trace when there is nothing to continue (``pywats-events publish``).

    Returns:
        Header name to value (lower-case names); add them to AMQP headers, MQTT 5 user properties, NATS or
        HTTP headers.
    """
    if active:
        carrier: dict[str, str] = {}
        _propagate.inject(carrier)
        if TRACEPARENT in carrier:
            return carrier
    if event is not None:
        found = trace_headers(event.headers)
        if found:
            return found
    return {TRACEPARENT: new_traceparent()} if new_trace else {}


def with_current_context(events: Sequence[Event]) -> Sequence[Event]:
    """``events`` with the current span's trace context in their headers, for those that carry none
    (``bus.publish`` inside a span: a handler's derived event continues the handler's trace). Returned
    unchanged when there is no current span."""
    if not active or not _trace.get_current_span().get_span_context().is_valid:
        return events
    carrier: dict[str, str] = {}
    _propagate.inject(carrier)
    if TRACEPARENT not in carrier:
        return events
    return [
        e if _header(e.headers, TRACEPARENT) else e.model_copy(update={"headers": {**e.headers, **carrier}})
        for e in events
    ]


def inject(carrier: MutableMapping[str, Any], event: Event | None = None) -> MutableMapping[str, Any]:
    """Put ``outbound_headers(event)`` into ``carrier`` (replacing trace headers in any letter case) and
    return it."""
    trace = outbound_headers(event)
    if trace:
        for key in [k for k in carrier if isinstance(k, str) and k.lower() in (TRACEPARENT, TRACESTATE)]:
            del carrier[key]
        carrier.update(trace)
    return carrier


class _Getter:
    """OpenTelemetry ``Getter`` over transport headers: names in any letter case, bytes values."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = _header(carrier, key.lower())
        return None if value is None else [value]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return [k for k in carrier if isinstance(k, str)]


_GETTER = _Getter()


def _extract(headers: Mapping[str, Any]) -> Any:
    return _propagate.extract(headers, getter=_GETTER) if headers else None


# -- receive span (Transport.intake) -----------------------------------------------------------------
def receive(transport: Transport, message: InboundMessage, out: asyncio.Future[SettleResult]) -> None:
    """Start the receive span of ``message`` (called by ``Transport.intake`` while ``active``), put its
    context into the message's headers (and into its events' headers when they were decoded already),
    and end it when ``out`` (the settlement) resolves."""
    parent = _extract(message.headers)
    span = _tracer.start_span(
        f"receive {transport.name}",
        context=parent,
        kind=_trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": _SYSTEMS.get(transport.kind, transport.kind),
            "messaging.operation.type": "receive",
            "messaging.operation.name": "receive",
            "messaging.destination.name": message.origin,
            "messaging.message.body.size": len(message.body),
            "pywats.transport": transport.name,
        },
    )
    carrier: dict[str, str] = {}
    _propagate.inject(carrier, context=_trace.set_span_in_context(span))
    message.headers = _replace_trace(message.headers, carrier)
    if message.events is not None:
        message.events = [
            e.model_copy(update={"headers": _replace_trace(e.headers, carrier)}) for e in message.events
        ]
        span.set_attribute("pywats.events", len(message.events))
    out.add_done_callback(lambda f: _end_receive(span, message, f))


def _end_receive(span: Any, message: InboundMessage, settled: asyncio.Future[SettleResult]) -> None:
    StatusCode = _trace.StatusCode
    if settled.cancelled():
        span.set_status(StatusCode.ERROR, "not submitted: the bus refused the message (not running)")
    elif settled.exception() is not None:
        exc = settled.exception()
        span.record_exception(exc)
        span.set_status(StatusCode.ERROR, f"not settled, given back to the sender: {type(exc).__name__}: {exc}")
    else:
        result = settled.result()
        span.set_attributes(
            {
                "pywats.settle.events": result.events,
                "pywats.settle.handled": result.handled,
                "pywats.settle.skipped": result.skipped,
                "pywats.settle.dead_lettered": result.dead_lettered,
                "pywats.settle.unrouted": result.unrouted,
            }
        )
        if message.dead_letter_id is not None:
            span.set_attribute("pywats.dead_letter.id", message.dead_letter_id)
            span.set_status(StatusCode.ERROR, f"undecodable: kept whole in dead-letter entry {message.dead_letter_id}")
    span.end()


# -- process span and log context (delivery layer) ---------------------------------------------------
async def deliver(
    run: Callable[[Event, Subscription], Awaitable[DeliveryResult]],
    event: Event,
    sub: Subscription,
    transport: str,
    *,
    replay: bool = False,
) -> DeliveryResult:
    """Run ``run(event, sub)`` (one delivery) inside its process span and/or log context (called by the
    delivery layer while ``hooked``).

    Args:
        run: the delivery layer's ``deliver``.
        event / sub: the delivery. transport: the name of the transport the event came from.
        replay: the delivery is a replay from the dead-letter queue.
    """
    token = _delivery.set((event, sub.name, transport)) if _log_context else None
    try:
        if not active:
            return await run(event, sub)
        span = _tracer.start_span(
            f"process {sub.name}",
            context=_extract(event.headers),
            kind=_trace.SpanKind.CONSUMER,
            # Few attributes: the SDK checks each one, which is most of a span's cost (bench/tracing.py).
            attributes={
                "messaging.operation.type": "process",
                "messaging.message.id": event.id,
                "pywats.event.type": event.type,
                "pywats.handler": sub.name,
                "pywats.transport": transport,
            },
        )
        if replay:
            span.set_attribute("pywats.replay", True)
        with _trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
            res = await run(event, sub)
            _outcome(span, res)
            return res
    finally:
        if token is not None:
            _delivery.reset(token)


def _outcome(span: Any, res: DeliveryResult) -> None:
    outcome = res.outcome.value
    if outcome in ("handled", "deferred"):
        span.set_status(_trace.StatusCode.OK)
        if res.attempts or outcome == "deferred":  # (a first-time success says nothing more)
            span.set_attributes({"pywats.delivery.outcome": outcome, "pywats.delivery.attempts": res.attempts})
        return
    span.set_attributes(
        {"pywats.delivery.outcome": outcome, "pywats.delivery.attempts": res.attempts,
         "pywats.dead_letter.reason": str(res.reason)}
    )
    if outcome == "parked":
        return  # not failed: it waits for the breaker to close (status unset)
    if res.error is not None:
        span.record_exception(res.error)
    err = f": {type(res.error).__name__}: {res.error}" if res.error is not None else ""
    span.set_status(_trace.StatusCode.ERROR, f"dead-lettered ({res.reason}) after {res.attempts} attempt(s){err}")


def attempt_failed(attempt: int, exc: BaseException) -> None:
    """Record a failed handler attempt as an event of the current process span (called while ``active``)."""
    _trace.get_current_span().add_event(
        "attempt_failed",
        {"pywats.attempt": attempt, "exception.type": type(exc).__name__, "exception.message": str(exc)[:1000]},
    )


# -- outbound spans ----------------------------------------------------------------------------------
@contextlib.contextmanager
def client_span(method: str, url: str, event: Event | None = None) -> Iterator[dict[str, str]]:
    """One outbound HTTP request: a CLIENT span while tracing (``http.request.method``, ``url.full``;
    status ERROR when the block raises); yields the trace headers to send with the request (see
    ``outbound_headers``). Call ``set_status_code`` inside the block to record the answer."""
    if not active:
        yield outbound_headers(event)
        return
    with _tracer.start_as_current_span(
        method, kind=_trace.SpanKind.CLIENT, attributes={"http.request.method": method, "url.full": url}
    ):
        yield outbound_headers(event)


def set_status_code(status: int) -> None:
    """Record an HTTP answer's status on the current CLIENT span (ERROR for 4xx/5xx: OpenTelemetry HTTP
    client conventions). No-op while tracing is off."""
    if not active:
        return
    span = _trace.get_current_span()
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        span.set_status(_trace.StatusCode.ERROR, f"HTTP {status}")


@contextlib.contextmanager
def producer_span(system: str, destination: str, event: Event | None = None) -> Iterator[dict[str, str]]:
    """Publishing one message: a PRODUCER span ``send <destination>`` while tracing; yields the trace
    headers to put on the message (a fresh ``traceparent`` when nothing is traced nor carried, so that
    the message can be followed by trace id in the receiver's spans and logs).

    Args:
        system: ``messaging.system`` (``rabbitmq``, ``mqtt``, ``nats``, ``http``).
        destination: exchange, topic, subject or URL. event: the event sent, if any.
    """
    if not active:
        yield outbound_headers(event, new_trace=True)
        return
    with _send_span(system, destination, None):
        yield outbound_headers(event, new_trace=True)


@contextlib.contextmanager
def send_span(system: str, destination: str, event: Event) -> Iterator[dict[str, str]]:
    """A transport's ``send`` of ``event``: a PRODUCER span ``send <destination>`` while tracing (a child of
    the current span, e.g. the process span of the handler that sends; status ERROR when the block
    raises); yields the trace headers to put on the message (``outbound_headers(event)``: the PRODUCER
    span's context while tracing, else the event's own ``traceparent``/``tracestate`` passed through, else
    ``{}``: unlike ``producer_span``, no trace is started for an event that carries none).

    Args:
        system: ``messaging.system`` (``rabbitmq``, ``mqtt``, ``nats``).
        destination: exchange, topic or subject. event: the event sent.
    """
    if not active:
        yield outbound_headers(event)
        return
    with _send_span(system, destination, event.id):
        yield outbound_headers(event)


def _send_span(system: str, destination: str, message_id: str | None) -> Any:
    """The PRODUCER span ``send <destination>`` made current (only while tracing is active)."""
    attributes = {
        "messaging.system": system,
        "messaging.operation.type": "send",
        "messaging.destination.name": destination,
    }
    if message_id is not None:
        attributes["messaging.message.id"] = message_id
    return _tracer.start_as_current_span(f"send {destination}", kind=_trace.SpanKind.PRODUCER, attributes=attributes)


# -- log fields --------------------------------------------------------------------------------------
def log_fields(event: Event | None, handler: str | None, transport: str | None) -> dict[str, Any]:
    """The ``extra=`` fields of a delivery log line: ``event_id``, ``handler``, ``transport``,
    ``trace_id`` (``None`` when unknown); ``span_id`` of the current span while tracing."""
    if not transport and event is not None:
        transport = str(event.headers.get("transport") or "") or None
    fields: dict[str, Any] = {
        "event_id": event.id if event is not None else None,
        "handler": handler,
        "transport": transport or None,
        "trace_id": trace_id_of(event.headers) if event is not None else None,
    }
    if active:
        ctx = _trace.get_current_span().get_span_context()
        if ctx.is_valid:
            fields["trace_id"] = format(ctx.trace_id, "032x")
            fields["span_id"] = format(ctx.span_id, "016x")
    return fields


def entry_log_fields(entry: DeadLetterEntry) -> dict[str, Any]:
    """``log_fields`` of a dead-letter entry (a failed delivery's, or raw input's) plus ``entry_id``."""
    if entry.event is not None:
        fields = log_fields(entry.event, entry.handler, entry.transport or None)
        fields["trace_id"] = trace_id_of(entry.event.headers) or fields["trace_id"]
    else:
        fields = {"event_id": None, "handler": entry.handler, "transport": entry.transport or None,
                  "trace_id": trace_id_of(entry.headers)}
    fields["entry_id"] = entry.id
    return fields


def raw_log_fields(record: RawRecord) -> dict[str, Any]:
    """``log_fields`` of undecodable input (no event, no handler)."""
    return {"event_id": None, "handler": None, "transport": record.transport, "trace_id": trace_id_of(record.headers)}


class DeliveryContextFilter(logging.Filter):
    """Adds the running delivery's ``event_id``, ``handler``, ``transport``, ``trace_id`` (and ``span_id``
    while tracing) to every record that does not carry them already. Attach it to a log handler (as
    ``setup_logging`` does for JSON); it needs ``enable_log_context()`` to know the delivery."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _delivery.get()
        if current is not None and not hasattr(record, "event_id"):
            for key, value in log_fields(*current).items():
                setattr(record, key, value)
        return True
