"""Settings validation and secrets (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pywats_events import ConfigError
from pywats_mqtt import MQTTConfigError, MQTTSettings, MQTTTransport

RULES = [{"topic": "stations/{station}/results", "type": "test.result", "source": "{station}"}]


def test_defaults_subscribe_to_rule_filters_at_qos1_with_a_stable_client_id() -> None:
    t = MQTTTransport.from_config("line1", {"rules": RULES})
    assert t.subscriptions == [("stations/+/results", 1)]
    assert t.client_id.startswith("pywats-") and t.client_id.endswith("-line1")
    assert t.client_id == MQTTTransport.from_config("line1", {"rules": RULES}).client_id
    assert t.status_topic == f"pywats/status/{t.client_id}"
    assert t.settings.protocol == "5" and t.settings.persistent_session


def test_shared_group_prefixes_every_subscription() -> None:
    t = MQTTTransport.from_config(
        "m", {"rules": RULES, "shared_group": "testers", "subscriptions": [{"topic": "a/#", "qos": 0}]}
    )
    assert t.subscriptions == [("$share/testers/a/#", 0)]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"rules": RULES, "port": 70000}, "transports[m].port"),
        ({"rules": RULES, "qos": 2}, "transports[m].qos"),
        ({"rules": RULES, "protocol": "4"}, "transports[m].protocol"),
        ({"rules": RULES, "hots": "x"}, "transports[m].hots"),
        ({"rules": RULES, "shared_group": "a/b"}, "transports[m].shared_group"),
        ({"rules": [{"topic": "a", "type": "x.y", "decoder": "xml"}]}, "transports[m].rules[0].decoder"),
        ({"rules": []}, "transports[m]"),
        ({"rules": RULES, "reconnect_initial": 5, "reconnect_max": 1}, "transports[m]"),
        ({"rules": RULES, "tls": {"ca_file": "/nonexistent/ca.pem"}}, "tls.ca_file"),
        ({"rules": [{"topic": "a/#/b", "type": "x.y"}]}, "'#' must be the last level"),
        ({"rules": RULES, "publish_topic": "out/{station}"}, "publish_topic"),
    ],
)
def test_invalid_options_raise_config_error_naming_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(MQTTConfigError) as info:
        MQTTTransport.from_config("m", options)
    assert isinstance(info.value, ConfigError)
    assert key in str(info.value)


def test_protocol_may_be_written_as_a_number() -> None:
    assert MQTTSettings.from_options({"rules": RULES, "protocol": 5}).protocol == "5"


def test_passwords_never_appear_in_describe_repr_or_errors(tmp_path: Path) -> None:
    t = MQTTTransport.from_config("m", {"rules": RULES, "username": "line", "password": "s3cret-pw"})
    assert t.settings.password is not None and t.settings.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(t)
    assert "s3cret-pw" not in str(t.describe())
    assert "s3cret-pw" not in repr(t.settings)
    with pytest.raises(MQTTConfigError) as info:
        MQTTTransport.from_config("m", {"rules": RULES, "password": "s3cret-pw", "port": "x"})
    assert "s3cret-pw" not in str(info.value)


def test_tls_key_without_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x")
    with pytest.raises(MQTTConfigError, match="cert_file"):
        MQTTTransport.from_config("m", {"rules": RULES, "tls": {"key_file": str(key)}})


def test_tls_settings_build_a_verifying_context() -> None:
    ctx = MQTTSettings.from_options({"rules": RULES, "tls": {}}).tls.ssl_context()  # type: ignore[union-attr]
    assert ctx.check_hostname


def test_password_can_come_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_TEST_MQTT_PW", "from-env")
    s = MQTTSettings.from_options({"rules": RULES, "password_env": "PYWATS_TEST_MQTT_PW"})
    assert s.password is not None and s.password.get_secret_value() == "from-env"
    monkeypatch.delenv("PYWATS_TEST_MQTT_PW")
    with pytest.raises(MQTTConfigError, match="PYWATS_TEST_MQTT_PW is not set"):
        MQTTSettings.from_options({"rules": RULES, "password_env": "PYWATS_TEST_MQTT_PW"})
