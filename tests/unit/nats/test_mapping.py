"""Subject filters, templates and event ids of ``pywats_nats.mapping``."""

from __future__ import annotations

import pytest

from pywats_events.event import Severity
from pywats_nats import (
    MappingRule,
    NATSConfigError,
    PayloadDecodeError,
    SubjectFilter,
    SubjectFilterError,
    SubjectMapper,
    TemplateError,
    UnroutedSubjectError,
)
from pywats_nats.mapping import valid_subject


@pytest.mark.parametrize(
    ("pattern", "subject", "fields"),
    [
        ("line1.stations.{station}.results", "line1.stations.ict-7.results", {"station": "ict-7"}),
        ("line1.*.results", "line1.ict-7.results", {}),
        ("line1.>", "line1.a.b.c", {}),
        ("line1.{station}.>", "line1.aoi.x", {"station": "aoi"}),
    ],
)
def test_filter_matches_and_captures_named_tokens(pattern: str, subject: str, fields: dict[str, str]) -> None:
    assert SubjectFilter(pattern).match(subject) == fields


@pytest.mark.parametrize(
    ("pattern", "subject"),
    [
        ("line1.*.results", "line1.results"),  # '*' is exactly one token
        ("line1.>", "line1"),  # '>' needs at least one token
        ("line1.{station}.results", "line1.a.b.results"),
        ("line1.stations", "line1.stations.x"),
    ],
)
def test_filter_rejects_subjects_outside_it(pattern: str, subject: str) -> None:
    assert SubjectFilter(pattern).match(subject) is None


def test_named_tokens_become_wildcards_in_the_nats_filter() -> None:
    assert SubjectFilter("line1.{station}.results.>").nats_filter == "line1.*.results.>"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("a..b", "empty token"),
        ("a.>.b", "'>' must be the last"),
        ("a.b*", "mixes a wildcard"),
        ("a.{1x}", "not an identifier"),
        ("a.{subject}", "reserved"),
        ("a.{s}.{s}", "used twice"),
        ("a b", "whitespace"),
    ],
)
def test_invalid_filters_raise_naming_the_problem(pattern: str, message: str) -> None:
    with pytest.raises(SubjectFilterError, match=message):
        SubjectFilter(pattern)


def test_valid_subject_refuses_wildcards_empty_tokens_and_spaces() -> None:
    assert valid_subject("pywats.test.test.result")
    for bad in ("", "a.*", "a.>", "a..b", "a b", ".a"):
        assert not valid_subject(bad), bad


def test_rule_builds_a_json_event_with_templates_and_a_stable_id() -> None:
    rule = MappingRule.build(
        "line1.{station}.results",
        type="test.{payload.kind}",
        source="{station}",
        subjects=["{payload.serial}"],
        severity="warning",
    )
    mapper = SubjectMapper([rule])
    body = b'{"kind": "result", "serial": "SN1"}'
    [ev] = mapper.map("line1.ict-1.results", body, {"transport": "nats"}, "nats://h/S/line1.ict-1.results", "S#7")
    assert ev.type == "test.result" and ev.source == "ict-1" and ev.subjects == ("SN1",)
    assert ev.severity is Severity.WARNING
    assert ev.headers["nats_fields"] == {"station": "ict-1"} and ev.headers["nats_rule"] == 0
    [again] = mapper.map("line1.ict-1.results", body, {}, "o", "S#7")
    [other] = mapper.map("line1.ict-1.results", body, {}, "o", "S#8")
    assert again.id == ev.id  # a redelivered copy (same message id) keeps its event id
    assert other.id != ev.id


def test_id_field_takes_precedence_over_the_message_id() -> None:
    rule = MappingRule.build("r.{station}", type="test.result", id_field="meta.uid")
    a = rule.to_events("r.x", {"station": "x"}, b'{"meta": {"uid": "u-1"}}', {}, "o", "S#1")[0]
    b = rule.to_events("r.x", {"station": "x"}, b'{"meta": {"uid": "u-1"}}', {}, "o", "S#2")[0]
    assert a.id == b.id


def test_text_and_bytes_decoders_wrap_the_body() -> None:
    text = MappingRule.build("s.{q}", type="sensor.{q}", decoder="text")
    [ev] = text.to_events("s.temp", {"q": "temp"}, b"23.5", {}, "o", "m")
    assert ev.type == "sensor.temp" and ev.payload == {"text": "23.5"}
    raw = MappingRule.build("b", type="blob", decoder="bytes")
    [ev] = raw.to_events("b", {}, b"\x00\xff", {}, "o", "m")
    assert ev.payload == {"base64": "AP8=", "size": 2}


def test_event_decoder_keeps_the_ids_of_the_events_it_reads() -> None:
    rule = MappingRule.build("bus.>", decoder="event")
    body = b'{"id": "5e1f0000-0000-4000-8000-000000000001", "type": "test.result", "source": "s"}'
    [ev] = rule.to_events("bus.x", {}, body, {"transport": "nats"}, "o", "m")
    assert ev.id == "5e1f0000-0000-4000-8000-000000000001" and ev.headers["transport"] == "nats"


def test_decode_failures_name_the_problem() -> None:
    rule = MappingRule.build("r", type="t.{payload.kind}")
    with pytest.raises(PayloadDecodeError, match="invalid JSON"):
        rule.to_events("r", {}, b"{nope", {}, "o", "m")
    with pytest.raises(PayloadDecodeError, match=r"payload\.kind"):
        rule.to_events("r", {}, b"{}", {}, "o", "m")
    with pytest.raises(UnroutedSubjectError, match="no mapping rule matches subject 'x'"):
        SubjectMapper([rule]).map("x", b"{}", {}, "o", "m")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"decoder": "xml", "type": "t"}, NATSConfigError, "unknown decoder"),
        ({"decoder": "json"}, NATSConfigError, "type: required"),
        ({"decoder": "cfx", "type": "t"}, NATSConfigError, "takes type"),
        ({"decoder": "text", "type": "t", "id_field": "x"}, NATSConfigError, "only the 'json' decoder"),
        ({"type": "t", "severity": "loud"}, NATSConfigError, "unknown severity"),
        ({"type": "{nope}"}, TemplateError, "unknown field"),
        ({"type": "{station!r}"}, TemplateError, "format specs"),
    ],
)
def test_bad_rules_raise_config_errors_naming_the_rule(kwargs: dict[str, str], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        MappingRule.build("r.{station}", index=3, **kwargs)  # type: ignore[arg-type]


def test_first_matching_rule_wins() -> None:
    specific = MappingRule.build("a.{s}.critical", type="asset.fault", severity="critical", index=0)
    general = MappingRule.build("a.{s}.*", type="asset.fault", severity="warning", index=1)
    mapper = SubjectMapper([specific, general])
    assert mapper.map("a.x.critical", b"{}", {}, "o", "m")[0].severity is Severity.CRITICAL
    assert mapper.map("a.x.minor", b"{}", {}, "o", "m")[0].severity is Severity.WARNING
    assert mapper.filters == ["a.*.critical", "a.*.*"]
