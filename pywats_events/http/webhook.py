"""``WebhookTransport``: events pushed over HTTP (``POST /events``, ``POST /cfx``, the lab event service).

The HTTP app (``pywats_events.http``) owns the protocol: credentials, size limits, status codes. Each
request becomes one ``InboundMessage`` handed to ``Transport.intake``, the core's one intake path. An
HTTP request is settled by its answer, so the answer is derived from the settlement future ``intake``
returns: 2xx with the counts once every delivery succeeded or is durably in the dead-letter queue, 503
when the outcome could not be recorded (``settle_failed``). A crash before that leaves the client
without a 2xx, and it sends again. ``/events`` and the lab routes decode before the hand-over, because an
invalid request is answered 400 naming the field (the client keeps it) rather than dead-lettered.

Its state is CONNECTED while the HTTP server is serving (the server calls ``set_serving``), CONNECTING
when the bus started it but the server is not up yet, DISCONNECTED otherwise.

Backpressure: the HTTP layer never queues. When the bus is saturated, too many requests already wait for
settlement (``max_in_flight``), or handing the events to the bus would wait longer than ``submit_wait``
seconds, ``ingest`` raises ``SaturatedError`` and the client gets 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import _json, tracing
from ..codec import DecodeContext, get_decoder
from ..errors import BusClosedError, ConfigError, DecodeError
from ..event import Event, derive_event_id
from ..transport import InboundMessage, RawRecord, SettleResult, Transport, TransportState
from .errors import IngestRefusedError, InvalidRequestError, NotSettledError, SaturatedError

__all__ = ["WebhookSettings", "WebhookTransport"]

log = logging.getLogger(__name__)


#: Seconds between checks of request deadlines (``submit_wait``, ``settle_timeout`` hold to within this).
_DEADLINE_TICK = 0.05


@dataclass(eq=False, slots=True)
class _Deadline:
    """When the request running in ``task`` gives up waiting (loop time, seconds)."""

    task: asyncio.Task[Any]
    at: float
    expired: bool = False


class WebhookSettings(BaseModel):
    """Options of a ``[[transports]] kind = "webhook"`` entry.

    Attributes:
        source: ``source`` of lab event messages (events posted to ``/events`` name their own).
        settle_timeout: seconds a request waits for settlement before answering 503 (the events may still
            be delivered; a retry with the same ids is skipped as a duplicate).
        submit_wait: seconds a request may wait for room in the bus queue before answering 503.
        max_in_flight: requests waiting for settlement at once; more are answered 503 at once.
        max_events_per_request: events one request may carry (400 beyond).
        retry_after: seconds advised in ``Retry-After`` on 503.
    """

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="lab", min_length=1)
    settle_timeout: float = Field(default=30.0, gt=0)
    submit_wait: float = Field(default=0.5, gt=0)
    max_in_flight: int = Field(default=1024, ge=1)
    max_events_per_request: int = Field(default=10_000, ge=1)
    retry_after: int = Field(default=1, ge=1)


class WebhookTransport(Transport):
    """The ingest side of the HTTP app. Attach it to the bus like any transport; ``create_app`` finds it
    (or creates one named ``http``).

    Args:
        name: transport name (default ``http``).
        settings: behaviour (default ``WebhookSettings()``).
    """

    kind = "webhook"

    def __init__(self, name: str = "http", settings: WebhookSettings | None = None) -> None:
        super().__init__(name)
        self.settings = settings or WebhookSettings()
        self._serving = False
        self._stopping = False
        self._in_flight = 0
        self._deadlines: set[_Deadline] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[transports]]`` entry's options (see ``WebhookSettings``).

        Raises:
            ConfigError: unknown key or invalid value; the message names it.
        """
        try:
            settings = WebhookSettings(**options)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"transport {name!r}: option {loc!r}: {err['msg']}") from None
        return cls(name, settings)

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Accept requests again; CONNECTED if the HTTP server already serves, else CONNECTING."""
        self._stopping = False
        if self._serving:
            self._set_state(TransportState.CONNECTED)
        else:
            self._set_state(TransportState.CONNECTING, "waiting for the HTTP server")

    async def stop(self) -> None:
        """Refuse new requests (503) and wait up to ``settle_timeout`` seconds for those in flight."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.settings.settle_timeout)
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        self._set_state(TransportState.DISCONNECTED)

    def set_serving(self, serving: bool) -> None:
        """Told by the HTTP server when it starts (True) and stops (False) serving."""
        self._serving = serving
        if serving and not self._stopping:
            self._set_state(TransportState.CONNECTED)
        elif not serving:
            self._set_state(TransportState.DISCONNECTED, "HTTP server stopped")

    @property
    def accepting(self) -> bool:
        """True when requests are taken (serving, not stopping)."""
        return self._serving and not self._stopping

    @property
    def in_flight(self) -> int:
        """Requests handed to the bus and not settled yet."""
        return self._in_flight

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["in_flight"] = self._in_flight
        return out

    # -- decoding ------------------------------------------------------------------------------
    def _meta(self, route: str) -> dict[str, Any]:
        return {"transport": self.name, "http_route": route}

    def _check_count(self, n: int) -> None:
        if n > self.settings.max_events_per_request:
            raise InvalidRequestError(
                f"{n} events in one request; at most {self.settings.max_events_per_request} are accepted"
            )

    def decode_events(
        self, body: bytes, *, route: str = "/events", id_seed: str | None = None
    ) -> tuple[list[Event], bool]:
        """Decode the normalized event JSON form: one object or a list of objects.

        Args:
            body: the request body (UTF-8 JSON).
            route: the URL path, for headers and messages.
            id_seed: an ``Idempotency-Key``; events without an ``id`` get ``derive_event_id(seed, i)``.

        Returns:
            ``(events, fresh)``: ``fresh`` is True when no object named an ``id`` and no ``id_seed`` was
            given, so every event got a new random id and cannot be a redelivery (``ingest`` may then spare
            the bus its idempotency lookup).

        Raises:
            InvalidRequestError: invalid JSON or event; ``field`` names the field (``[1].type``).
        """
        data = _parse_json(body)
        items = data if isinstance(data, list) else [data]
        many = isinstance(data, list)
        self._check_count(len(items))
        meta = self._meta(route)
        events: list[Event] = []
        fresh = id_seed is None
        for i, item in enumerate(items):
            prefix = f"[{i}]" if many else ""
            if not isinstance(item, dict):
                raise InvalidRequestError(f"expected a JSON object (event), got {type(item).__name__}", prefix)
            if "id" in item:
                fresh = False
            elif id_seed:
                item = {**item, "id": derive_event_id(id_seed, i)}
            headers = item.get("headers")
            if isinstance(headers, dict):
                item = {**item, "headers": {**meta, **headers}}
            elif headers is None:
                item = {**item, "headers": meta}
            try:
                events.append(Event.from_json_dict(item))
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(p) for p in err["loc"])
                field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
                raise InvalidRequestError(f"field {field!r}: {err['msg']}", field) from None
        return events, fresh

    def decode_lab(self, body: bytes, *, route: str, id_seed: str | None = None) -> list[Event]:
        """Decode lab event messages (one, a list, or a bare ``ModuleStatusUpdateEvent``).

        Raises:
            InvalidLabMessageError / InvalidRequestError: invalid JSON or message (``field`` names it).
        """
        # The lab dialect is a plug-in (decoder ``lab-event``); a resent request with the same seed gets the
        # same event ids.
        events = get_decoder("lab-event")(body, DecodeContext(route, self.settings.source, self._meta(route)))
        self._check_count(len(events))
        if id_seed:
            return [e.model_copy(update={"id": derive_event_id(id_seed, i)}) for i, e in enumerate(events)]
        return events

    def decode_cfx(self, body: bytes, *, route: str) -> list[Event]:
        """Decode IPC-CFX envelopes (plain JSON; gzip was already undone by the app) with decoder ``cfx``.

        Raises:
            DecodeError: the CFX decoder's error (the caller dead-letters the body).
        """
        decoder = get_decoder("cfx")
        events = decoder(body, DecodeContext(origin=route, headers=self._meta(route)))
        self._check_count(len(events))
        return events

    async def dead_letter_body(
        self, body: bytes, exc: DecodeError, *, route: str, headers: dict[str, Any], decoder: str
    ) -> str:
        """Store an undecodable body whole in the dead-letter queue through ``intake``; returns the entry
        id (durable when this returns).

        Args:
            body: the bytes as received (after ``Content-Encoding`` was undone, when it could be).
            exc: why the app could not decode it (kept as the entry's reason and error type).
            route: the URL path (the entry's origin). headers: request metadata kept with the entry.
            decoder: the decoder to use on replay (``cfx``).

        Returns:
            The entry id; ``""`` in the unlikely case that ``decoder`` accepted what the app refused (the
            events were then routed and settled like any other; a warning is logged).

        Raises:
            StoreError (or another exception from the bus): the entry could not be stored.
            BusClosedError: the bus is not running.
        """
        message = _Request(body, origin=route, decoder=decoder, headers=dict(headers), refusal=exc)
        await (await self.intake(message))
        if message.dead_letter_id is None:  # the decoder took what the app refused: routed, not lost
            log.warning("%s: body refused by the app (%s) was decoded by %r and routed", route, exc.reason, decoder)
            return ""
        return message.dead_letter_id

    # -- hand-over to the bus ------------------------------------------------------------------
    def _release(self, _: object = None) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def admit(self) -> None:
        """Check that a request can be taken now (called before its body is read, and again by
        ``ingest``).

        Raises:
            IngestRefusedError: stopping or not serving.
            SaturatedError: the bus is saturated or ``max_in_flight`` requests wait for settlement.
        """
        s = self.settings
        if not self.accepting:
            raise IngestRefusedError(f"transport {self.name!r} is not accepting requests", s.retry_after)
        if self._in_flight >= s.max_in_flight or getattr(self.sink, "saturated", False):
            raise SaturatedError("the event bus is saturated; retry later", s.retry_after)

    async def ingest(
        self,
        events: Sequence[Event],
        *,
        first_delivery: bool = False,
        route: str = "/events",
        headers: dict[str, str] | None = None,
    ) -> SettleResult:
        """Hand ``events`` (one request) to the bus through ``intake`` and wait for their settlement.

        Args:
            events: the request's events.
            route: the URL path (origin of the message).
            first_delivery: the events have new random ids, so the bus may skip its idempotency lookup
                (``redelivered=False``); otherwise it consults the records (a retried request).
            headers: the request's W3C trace headers (``traceparent``, ``tracestate``): the parent of the
                receive span when tracing, and copied into every event's ``headers`` either way.

        Returns:
            The settlement: every delivery succeeded or is durably dead-lettered. Only now may the caller
            answer 2xx.

        Raises:
            IngestRefusedError: the transport is stopping or the bus is not running (nothing queued).
            SaturatedError: bus or transport full, or no room within ``submit_wait`` seconds.
            NotSettledError: queued but not settled within ``settle_timeout`` seconds.
            StoreError (or another exception from the bus): a store write failed; not settled.
        """
        s = self.settings
        if not self.accepting:
            raise IngestRefusedError(f"transport {self.name!r} is not accepting requests", s.retry_after)
        if self._in_flight >= s.max_in_flight:
            raise SaturatedError("too many requests wait for settlement; retry later", s.retry_after)
        # The bus's saturation was checked by admit() before the body was read; a queue that filled up
        # since is caught by submit_wait below.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        deadline = _Deadline(task, loop.time() + s.submit_wait)
        self._deadlines.add(deadline)
        self._ensure_watchdog()
        self._in_flight += 1
        self._idle.clear()
        hint = False if first_delivery else None
        if headers and not tracing.active:  # (when tracing, the receive span puts its own context in)
            events = [e.model_copy(update={"headers": {**e.headers, **headers}}) for e in events]
        # The request stays counted in flight until the bus settles it (the message's settlement releases
        # it), also when the request itself gave up waiting: a deadline cancels only the wait.
        message = _Request(b"", origin=route, events=events, redelivered=hint, headers=headers, settled=self._release)
        future: asyncio.Future[SettleResult] | None = None
        submission_goes_on = False
        try:
            if len(events) == 1:
                # Cancelling bus.submit of a single event leaves nothing queued, so the deadline may
                # interrupt it directly (no task needed on the hot path).
                future = await self.intake(message)
            else:
                # Several events go in a task of their own: if the wait for room runs out, the submission
                # goes on (some events may be queued already) rather than being cancelled halfway.
                submitting = asyncio.ensure_future(self.intake(message))
                try:
                    future = await asyncio.shield(submitting)
                except asyncio.CancelledError:
                    submitting.add_done_callback(message.release_unless_submitted)
                    submission_goes_on = True
                    raise
            deadline.at = loop.time() + s.settle_timeout
            # ``future`` is this request's own (made by ``intake``): cancelling the wait cancels it without
            # touching the bus's settlement, which still reaches the message. Shielded while tracing: the
            # receive span ends when ``future`` resolves and must see the real settlement.
            return await (asyncio.shield(future) if tracing.active else future)
        except BusClosedError:
            raise IngestRefusedError("the event bus is not running", s.retry_after) from None
        except asyncio.CancelledError:
            if not deadline.expired:
                raise  # a real cancellation (server shutdown), not our deadline
            task.uncancel()
            if future is None:
                raise SaturatedError("the event bus queue is full; retry later", s.retry_after) from None
            raise NotSettledError(
                f"events queued but not settled within {s.settle_timeout:g}s; they may still be "
                "delivered: resend with the same event ids or Idempotency-Key",
                s.retry_after,
            ) from None
        finally:
            self._deadlines.discard(deadline)
            if future is None and not submission_goes_on:
                message.release()  # never submitted: nothing will settle it

    def _ensure_watchdog(self) -> None:
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch_deadlines(), name=f"pywats-{self.name}-deadlines"
            )

    async def _watch_deadlines(self) -> None:
        """Cancel requests past their deadline, checked every ``_DEADLINE_TICK`` seconds.

        One watcher for all requests instead of a timer each: per-request timers cost more than the rest
        of the hand-over. Deadlines are therefore kept to within one tick.
        """
        loop = asyncio.get_running_loop()
        while self._deadlines:
            await asyncio.sleep(_DEADLINE_TICK)
            now = loop.time()
            for d in [d for d in self._deadlines if d.at <= now and not d.expired]:
                d.expired = True
                d.task.cancel()


