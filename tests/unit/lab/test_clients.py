"""EventClient request shapes (the posted body without None values, the paths, errors on non-2xx)."""

from __future__ import annotations

import json

import httpx
import pytest

from pywats_lab.clients import EventClient
from pywats_lab.events import EventMessage


def _client(status: int, seen: list[httpx.Request], body: object = None) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body if body is not None else {"accepted": 1})

    return httpx.Client(transport=httpx.MockTransport(answer), base_url="http://lab.example:8080")


def test_publish_posts_the_message_without_none_values() -> None:
    seen: list[httpx.Request] = []
    client = EventClient(http_client=_client(200, seen))
    event = EventMessage(
        topic="sample.processed", subjects=["sample-123"],
        data={"operator": "lab_tech_1", "note": None, "nested": {"a": None, "b": 1}}, tags=["laboratory"],
    )
    assert client.publish_event(event) == {"accepted": 1}
    (request,) = seen
    assert request.method == "POST" and request.url.path == "/api/v2.0/EventService"
    body = json.loads(request.content)
    assert body == {
        "topic": "sample.processed", "subjects": ["sample-123"], "tags": ["laboratory"],
        "data": {"operator": "lab_tech_1", "nested": {"b": 1}}, "sourceTraceIds": [],
    }
    assert client.remove_none_values({"name": "sample", "value": None, "type": "biological"}) == {
        "name": "sample", "type": "biological"
    }


def test_non_2xx_raises_and_bad_configuration_is_a_value_error() -> None:
    seen: list[httpx.Request] = []
    client = EventClient(http_client=_client(503, seen))
    with pytest.raises(httpx.HTTPStatusError):
        client.publish_event(EventMessage(topic="a.b"))
    with pytest.raises(ValueError, match="no base_url"):
        EventClient(http_client=httpx.Client())
    with pytest.raises(ValueError, match="empty URL"):
        EventClient(url_provider=lambda: "").publish_event(EventMessage(topic="a.b"))
    time_client = EventClient(http_client=_client(200, seen, body={"serverTime": "2024-05-02T08:15:00Z"}))
    assert time_client.get_server_time().isoformat() == "2024-05-02T08:15:00+00:00"
    assert seen[-1].url.path == "/api/v2.0/EventService/ServerTime"
    with pytest.raises(ValueError, match="ISO 8601"):
        EventClient(http_client=_client(200, seen, body={"other": 1})).get_server_time()
