"""Contract of the analytics routes with a live analytics handler holding a simulated line: schemathesis
generates requests from the served OpenAPI document; answers must never be 5xx and must match the
documented status codes, content types and schemas."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pywats_events import EventBus, MockTransport
from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.analytics.testing import simulated_line
from pywats_events.http import HTTPSettings, Server


class _Service:
    """Bus (with the analytics handler fed a line) and server on their own loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.url = ""
        self.error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def _main(self) -> None:
        try:
            bus = EventBus(None, emit_system_events=False)
            mock = MockTransport()
            bus.add_transport(mock)
            bus.register(AnalyticsHandler(persist=False))
            server = Server(bus, HTTPSettings(port=0))
            self._stop = asyncio.Event()
            async with bus:
                await mock.inject_many(simulated_line(stations=2, hours=2, seed=3))
                await server.start()
                self.url = server.url
                self.ready.set()
                await self._stop.wait()
                await server.stop()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def __enter__(self) -> _Service:
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


@pytest.fixture
def service() -> Iterator[_Service]:
    with _Service() as s:
        yield s


def test_analytics_routes_conform_to_the_openapi_document(service: _Service) -> None:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: list[str] = []
    seen = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/analytics/"):
            continue
        seen += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(base_url=service.url, checks=checks, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert seen == 4
    assert not failures, "\n\n".join(failures)