class _Request(InboundMessage):
    """One HTTP request as handed to ``Transport.intake``. The request is settled by its answer, which the
    app derives from the settlement future ``intake`` returns (2xx with the counts, 503 when it raises), so
    ``ack`` and ``settle_failed`` have nothing left to do.

    Args:
        refusal: the app's own decode error for a body it refused (corrupt gzip, invalid CFX), kept as the
            dead-letter entry's reason and error type.
        settled: called once, when the bus settled the message (``ack`` / ``settle_failed``) or when it
            was never submitted (``release``): the transport's in-flight count.
    """

    __slots__ = ("refusal", "settled")

    def __init__(
        self,
        body: bytes,
        *,
        refusal: DecodeError | None = None,
        settled: Callable[[], None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(body, **kw)
        self.refusal = refusal
        self.settled = settled

    def release(self) -> None:
        """Call ``settled`` unless it was called already."""
        settled, self.settled = self.settled, None
        if settled is not None:
            settled()

    def release_unless_submitted(self, submitting: asyncio.Future[Any]) -> None:
        """Done-callback of a submission the request stopped waiting for: a submission that failed will
        not be settled, so release now (a submitted one releases when it settles)."""
        if submitting.cancelled() or submitting.exception() is not None:
            self.release()

    def dead_letter_record(self, record: RawRecord) -> RawRecord:
        if self.refusal is None:
            return record
        return dataclasses.replace(record, reason=self.refusal.reason, error_type=type(self.refusal).__name__)

    def ack_nowait(self, result: SettleResult) -> bool:
        """Settled at once: the answer is written from the settlement (no task per request)."""
        self.release()
        return True

    async def ack(self, result: SettleResult) -> None:
        """Nothing left but the release: the answer is written from the settlement."""
        self.release()

    async def settle_failed(self, exc: BaseException) -> None:
        """Nothing left but the release: the answer (503) is written from the settlement's exception."""
        self.release()


def _parse_json(body: bytes) -> Any:
    try:
        return _json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidRequestError("JSON nested too deeply") from None
