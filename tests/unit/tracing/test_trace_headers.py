"""W3C Trace Context headers without OpenTelemetry: finding them in transport headers, the trace id,
passing them through on outbound messages (issue 18.2, 18.4)."""

from __future__ import annotations

import re

import pytest

from pywats_events import Event, tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def tracing_off() -> None:
    assert not tracing.active, "a test left tracing enabled"


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": TRACEPARENT, "tracestate": "a=1"},
        {"TraceParent": TRACEPARENT.encode(), "TRACESTATE": b"a=1"},  # AMQP header table
        {"traceparent": [TRACEPARENT, "00-ffff"], "tracestate": ["a=1"]},  # a repeated HTTP header
        {"mqtt_user_properties": {"traceparent": TRACEPARENT, "tracestate": "a=1"}},  # MQTT 5
    ],
)
def test_trace_headers_are_found_in_any_letter_case_bytes_lists_or_one_level_down(headers: dict[str, object]) -> None:
    assert tracing.trace_headers(headers) == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    assert tracing.trace_id_of(headers) == TRACE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",
        "00-4bf92f35-00f067aa0ba902b7-01",
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",
    ],
)
def test_an_invalid_or_all_zero_traceparent_has_no_trace_id(value: str) -> None:
    assert tracing.trace_id_of({"traceparent": value}) is None


def test_no_headers_no_trace() -> None:
    assert tracing.trace_headers({"content-type": "application/json"}) == {}
    assert tracing.trace_id_of({}) is None and tracing.trace_id_of(None) is None


def test_new_traceparent_is_a_sampled_w3c_version_00_header_with_random_ids() -> None:
    a, b = tracing.new_traceparent(), tracing.new_traceparent()
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", a)
    assert a != b and tracing.trace_id_of({"traceparent": a}) == a[3:35]


def test_outbound_headers_pass_the_events_context_through_when_not_tracing() -> None:
    event = Event(type="test.result", headers={"Traceparent": TRACEPARENT, "tracestate": "a=1", "x": 1})
    assert tracing.outbound_headers(event) == {"traceparent": TRACEPARENT, "tracestate": "a=1"}
    assert tracing.outbound_headers(Event(type="test.result")) == {}
    fresh = tracing.outbound_headers(Event(type="test.result"), new_trace=True)
    assert tracing.trace_id_of(fresh) is not None


def test_inject_replaces_trace_headers_in_other_letter_cases() -> None:
    event = Event(type="test.result", headers={"traceparent": TRACEPARENT})
    carrier: dict[str, object] = {"TraceParent": "00-old", "Content-Type": "application/json"}
    assert tracing.inject(carrier, event) == {"Content-Type": "application/json", "traceparent": TRACEPARENT}


def test_log_fields_take_the_trace_id_from_the_event_headers() -> None:
    event = Event(id="e-1", type="test.result", headers={"traceparent": TRACEPARENT, "transport": "line"})
    assert tracing.log_fields(event, "wats", None) == {
        "event_id": "e-1",
        "handler": "wats",
        "transport": "line",
        "trace_id": TRACE,
    }
