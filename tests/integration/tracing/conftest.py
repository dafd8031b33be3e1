"""Fixtures: OpenTelemetry's SDK with its in-memory exporter, tracing enabled for one test (tests that
need it skip when the ``otel`` extra is not installed; CI installs it with the ``test`` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pywats_events import tracing
from tests.integration.http.conftest import start_app, start_service  # noqa: F401

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class Spans:
    """The spans finished so far, and lookups over them."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.exporter = exporter

    def all(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [s for s in self.all() if s.name.startswith(prefix)]

    def children_of(self, span: ReadableSpan) -> list[ReadableSpan]:
        sid = span.context.span_id
        return [s for s in self.all() if s.parent is not None and s.parent.span_id == sid]


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Tracing enabled with the SDK and an in-memory exporter (skips when the otel extra is absent)."""
    pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    try:
        yield Spans(exporter)
    finally:
        tracing.disable()
        provider.shutdown()


def hex_trace(span: Any) -> str:
    return format(span.context.trace_id, "032x")


def hex_span(span: Any) -> str:
    return format(span.context.span_id, "016x")
