"""``NATSSettings`` validation: errors name the key; aliases and defaults."""

from __future__ import annotations

import pytest

from pywats_nats import NATSConfigError, NATSSettings, NATSTransport

RULES = [{"subject": "line1.{station}.results", "type": "test.result"}]


def test_errors_name_the_key_with_its_path() -> None:
    with pytest.raises(NATSConfigError, match=r"transports\[l1\]\.rules\[0\]\.subject"):
        NATSSettings.from_options({"rules": [{"type": "x"}]}, "transports[l1]")
    with pytest.raises(NATSConfigError, match=r"transports\[l1\]\.max_deliver"):
        NATSSettings.from_options({"rules": RULES, "max_deliver": 0}, "transports[l1]")
    with pytest.raises(NATSConfigError, match=r"\.colour"):
        NATSSettings.from_options({"rules": RULES, "colour": "red"}, "transports[l1]")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "at least one mapping rule"),
        ({"rules": RULES, "create_stream": True}, "stream_subjects"),
        ({"rules": RULES, "stream": "a.b"}, "stream name may not contain"),
        ({"rules": RULES, "durable": "a b"}, "consumer name may not contain"),
        ({"rules": RULES, "servers": ["127.0.0.1:4222"]}, "write a URL"),
        ({"rules": RULES, "ack_wait": 5, "in_progress_interval": 5}, "shorter than ack_wait"),
        ({"rules": RULES, "reconnect_initial": 5, "reconnect_max": 1}, "reconnect_max"),
        ({"rules": RULES, "password_env": "PYWATS_TEST_NO_SUCH_VARIABLE"}, "is not set"),
    ],
)
def test_inconsistent_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(NATSConfigError, match=message):
        NATSSettings.from_options(options)


def test_max_ack_pending_is_an_alias_of_max_inflight() -> None:
    assert NATSSettings.from_options({"rules": RULES, "max_ack_pending": 64}).max_inflight == 64


def test_in_progress_interval_defaults_to_a_third_of_ack_wait() -> None:
    assert NATSSettings.from_options({"rules": RULES, "ack_wait": 30}).progress_every == 10
    assert NATSSettings.from_options({"rules": RULES, "in_progress_interval": 2}).progress_every == 2


def test_password_from_the_environment_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_TEST_NATS_PW", "s3cret")
    s = NATSSettings.from_options({"rules": RULES, "user": "u", "password_env": "PYWATS_TEST_NATS_PW"})
    assert s.password is not None and s.password.get_secret_value() == "s3cret"
    t = NATSTransport("n", s)
    assert "s3cret" not in repr(t.describe()) and "s3cret" not in repr(t)


def test_keyword_options_and_settings_are_exclusive() -> None:
    s = NATSSettings.from_options({"rules": RULES})
    with pytest.raises(TypeError, match="either settings or keyword options"):
        NATSTransport("n", s, stream="X")  # type: ignore[arg-type]
