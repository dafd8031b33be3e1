"""The shipped example configuration loads and its rules route the example messages it documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats_cfx import envelope_to_bytes, generate_envelope
from pywats_events.config import build_transport, load_settings
from pywats_mqtt import MQTTTransport, UnroutedTopicError

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "mqtt" / "pywats-events.toml"
ORIGIN = "mqtt://127.0.0.1:1883/x"


def transport() -> MQTTTransport:
    settings = load_settings(SAMPLE)
    [cfg] = [t for t in settings.transports if t.kind == "mqtt"]
    t = build_transport(cfg)
    assert isinstance(t, MQTTTransport)
    return t


def test_sample_configuration_builds_an_mqtt_transport() -> None:
    t = transport()
    assert t.name == "line1" and t.client_id == "pywats-line1-a"
    assert ("line1/stations/+/results", 1) in t.subscriptions
    assert ("pywats/events/#", 1) in t.subscriptions


@pytest.mark.parametrize(
    ("topic", "body", "etype", "source", "severity"),
    [
        ("line1/stations/ict-7/results", b'{"uid": "r-1", "serial": "SN1"}', "test.result", "ict-7", "info"),
        ("line1/alarms/aoi-2/critical", b'{"code": 17}', "asset.fault", "aoi-2", "critical"),
        ("line1/alarms/aoi-2/minor", b'{"code": 3}', "asset.fault", "aoi-2", "warning"),
        ("line1/sensors/oven-3/temperature", b"231.5", "sensor.temperature", "oven-3", "info"),
    ],
)
def test_sample_rules_route_the_documented_messages(
    topic: str, body: bytes, etype: str, source: str, severity: str
) -> None:
    [ev] = transport().mapper.map(topic, body, {}, ORIGIN)
    assert (ev.type, ev.source, ev.severity) == (etype, source, severity)


def test_sample_cfx_rule_and_unrouted_topic() -> None:
    t = transport()
    body = envelope_to_bytes(generate_envelope("units-tested", seq=3))
    events = t.mapper.map("line1/cfx/line1.ict", body, {}, ORIGIN)
    assert events and all(e.type == "test.result" for e in events)
    with pytest.raises(UnroutedTopicError):
        t.mapper.map("line2/anything", b"{}", {}, ORIGIN)
