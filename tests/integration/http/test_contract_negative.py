"""Negative contract: schemathesis sends requests that break the served OpenAPI document (wrong types,
missing required members, patterns and bounds violated, unknown members) to the real server in this
process; every one must be refused with a 4xx, never a 5xx and never accepted. Bounded: a few examples per
operation, so the run takes seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import negative_data_rejection, not_a_server_error

from .test_contract import TOKEN, ThreadedService


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedService]:
    with ThreadedService() as svc:
        yield svc


def _mutations(case: Any) -> list[Any]:
    data = case.meta.phase.data if case.meta is not None else None
    return list(getattr(data, "mutations", ()))


def _negative_run(operation: Any, base_url: str, seen: set[int]) -> None:
    checks = [not_a_server_error, negative_data_rejection]

    @given(case=operation.as_strategy(GenerationMode.NEGATIVE))
    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def run(case: Any) -> None:
        mutations = _mutations(case)
        # Unknown query parameters and extra headers are ignored by design (HTTP clients and proxies add
        # headers; the document cannot say "open" for parameters), so such a case is not an invalid request.
        assume(not any(m.keywords == ("additionalProperties",) and m.path == () for m in mutations))
        headers = {}
        if not any(m.parameter == "Authorization" for m in mutations):
            # The credentials are valid unless the case is about them, so the input itself gets checked.
            headers["Authorization"] = f"Bearer {TOKEN}"
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)
        seen.add(response.status_code)

    run()


def test_invalid_requests_get_4xx_never_5xx_on_every_route(service: ThreadedService) -> None:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        try:
            _negative_run(operation, service.url, statuses.setdefault(label, set()))
        except Unsatisfiable:
            continue  # no input to break (GET /healthz takes none)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{label}: {exc}")
    assert not failures, "\n\n".join(failures)
    assert len(statuses) == 21, "the document lost operations"  # 17 core + 4 analytics
    tried = {label: codes for label, codes in statuses.items() if codes}
    # Operations without any input (GET /healthz) have nothing to break; every other one was tried.
    assert {"POST /events", "POST /cfx", "POST /api/v2.0/EventService", "GET /admin/events"} <= set(tried)
    assert all(code < 500 for codes in tried.values() for code in codes), tried


@pytest.mark.parametrize("key", ["", "two words", "ü-not-ascii".encode("latin-1"), "x" * 201])
def test_an_idempotency_key_outside_the_document_is_refused_naming_the_header(
    service: ThreadedService, key: str | bytes
) -> None:
    answer = httpx.post(
        f"{service.url}/events",
        json={"type": "test.result"},
        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
        timeout=30,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "Idempotency-Key"
    assert answer.headers["content-type"].startswith("application/problem+json")
