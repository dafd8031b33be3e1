"""HTTPSettings and WebhookTransport options: environment, validation errors naming the key, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats_events import ConfigError, EventBus, TransportState
from pywats_events.http import HTTPSettings
from pywats_events.http.webhook import WebhookTransport


def test_defaults_bind_loopback_8080() -> None:
    s = HTTPSettings()
    assert (s.host, s.port, s.enabled) == ("127.0.0.1", 8080, True)
    assert s.admin_token is None
    assert s.security("events").open


def test_environment_fills_secrets_and_wins_over_file_values(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 9, defect 6: one precedence rule everywhere, environment over file (as the core settings).
    monkeypatch.setenv("PYWATS_HTTP_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("PYWATS_HTTP_PORT", "9999")
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__CFX__HMAC_SECRET", "cfx-key")
    s = HTTPSettings.from_config({"port": 8181, "host": "127.0.0.2"})
    assert s.port == 9999
    assert s.host == "127.0.0.2"  # what the environment does not name stays as the file says
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "from-env"
    secret = s.security("cfx").hmac_secret
    assert secret is not None and secret.get_secret_value() == "cfx-key"
    shown = repr(s) + str(s.describe())
    assert "from-env" not in shown and "cfx-key" not in shown


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"port": 70000}, "http.port"),
        ({"prot": 1}, "http.prot"),
        ({"routes": {"evnets": {"tokens": ["x"]}}}, "http.routes"),
        ({"routes": {"events": {"tokens": [""]}}}, "http.routes.events.tokens"),
        ({"admin_token": ""}, "http.admin_token"),
        ({"max_body_bytes": 10}, "http.max_body_bytes"),
    ],
)
def test_invalid_settings_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        HTTPSettings.from_config(options)
    assert str(info.value).startswith(key)


def test_single_token_string_is_accepted() -> None:
    s = HTTPSettings.from_config({"routes": {"events": {"tokens": "one"}}})
    assert [t.get_secret_value() for t in s.security("events").tokens] == ["one"]


def test_webhook_from_config_names_bad_option() -> None:
    t = WebhookTransport.from_config("lab-in", {"source": "lims", "settle_timeout": 5})
    assert (t.name, t.settings.source, t.settings.settle_timeout) == ("lab-in", "lims", 5)
    with pytest.raises(ConfigError, match="settle_timeout"):
        WebhookTransport.from_config("lab-in", {"settle_timeout": -1})
    with pytest.raises(ConfigError, match="'colour'"):
        WebhookTransport.from_config("lab-in", {"colour": "red"})


async def test_webhook_state_is_connecting_until_the_server_serves() -> None:
    bus = EventBus()
    t = WebhookTransport()
    bus.add_transport(t)
    async with bus:
        assert t.state is TransportState.CONNECTING
        assert not bus.readiness()[0]
        t.set_serving(True)
        assert t.state is TransportState.CONNECTED
        assert bus.readiness()[0]
        t.set_serving(False)
        assert t.state is TransportState.DISCONNECTED
    assert t.state is TransportState.DISCONNECTED


def test_environment_token_wins_over_an_empty_token_list_in_the_file_and_merges_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYWATS_HTTP_ROUTES__EVENTS__TOKENS", '["from-env"]')
    s = HTTPSettings.from_config({"routes": {"events": {"tokens": []}, "cfx": {"hmac_secret": "file-key"}}})
    assert [t.get_secret_value() for t in s.security("events").tokens] == ["from-env"]
    cfx = s.security("cfx").hmac_secret
    assert cfx is not None and cfx.get_secret_value() == "file-key"  # the file's other groups are kept
    assert s.open_intake() == ["event_service"]


def test_core_and_http_settings_follow_the_same_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pywats_events.config import load_settings

    cfg = tmp_path / "svc.toml"
    cfg.write_text('log_level = "INFO"\n[http]\nport = 8181\n')
    monkeypatch.setenv("PYWATS_EVENTS_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("PYWATS_HTTP_PORT", "9191")
    settings = load_settings(cfg)
    assert settings.log_level == "ERROR"
    assert HTTPSettings.from_config(settings.http).port == 9191
