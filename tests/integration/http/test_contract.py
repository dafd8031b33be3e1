"""Contract: schemathesis generates requests from the served OpenAPI document and checks the real server
(no 5xx, status codes, content types and bodies as documented). Bounded: a few examples per operation."""

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

from pywats_events import Event, EventBus
from pywats_events.http import HTTPSettings, Server

TOKEN = "contract-token"


class ThreadedService:
    """Bus and server on their own event loop in a thread, since schemathesis calls are blocking."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.url = ""
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        try:
            bus = EventBus()
            bus.add_event_store()

            @bus.subscribe("*", name="contract-sink")
            async def sink(event: Event) -> None:
                pass

            settings = HTTPSettings(port=0, admin_token=TOKEN, routes={"events": {"tokens": [TOKEN]}})
            server = Server(bus, settings)
            self._stop = asyncio.Event()
            async with bus:
                await server.start()
                self.url = server.url
                self.started.set()
                await self._stop.wait()
                await server.stop()
        except BaseException as exc:
            self.error = exc
            self.started.set()

    def __enter__(self) -> ThreadedService:
        self.thread.start()
        assert self.started.wait(30), "service did not start"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedService]:
    with ThreadedService() as svc:
        yield svc


def test_api_conforms_to_its_openapi_document(service: ThreadedService) -> None:
    # The schemathesis pytest plugin does not work with this pytest version, so drive its Python API:
    # one hypothesis run per operation, each bounded by max_examples.
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(
                base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=checks, timeout=30
            )

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations == 21, "the document lost operations"  # 22 paths (4 analytics); schemathesis skips its own source
    assert not failures, "\n\n".join(failures)
