"""The shipped HTTP samples stay valid: every lab message decodes, the example configuration loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pywats_events import EventType
from pywats_events.config import build_handler, load_settings
from pywats_events.http import HTTPSettings
from pywats_events.http.webhook import WebhookTransport
from pywats_events.lab import parse_lab_body

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "http"
LAB = sorted((SAMPLES / "lab").glob("*.json"))


@pytest.mark.parametrize("path", LAB, ids=[p.name for p in LAB])
def test_sample_lab_message_decodes(path: Path) -> None:
    events = parse_lab_body(json.loads(path.read_text()))
    assert events
    if "module-status" in path.name:
        assert all(e.type == EventType.ASSET_STATE_CHANGED for e in events)


def test_lab_samples_exist() -> None:
    assert len(LAB) >= 5


def test_example_configuration_builds() -> None:
    settings = load_settings(SAMPLES / "pywats-events.toml")
    http = HTTPSettings.from_config(settings.http)
    assert (http.host, http.port) == ("127.0.0.1", 8080)
    kinds = [h.kind for h in settings.handlers]
    assert kinds == ["event-store", "status-board", "http-forwarder"]
    forwarder = build_handler(settings.handlers[2])
    assert forwarder.name == "to-lab"
    webhook = settings.transports[0]
    assert webhook.kind == "webhook"
    transport = WebhookTransport.from_config(webhook.name or "http", webhook.options())
    assert (transport.name, transport.settings.settle_timeout) == ("http", 30)


def test_example_configuration_with_the_exported_tokens_protects_every_intake(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the sample's comments tell the user to export (issue 9, defect 6: it used to stay open).
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__EVENTS__TOKENS", '["ev-token"]')
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__CFX__HMAC_SECRET", "cfx-key")
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__EVENT_SERVICE__TOKENS", '["lab-token"]')
    http = HTTPSettings.from_config(load_settings(SAMPLES / "pywats-events.toml").http)
    assert http.open_intake() == []
    assert [t.get_secret_value() for t in http.security("events").tokens] == ["ev-token"]
    assert http.allow_open_intake is False
