"""The Biosero event client: publish event messages to an event service (``biosero.datamodels.clients``).

Code written against Biosero's ``EventClient`` runs with the prefix changed to ``pywats_lab.clients``::

    client = EventClient(url="http://lab-events:8080")          # or url_provider=..., or http_client=...
    client.publish_event(EventMessage(topic="sample.processed", subjects=["sample-123"], data={...}))
    async with httpx.AsyncClient() as http:
        await client.publish_async(message, http)
    client.get_server_time()

Endpoints (the Biosero Data Services API version 2.0, served by a pyWATS bus with the HTTP surface):
``POST {base}/api/v2.0/EventService`` takes the message; ``GET {base}/api/v2.0/EventService/ServerTime``
answers ``{"serverTime": "2024-05-02T08:15:00.123456Z"}`` (the route ``pywats_lab.http`` mounts; the
Biosero document does not name the path, so this one is ours). Every call raises on a non-2xx answer
(``raise_for_status``: ``httpx.HTTPStatusError``, or ``requests.HTTPError`` with a ``requests.Session``),
network errors propagate as the HTTP library raises them, and ``None`` values are removed from the body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from .events import EventMessage, remove_none_values

__all__ = ["EVENT_SERVICE_PATH", "SERVER_TIME_PATH", "EventClient", "HttpClientHelper"]

EVENT_SERVICE_PATH = "/api/v2.0/EventService"
SERVER_TIME_PATH = "/api/v2.0/EventService/ServerTime"

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class HttpClientHelper:
    """Configured HTTP clients for ``EventClient(http_client=...)`` (Biosero ``HttpClientHelper``)."""

    @staticmethod
    def configure_http_client(url: str, timeout: float = 30.0) -> httpx.Client:
        """An ``httpx.Client`` with ``base_url = url`` and JSON headers.

        Args:
            url: the service's base URL (``http://host:8080``).
            timeout: seconds for connecting and for each answer.

        Raises:
            ValueError: ``url`` is empty.
        """
        if not url:
            raise ValueError("configure_http_client: url must not be empty")
        return httpx.Client(base_url=url.rstrip("/"), headers=_HEADERS, timeout=timeout)

    @staticmethod
    def configure_http_client_with_provider(url_provider: Callable[[], str], timeout: float = 30.0) -> httpx.Client:
        """``configure_http_client(url_provider())``.

        Raises:
            ValueError: the provider returns an empty URL.
        """
        return HttpClientHelper.configure_http_client(url_provider(), timeout)


class EventClient:
    """Publish event messages to an event service (Biosero ``EventClient``).

    Args:
        url: the service's base URL.
        url_provider: a function returning the base URL, called for every request (the URL may change).
        http_client: a configured client: an ``httpx.Client`` (its ``base_url`` is used) or any object with
            ``post``/``get`` and a ``base_url`` attribute (a ``requests.Session`` with ``session.base_url``
            set, as the Biosero document shows). The caller owns it: ``close`` leaves it open.

    Raises:
        ValueError: none of ``url``, ``url_provider``, ``http_client`` given, or the client has no base URL.
    """

    def __init__(
        self,
        url: str | None = None,
        url_provider: Callable[[], str] | None = None,
        http_client: Any = None,
    ) -> None:
        if url is None and url_provider is None and http_client is None:
            raise ValueError("EventClient needs url=..., url_provider=... or http_client=...")
        self._url = url.rstrip("/") if url else None
        self._url_provider = url_provider
        self._owns_client = http_client is None
        self._http_client: Any = (
            http_client if http_client is not None else httpx.Client(headers=_HEADERS, timeout=30.0)
        )
        if url is None and url_provider is None and not str(getattr(http_client, "base_url", "") or ""):
            raise ValueError("EventClient(http_client=...): the client has no base_url; set it or pass url=")

    def __repr__(self) -> str:
        return f"EventClient({self._base()!r})"

    def _base(self) -> str:
        if self._url_provider is not None:
            url = self._url_provider()
            if not url:
                raise ValueError("EventClient: url_provider returned an empty URL")
            return str(url).rstrip("/")
        if self._url is not None:
            return self._url
        return str(getattr(self._http_client, "base_url", "")).rstrip("/")

    @staticmethod
    def remove_none_values(d: dict[str, Any]) -> dict[str, Any]:
        """``d`` without ``None`` values, at every level: ``{"a": 1, "b": None}`` -> ``{"a": 1}``."""
        cleaned: dict[str, Any] = remove_none_values(d)
        return cleaned

    @staticmethod
    def _body(event_message: EventMessage | dict[str, Any]) -> dict[str, Any]:
        if isinstance(event_message, EventMessage):
            data = event_message.to_dict()
        elif isinstance(event_message, dict):
            data = EventMessage.model_validate(event_message).to_dict()
        else:
            raise TypeError(f"expected an EventMessage or dict, got {type(event_message).__name__}")
        cleaned: dict[str, Any] = remove_none_values(data)
        return cleaned

    def publish_event(self, event_message: EventMessage | dict[str, Any]) -> Any:
        """Post one message (``POST /api/v2.0/EventService``) and return the service's JSON answer.

        Args:
            event_message: an ``EventMessage`` (or a dict validated as one).

        Returns:
            The decoded JSON answer (a pyWATS bus answers ``{"accepted": n, "ids": [...]}``); ``{}`` when
            the answer is empty.

        Raises:
            httpx.HTTPStatusError / requests.HTTPError: a non-2xx answer.
            httpx.HTTPError / requests.RequestException: no answer.
            pydantic.ValidationError: a dict that is not a valid message.
        """
        body = self._body(event_message)
        response = self._http_client.post(self._base() + EVENT_SERVICE_PATH, json=body, headers=_HEADERS)
        response.raise_for_status()
        return response.json() if response.content else {}

    #: Short name used in this project's examples.
    publish = publish_event

    async def publish_async(self, event_message: EventMessage | dict[str, Any], client: httpx.AsyncClient) -> str:
        """Post one message with the caller's ``httpx.AsyncClient``; returns the raw answer text.

        Raises:
            httpx.HTTPStatusError: a non-2xx answer. httpx.HTTPError: no answer.
        """
        body = self._body(event_message)
        response = await client.post(self._base() + EVENT_SERVICE_PATH, json=body, headers=_HEADERS)
        response.raise_for_status()
        return response.text

    def get_server_time(self) -> datetime:
        """The service's current time, timezone-aware UTC (``GET /api/v2.0/EventService/ServerTime``).

        Accepts ``{"serverTime": "<ISO 8601>"}`` or a bare JSON string.

        Raises:
            httpx.HTTPStatusError / requests.HTTPError: a non-2xx answer.
            ValueError: the answer holds no ISO 8601 time.
        """
        response = self._http_client.get(self._base() + SERVER_TIME_PATH, headers=_HEADERS)
        response.raise_for_status()
        data = response.json()
        value = data.get("serverTime") if isinstance(data, dict) else data
        if not isinstance(value, str):
            raise ValueError(f"server time answer has no ISO 8601 time: {str(data)[:200]!r}")
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)

    def close(self) -> None:
        """Close the HTTP client this client created (one passed in stays open: its owner closes it)."""
        if self._owns_client and self._http_client is not None:
            self._http_client.close()

    def __enter__(self) -> EventClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # The document relies on garbage collection closing connections; a failure at interpreter exit
        # is harmless and must not print.
        with contextlib.suppress(Exception):
            self.close()
