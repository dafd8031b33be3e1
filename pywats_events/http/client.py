"""Outbound HTTP: publish lab event messages to an event service (``POST {base}/api/v2.0/EventService``).

``EventServiceClient`` is for lab scripts, from sync or async code::

    client = EventServiceClient("http://events.lab.local:8080", token="...")
    client.publish_event(topic="Orders.Completed", subjects=["order-17"], data={"plate": "P-001"})
    await client.publish_async(topic="Orders.Completed", data={...})

``HttpForwarder`` is a handler that posts selected events of the bus to another event service. It raises
on failure, so the bus's retry policy, circuit breaker and dead-letter queue apply; a 4xx answer other
than 408/429 means retrying cannot help and dead-letters the delivery at once (``UnrecoverableError``).
Each post carries ``Idempotency-Key: <event id>``, so a receiving pyWATS bus skips a retried copy.

With ``webhook_secret`` each post is signed by Standard Webhooks (``webhook-id`` = the event id, or the
idempotency key, the same on every retry; ``webhook-timestamp`` = the time of that attempt). A 409
``/problems/already-accepted`` answer (the receiver accepted that id before and the answer was lost) counts
as delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, Self

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .. import jsonsafe, tracing
from ..errors import ConfigError, UnrecoverableError
from ..event import Event
from ..handlers import BaseHandler
from .errors import EventServiceError
from .security import sign_body
from .webhook_signature import parse_secret, signature_headers

__all__ = ["EVENT_SERVICE_PATH", "EventServiceClient", "ForwarderSettings", "HttpForwarder"]

EVENT_SERVICE_PATH = "/api/v2.0/EventService"

#: Statuses worth retrying: timeouts, rate limits, and server-side failures.
_RETRYABLE_4XX = frozenset({408, 425, 429})


def _secret(value: str | SecretStr | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _prune(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_prune(v) for v in value]
    return value


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class LabEventMessage(Protocol):
    """A lab event message object (``pywats_lab.events.EventMessage``): anything with ``to_wire_dict()``."""

    def to_wire_dict(self) -> dict[str, Any]: ...


def build_message(
    message: LabEventMessage | Event | Mapping[str, Any] | None = None,
    *,
    topic: str | None = None,
    data: Any = None,
    subjects: Sequence[str] = (),
    tags: Sequence[str] = (),
    source_trace_ids: Sequence[str] = (),
    organization_id: str | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    """The JSON body to post: from a ``LabEventMessage``, an ``Event`` (``event_to_lab_message``), a dict
    (validated as a lab event message), or the keyword fields. ``None`` values are removed at every level.

    Raises:
        ValueError: neither ``message`` nor ``topic`` given, or the message is invalid.
    """
    # The lab models live in the pywats_lab plug-in, which the core does not import: build the wire form here.
    if isinstance(message, Event):
        stamp = message.timestamp.isoformat().replace("+00:00", "Z")
        traces = [i for i in (message.correlation_id, message.causation_id) if i]
        h = message.headers
        message = {"topic": message.type, "subjects": list(message.subjects), "data": message.payload,
                   "tags": list(message.tags), "createdDateUtc": stamp, "sourceTraceIds": traces,
                   "organizationId": h.get("lab.organization_id"), "userId": h.get("lab.user_id")}
    elif message is None:
        if topic is None:
            raise ValueError("give a message or a topic")
        message = {"topic": topic, "data": data, "subjects": list(subjects), "tags": list(tags),
                   "sourceTraceIds": list(source_trace_ids), "organizationId": organization_id,
                   "userId": user_id}
    elif hasattr(message, "to_wire_dict"):
        message = message.to_wire_dict()
    body = dict(message)
    name = body.get("topic", body.get("Topic"))
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError("invalid lab event message: 'topic' must be a non-empty string without whitespace")
    return _prune(body)


class EventServiceClient:
    """Client of an event service (a pyWATS bus or another lab event service).

    Args:
        base_url: the service's base URL (``http://host:8080``); the path ``/api/v2.0/EventService`` is
            appended.
        token: bearer token, if the service requires one.
        hmac_secret: key for the ``X-Signature`` body signature, if the service requires one.
        webhook_secret: Standard Webhooks secret (``whsec_<base64>``): sign every request with it.
        timeout: seconds for connecting and for the answer.
        headers: extra headers for every request.

    Raises (from the publish methods):
        EventServiceError: no answer (network error, ``status`` None) or a non-2xx answer (``status``).
        ValueError: invalid message; on construction, an invalid ``webhook_secret``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | SecretStr | None = None,
        hmac_secret: str | SecretStr | None = None,
        webhook_secret: str | SecretStr | None = None,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + EVENT_SERVICE_PATH
        self._token = _secret(token)
        self._hmac = _secret(hmac_secret)
        whsec = _secret(webhook_secret)
        self._webhook_key = parse_secret(whsec) if whsec else None
        self.timeout = timeout
        self._headers = dict(headers or {})
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"EventServiceClient({self.url!r})"

    def _request(self, body: dict[str, Any], idempotency_key: str | None) -> tuple[bytes, dict[str, str]]:
        raw = jsonsafe.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self._headers}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._hmac:
            headers["X-Signature"] = sign_body(raw, self._hmac)
        if self._webhook_key is not None:
            headers.update(signature_headers(self._webhook_key, raw, msg_id=idempotency_key))
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return raw, headers

    def _result(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 409 and self._webhook_key is not None:
            problem = _problem(response)
            if problem.get("type") == "/problems/already-accepted":
                # Accepted (settled) before under this webhook-id; the earlier answer was lost.
                return {"already_accepted": True, **problem}
        if response.status_code // 100 != 2:
            detail = response.text[:500]
            raise EventServiceError(
                f"{self.url} answered {response.status_code}: {detail}", status=response.status_code
            )
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            return {"body": response.text}
        return data if isinstance(data, dict) else {"body": data}

    def publish_event(
        self,
        message: LabEventMessage | Event | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Post one message from sync code and return the service's JSON answer (``{}`` when empty).

        Args:
            message: see ``build_message``; or pass its keyword fields (``topic``, ``data``, ``subjects``,
                ``tags``, ``source_trace_ids``, ``organization_id``, ``user_id``).
            idempotency_key: sent as ``Idempotency-Key`` so a retried post is not delivered twice.
        """
        raw, headers = self._request(build_message(message, **fields), idempotency_key)
        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout)
        with tracing.client_span("POST", self.url, message if isinstance(message, Event) else None) as trace:
            try:
                response = self._sync.post(self.url, content=raw, headers={**headers, **trace})
            except httpx.HTTPError as exc:
                raise EventServiceError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
            tracing.set_status_code(response.status_code)
            return self._result(response)

    async def publish_async(
        self,
        message: LabEventMessage | Event | Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """``publish_event`` for async code (one connection pool per client, reused).

        The request carries W3C ``traceparent``/``tracestate``: a CLIENT span's context while tracing,
        otherwise those of ``message`` when it is an ``Event`` that has them (``pywats_events.tracing``).
        """
        raw, headers = self._request(build_message(message, **fields), idempotency_key)
        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self.timeout)
        with tracing.client_span("POST", self.url, message if isinstance(message, Event) else None) as trace:
            try:
                response = await self._async.post(self.url, content=raw, headers={**headers, **trace})
            except httpx.HTTPError as exc:
                raise EventServiceError(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
            tracing.set_status_code(response.status_code)
            return self._result(response)

    def close(self) -> None:
        """Close the sync connection pool."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close both connection pools."""
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ForwarderSettings(BaseModel):
    """Options of an ``HttpForwarder`` (configuration file).

    Attributes:
        base_url: the target service's base URL.
        event_types: type patterns to forward.
        min_severity: lowest severity forwarded (``None``: all).
        token / hmac_secret: the target's credentials (secrets).
        webhook_secret: Standard Webhooks secret (``whsec_<base64>``) to sign each post with.
        timeout: seconds per post.
        include_system: also forward ``system.*`` events.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1)
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    min_severity: str | None = None
    token: SecretStr | None = None
    hmac_secret: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    timeout: float = Field(default=10.0, gt=0)
    include_system: bool = False

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_secret(value.get_secret_value())
        return value


class HttpForwarder(BaseHandler):
    """Handler posting events to another event service as lab event messages (``None`` values removed).

    Args:
        base_url: target service base URL.
        event_types: type patterns forwarded (default all; narrow it, e.g. ``("asset.*", "test.result")``).
        name: handler name (default ``http-forwarder``); keep it stable, dead letters are keyed by it.
        token / hmac_secret / webhook_secret / timeout: as ``EventServiceClient``.
        min_severity: lowest severity forwarded.
        include_system: also forward ``system.*`` events (bus internals: transport states, dead-letter
            notices); off by default, so a failing target cannot feed on its own failure notices.

    Raises (from ``handle``, so the bus retries or dead-letters):
        EventServiceError: network failure, or 408/425/429/5xx answers (retried).
        UnrecoverableError: any other non-2xx answer (dead-lettered without retries).
    """

    name = "http-forwarder"
    event_types: ClassVar[Sequence[str]] = ("*",)

    def __init__(
        self,
        base_url: str,
        *,
        event_types: Sequence[str] = ("*",),
        name: str | None = None,
        token: str | SecretStr | None = None,
        hmac_secret: str | SecretStr | None = None,
        timeout: float = 10.0,
        min_severity: str | None = None,
        include_system: bool = False,
        webhook_secret: str | SecretStr | None = None,
    ) -> None:
        if name:
            self.name = name
        super().__init__()
        self.event_types = tuple(event_types)  # type: ignore[misc]
        self.min_severity = min_severity
        self.include_system = include_system
        self.client = EventServiceClient(
            base_url, token=token, hmac_secret=hmac_secret, webhook_secret=webhook_secret, timeout=timeout
        )

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from configuration options (see ``ForwarderSettings``).

        Raises:
            ConfigError: unknown key or invalid value; the message names it.
        """
        try:
            s = ForwarderSettings(**options)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"handler {name!r}: option {loc!r}: {err['msg']}") from None
        return cls(
            s.base_url,
            event_types=s.event_types,
            name=name,
            token=s.token,
            hmac_secret=s.hmac_secret,
            webhook_secret=s.webhook_secret,
            timeout=s.timeout,
            min_severity=s.min_severity,
            include_system=s.include_system,
        )

    def matches(self, event: Event) -> bool:
        return self.include_system or event.category != "system"

    async def handle(self, event: Event) -> None:
        try:
            await self.client.publish_async(event, idempotency_key=event.id)
        except EventServiceError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status not in _RETRYABLE_4XX:
                raise UnrecoverableError(str(exc)) from exc
            raise

    async def on_stop(self) -> None:
        await self.client.aclose()
