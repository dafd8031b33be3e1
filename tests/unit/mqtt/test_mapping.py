"""Topic filters, templates and mapping rules (no broker needed)."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from pywats_events import Event
from pywats_mqtt import (
    MappingRule,
    MQTTConfigError,
    PayloadDecodeError,
    Template,
    TemplateError,
    TopicFilter,
    TopicFilterError,
    TopicMapper,
    UnroutedTopicError,
)
from pywats_mqtt.mapping import filter_covers

ORIGIN = "mqtt://broker:1883/t"


def test_named_segments_become_fields_and_subscribe_as_plus() -> None:
    f = TopicFilter("line1/stations/{station}/results/{kind}")
    assert f.mqtt_filter == "line1/stations/+/results/+"
    assert f.names == ("station", "kind")
    assert f.match("line1/stations/ict-7/results/final") == {"station": "ict-7", "kind": "final"}
    assert f.match("line1/stations/ict-7/results") is None
    assert f.match("line2/stations/ict-7/results/final") is None


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a/#", "a", {}),  # '#' also matches the parent level (MQTT 4.7.1.2)
        ("a/#", "a/b/c", {}),
        ("#", "anything/at/all", {}),
        ("#", "$SYS/broker/uptime", None),  # wildcards do not match '$' topics (MQTT 4.7.2)
        ("+/uptime", "$SYS/uptime", None),
        ("$SYS/#", "$SYS/broker/uptime", {}),
        ("a/+/c", "a//c", {}),  # empty levels are levels
        ("{x}/#", "v/w", {"x": "v"}),
    ],
)
def test_filter_semantics_follow_the_mqtt_standard(pattern: str, topic: str, expected: dict[str, str] | None) -> None:
    assert TopicFilter(pattern).match(topic) == expected


@pytest.mark.parametrize(
    "bad", ["", "a/#/b", "a/b#", "a/+b", "a/{bad name}", "a/{1x}", "{topic}/x", "{a}/{a}", "$share/g/a"]
)
def test_invalid_filters_are_rejected(bad: str) -> None:
    with pytest.raises(TopicFilterError):
        TopicFilter(bad)


_level = st.sampled_from(["a", "b", "c", "", "$x"])


@given(
    filt=st.lists(st.sampled_from(["a", "b", "+", "{n}", ""]), min_size=1, max_size=4),
    multi=st.booleans(),
    topic=st.lists(_level, min_size=1, max_size=5),
)
def test_matching_agrees_with_paho_topic_matches_sub(filt: list[str], multi: bool, topic: list[str]) -> None:
    # Name each named segment uniquely so the filter is valid.
    levels = [f"{{n{i}}}" if p == "{n}" else p for i, p in enumerate(filt)]
    pattern = "/".join([*levels, "#"] if multi else levels)
    assume(pattern)  # MQTT: a topic filter is at least one character long
    f = TopicFilter(pattern)
    name = "/".join(topic)
    assert (f.match(name) is not None) == topic_matches_sub(f.mqtt_filter, name)


def test_template_renders_fields_and_payload_paths_and_rejects_unknown_fields() -> None:
    t = Template("{station}:{payload.meta.serial}", {"station", "payload"})
    assert t.render({"station": "s1", "payload": {"meta": {"serial": 42}}}) == "s1:42"
    with pytest.raises(PayloadDecodeError, match=r"payload\.meta\.serial"):
        t.render({"station": "s1", "payload": {}}, ORIGIN)
    for bad in ("{nope}", "{station!r}", "{station:>5}", "{payload}", "{station.x}", "{", "{payload[0]}"):
        with pytest.raises(TemplateError):
            Template(bad, {"station", "payload"})
    assert Template("pywats/{{literal}}", ()).render({}) == "pywats/{literal}"


def test_json_rule_builds_event_with_type_source_subjects_severity_and_headers() -> None:
    rule = MappingRule.build(
        "st/{station}/res", type="test.{payload.kind}", source="{station}", subjects=["{payload.sn}"], severity="error"
    )
    [ev] = rule.to_events("st/ict-1/res", {"station": "ict-1"}, b'{"kind": "result", "sn": "SN1"}', {"h": 1}, ORIGIN)
    assert (ev.type, ev.source, ev.subjects, ev.severity) == ("test.result", "ict-1", ("SN1",), "error")
    assert ev.payload == {"kind": "result", "sn": "SN1"}
    assert ev.headers == {"h": 1}


@pytest.mark.parametrize(
    ("decoder", "body", "payload"),
    [
        ("json", b"[1, 2]", {"value": [1, 2]}),
        ("json", gzip.compress(b'{"a": 1}'), {"a": 1}),
        ("text", b"23.5", {"text": "23.5"}),
        ("bytes", b"\x00\xff", {"base64": "AP8=", "size": 2}),
    ],
)
def test_payload_decoders(decoder: str, body: bytes, payload: dict[str, object]) -> None:
    rule = MappingRule.build("t", decoder=decoder, type="sensor.reading")
    assert rule.to_events("t", {}, body, {}, ORIGIN)[0].payload == payload


@pytest.mark.parametrize(
    ("decoder", "body", "message"),
    [("json", b"{x", "invalid JSON"), ("json", b"\xff", "invalid UTF-8"), ("text", b"\xff\xfe", "invalid UTF-8")],
)
def test_undecodable_payloads_raise_decode_errors_naming_the_problem(decoder: str, body: bytes, message: str) -> None:
    rule = MappingRule.build("t", decoder=decoder, type="sensor.reading")
    with pytest.raises(PayloadDecodeError, match=message) as info:
        rule.to_events("t", {}, body, {}, ORIGIN)
    assert info.value.where == ORIGIN


def test_rendered_type_that_is_not_a_valid_event_type_is_a_decode_error() -> None:
    rule = MappingRule.build("t/{kind}", type="sensor {kind}")
    with pytest.raises(PayloadDecodeError, match="type"):
        rule.to_events("t/x", {"kind": "x"}, b"{}", {}, ORIGIN)


def test_id_field_gives_the_same_event_id_for_a_redelivered_copy_and_differs_per_topic() -> None:
    rule = MappingRule.build("t/+", type="sensor.reading", id_field="meta.uid")
    body = b'{"meta": {"uid": "m-1"}}'
    a1 = rule.to_events("t/a", {}, body, {}, ORIGIN)[0].id
    a2 = rule.to_events("t/a", {}, body, {}, ORIGIN)[0].id
    b1 = rule.to_events("t/b", {}, body, {}, ORIGIN)[0].id
    assert a1 == a2 != b1
    per_delivery = MappingRule.build("t/+", type="sensor.reading", event_id="delivery")
    first = per_delivery.to_events("t/a", {}, body, {}, ORIGIN)[0].id
    assert first != per_delivery.to_events("t/a", {}, body, {}, ORIGIN)[0].id


def test_without_id_field_a_copy_of_a_message_gets_the_same_event_id_from_its_content() -> None:
    rule = MappingRule.build("t/+", type="sensor.reading")
    props = {"mqtt_user_properties": {"line": "L1"}, "mqtt_content_type": "application/json"}
    body = b'{"v": 1}'
    first = rule.to_events("t/a", {}, body, {**props, "mqtt_dup": False, "mqtt_qos": 1}, ORIGIN)[0].id
    # A copy differs in DUP and QoS (and packet id): same event.
    assert rule.to_events("t/a", {}, body, {**props, "mqtt_dup": True, "mqtt_qos": 0}, ORIGIN)[0].id == first
    # Another topic, payload or user property: another message.
    others = [
        rule.to_events("t/b", {}, body, props, ORIGIN)[0].id,
        rule.to_events("t/a", {}, b'{"v": 2}', props, ORIGIN)[0].id,
        rule.to_events("t/a", {}, body, {**props, "mqtt_user_properties": {"line": "L2"}}, ORIGIN)[0].id,
        rule.to_events("t/a", {}, body, {}, ORIGIN)[0].id,
    ]
    assert first not in others and len(set(others)) == 4
    # A second rule matching the same message (overlapping filters) gives the same id too.
    wider = MappingRule.build("t/#", type="sensor.other")
    assert wider.to_events("t/a", {}, body, props, ORIGIN)[0].id == first


@pytest.mark.parametrize(
    ("outer", "inner", "covers"),
    [
        ("alarms/+/+", "alarms/+/critical", True),
        ("alarms/+/critical", "alarms/+/+", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "a/+/#", True),
        ("a/+", "a/#", False),
        ("#", "a/b", True),
        ("+/x", "$SYS/x", False),
        ("#", "$SYS/x", False),
        ("$SYS/#", "$SYS/x", True),
        ("a/+/c", "a/b/+", False),
        ("a/b", "a/b", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
    ],
)
def test_filter_covers_follows_mqtt_matching(outer: str, inner: str, covers: bool) -> None:
    assert filter_covers(outer, inner) is covers


@given(
    st.lists(st.sampled_from(["a", "b", "+"]), min_size=1, max_size=3),
    st.booleans(),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4),
)
def test_filter_covers_a_topic_name_exactly_when_paho_matches_it(
    levels: list[str], multi: bool, topic: list[str]
) -> None:
    outer = "/".join(levels) + ("/#" if multi else "")
    name = "/".join(topic)
    assert filter_covers(outer, name) is topic_matches_sub(outer, name)


def test_cfx_rule_source_template_replaces_the_envelope_source_and_defaults_to_it() -> None:
    from pywats_cfx import envelope_to_bytes, generate_envelope

    body = envelope_to_bytes(generate_envelope("units-tested", seq=1, source="Vendor.ICT.SN9"))
    named = MappingRule.build("cfx/{station}", decoder="cfx", source="line1-{station}")
    events = named.to_events("cfx/ict-7", {"station": "ict-7"}, body, {}, ORIGIN)
    assert events and {e.source for e in events} == {"line1-ict-7"}
    plain = MappingRule.build("cfx/{station}", decoder="cfx")
    assert {e.source for e in plain.to_events("cfx/ict-7", {"station": "ict-7"}, body, {}, ORIGIN)} == {
        "Vendor.ICT.SN9"
    }
    # The ids still come from the CFX UniqueID, whatever the source.
    assert [e.id for e in events] == [e.id for e in plain.to_events("cfx/x", {"station": "x"}, body, {}, ORIGIN)]


def test_event_decoder_round_trips_what_send_publishes() -> None:
    ev = Event(type="test.result", source="ict", payload={"x": 1})
    rule = MappingRule.build("pywats/#", decoder="event")
    [back] = rule.to_events("pywats/test", {}, ev.to_json().encode(), {"mqtt_topic": "pywats/test"}, ORIGIN)
    assert back.id == ev.id and back.payload == ev.payload
    assert back.headers["mqtt_topic"] == "pywats/test"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decoder": "json"}, "type: required"),
        ({"decoder": "xml", "type": "a.b"}, "unknown decoder"),
        ({"decoder": "cfx", "type": "a.b"}, "remove type"),
        ({"decoder": "text", "type": "a.b", "id_field": "x"}, "only the 'json' decoder"),
        ({"type": "a.b", "severity": "fatal"}, "unknown severity"),
        ({"type": "{payload.k}", "decoder": "text"}, "unknown field"),
        ({"type": "a.b", "event_id": "random"}, "event_id"),
    ],
)
def test_rule_configuration_errors_name_the_setting(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(MQTTConfigError, match=message) as info:
        MappingRule.build("t", index=3, **kwargs)  # type: ignore[arg-type]
    assert str(info.value).startswith("rules[3]")


def test_first_matching_rule_wins_and_unmatched_topics_are_unrouted() -> None:
    mapper = TopicMapper(
        [
            MappingRule.build("a/special", type="first.rule", index=0),
            MappingRule.build("a/+", type="second.rule", index=1),
        ]
    )
    assert mapper.filters == ["a/special", "a/+"]
    assert mapper.map("a/special", b"{}", {}, ORIGIN)[0].type == "first.rule"
    [ev] = mapper.map("a/other", b"{}", {}, ORIGIN)
    assert ev.type == "second.rule" and ev.headers["mqtt_rule"] == 1
    with pytest.raises(UnroutedTopicError, match="no mapping rule matches topic 'b/x'"):
        mapper.map("b/x", b"{}", {}, ORIGIN)


def test_route_cache_stays_bounded() -> None:
    mapper = TopicMapper([MappingRule.build("a/+", type="x.y")], cache_size=10)
    for i in range(100):
        assert mapper.route(f"a/{i}") is not None
    assert len(mapper._cache) <= 10


def test_json_payload_member_types_survive() -> None:
    rule = MappingRule.build("t", type="x.y")
    doc = {"n": 1.5, "b": True, "nested": {"l": [1, None]}}
    assert rule.to_events("t", {}, json.dumps(doc).encode(), {}, ORIGIN)[0].payload == doc
