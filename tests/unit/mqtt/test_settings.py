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


def test_covered_rule_filters_are_subscribed_once_and_mqtt5_uses_subscription_identifiers() -> None:
    rules = [
        {"topic": "alarms/{station}/critical", "type": "asset.alarm"},
        {"topic": "alarms/{station}/+", "type": "asset.notice"},
        {"topic": "alarms/{station}/critical", "type": "asset.twice"},
        {"topic": "line1/#", "type": "a.b"},
        {"topic": "line1/+/x", "type": "a.c"},
    ]
    t = MQTTTransport.from_config("m", {"rules": rules})
    assert t.subscriptions == [("alarms/+/+", 1), ("line1/#", 1)]
    assert t.describe()["overlap_copies"] == 0
    # A filter covered only at a lower QoS stays: dropping it would downgrade its messages.
    explicit = [{"topic": "a/+", "qos": 0}, {"topic": "a/b", "qos": 1}]
    assert MQTTTransport.from_config("m", {"rules": RULES, "subscriptions": explicit}).subscriptions == [
        ("a/+", 0),
        ("a/b", 1),
    ]


def test_size_limits_and_event_id_mode_are_validated_with_the_key_named() -> None:
    t = MQTTTransport.from_config(
        "m", {"rules": [{**RULES[0], "event_id": "delivery"}], "max_message_size": 2048, "max_inflight_bytes": 4096}
    )
    assert (t.settings.max_message_size, t.settings.max_inflight_bytes) == (2048, 4096)
    assert t.mapper.rules[0].event_id == "delivery"
    assert MQTTSettings(rules=RULES).max_message_size == 8 * 1024 * 1024
    with pytest.raises(MQTTConfigError, match=r"transports\[m\]\.max_message_size"):
        MQTTTransport.from_config("m", {"rules": RULES, "max_message_size": 10})
    with pytest.raises(MQTTConfigError, match=r"transports\[m\]\.rules\[0\]\.event_id"):
        MQTTTransport.from_config("m", {"rules": [{**RULES[0], "event_id": "random"}]})


def test_too_large_record_keeps_a_prefix_and_the_size() -> None:
    from pywats_events.transport import TOO_LARGE_PREFIX, too_large_record

    big = bytes(range(256)) * 100
    record = too_large_record(big, "mqtt://b:1883/t", "m", 2048, {"mqtt_topic": "t"})
    assert record.body == big[:TOO_LARGE_PREFIX]
    assert record.headers == {
        "mqtt_topic": "t",
        "pywats-reason": "too_large",
        "pywats-size": len(big),
        "pywats-max-message-size": 2048,
        "pywats-truncated": True,
    }
    assert "25600 bytes exceeds max_message_size (2048 bytes)" in record.reason
    assert too_large_record(b"x" * 3000, "o", "m", 2048).headers["pywats-truncated"] is False
