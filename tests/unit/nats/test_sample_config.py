"""The shipped example configuration loads through ``pywats-events``' own config path and its rules route
the example messages it documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats_cfx import envelope_to_bytes, generate_envelope
from pywats_events.config import build_transport, load_settings
from pywats_nats import NATSTransport, UnroutedSubjectError

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "nats" / "pywats-events.toml"
ORIGIN = "nats://127.0.0.1:4222/LINE1/x"


def transport() -> NATSTransport:
    settings = load_settings(SAMPLE)
    [cfg] = [t for t in settings.transports if t.kind == "nats"]
    t = build_transport(cfg)
    assert isinstance(t, NATSTransport)
    return t


def test_sample_configuration_builds_a_nats_transport() -> None:
    t = transport()
    assert t.name == "line1" and t.kind == "nats"
    s = t.settings
    assert (s.stream, s.durable, s.create_stream, s.stream_subjects) == ("LINE1", "pywats-line1", True, ["line1.>"])


@pytest.mark.parametrize(
    ("subject", "body", "etype", "source", "severity"),
    [
        ("line1.stations.ict-7.results", b'{"uid": "r-1", "serial": "SN1"}', "test.result", "ict-7", "info"),
        ("line1.alarms.aoi-2.critical", b'{"code": 17}', "asset.fault", "aoi-2", "critical"),
        ("line1.alarms.aoi-2.minor", b'{"code": 3}', "asset.fault", "aoi-2", "warning"),
        ("line1.sensors.oven-3.temperature", b"231.5", "sensor.temperature", "oven-3", "info"),
    ],
)
def test_sample_rules_route_the_documented_messages(
    subject: str, body: bytes, etype: str, source: str, severity: str
) -> None:
    [ev] = transport().mapper.map(subject, body, {}, ORIGIN, "LINE1#1")
    assert (ev.type, ev.source, ev.severity) == (etype, source, severity)


def test_sample_cfx_rule_and_unrouted_subject() -> None:
    t = transport()
    body = envelope_to_bytes(generate_envelope("units-tested", seq=3))
    events = t.mapper.map("line1.cfx.SMT-Line1.AOI", body, {}, ORIGIN, "LINE1#2")
    assert events and events[0].type == "test.result"
    with pytest.raises(UnroutedSubjectError):
        t.mapper.map("line2.anything", b"{}", {}, ORIGIN, "LINE1#3")


def test_nats_is_a_registered_transport_kind_with_its_extra() -> None:
    from pywats_events.plugins import TRANSPORT_GROUP, available

    spec = available(TRANSPORT_GROUP)["nats"]
    assert spec.value == "pywats_nats.transport:NATSTransport"
    assert spec.extras == ("nats",)
