"""MQTT and NATS settings speak the shared ``TransportSettings`` words; the previous release's keys still
work with a deprecation warning, and errors name the key as the user wrote it."""

from __future__ import annotations

import warnings

import pytest

from pywats_events.transports.settings import TransportSettings
from pywats_mqtt import MQTTConfigError, MQTTSettings, MQTTTransport
from pywats_nats import NATSConfigError, NATSSettings

MQTT_RULES = [{"topic": "a/{station}", "type": "test.result"}]
NATS_RULES = [{"subject": "a.{station}", "type": "test.result"}]


def test_mqtt_settings_are_transport_settings_with_receive_maximum_as_alias() -> None:
    s = MQTTSettings.from_options({"rules": MQTT_RULES, "receive_maximum": 7})
    assert isinstance(s, TransportSettings)
    assert s.max_in_flight == 7 and s.max_inflight == 7  # the old attribute name still reads
    assert MQTTSettings.from_options({"rules": MQTT_RULES, "max_inflight": 9}).max_in_flight == 9
    assert MQTTSettings.from_options({"rules": MQTT_RULES}).max_in_flight == 100


def test_nats_settings_are_transport_settings_with_max_ack_pending_as_alias() -> None:
    s = NATSSettings.from_options({"rules": NATS_RULES, "max_ack_pending": 11})
    assert isinstance(s, TransportSettings) and s.max_in_flight == 11
    assert s.reconnect.max_delay == 10.0 and s.drain_timeout == 5.0  # NATS defaults kept


@pytest.mark.parametrize(
    ("model", "rules", "old", "check"),
    [
        (MQTTSettings, MQTT_RULES, {"reconnect_initial": 0.2}, lambda s: s.reconnect.initial_delay == 0.2),
        (MQTTSettings, MQTT_RULES, {"reconnect_max": 3}, lambda s: s.reconnect.max_delay == 3),
        (MQTTSettings, MQTT_RULES, {"max_message_size": 4096}, lambda s: s.max_message_bytes == 4096),
        (NATSSettings, NATS_RULES, {"reconnect_initial": 0.3}, lambda s: s.reconnect.initial_delay == 0.3),
        (NATSSettings, NATS_RULES, {"reconnect_max": 4}, lambda s: s.reconnect.max_delay == 4),
    ],
)
def test_old_keys_work_with_a_deprecation_warning_naming_the_new_key(model, rules, old, check) -> None:  # type: ignore[no-untyped-def]
    with pytest.warns(DeprecationWarning, match=r"is deprecated, use '(reconnect\.|max_message_bytes)"):
        s = model.from_options({"rules": rules, **old})
    assert check(s)


def test_new_keys_give_no_warning_and_old_and_new_together_are_refused() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = MQTTSettings.from_options(
            {"rules": MQTT_RULES, "reconnect": {"initial_delay": 0.1, "max_delay": 2}, "max_message_bytes": 2048}
        )
    assert (s.reconnect_initial, s.reconnect_max, s.max_message_size) == (0.1, 2, 2048)
    with pytest.warns(DeprecationWarning), pytest.raises(MQTTConfigError, match=r"keep 'reconnect\.max_delay'"):
        MQTTSettings.from_options({"rules": MQTT_RULES, "reconnect_max": 3, "reconnect": {"max_delay": 2}})


def test_errors_name_an_alias_or_old_key_as_written() -> None:
    with pytest.raises(MQTTConfigError, match=r"transports\[m\]\.receive_maximum"):
        MQTTTransport.from_config("m", {"rules": MQTT_RULES, "receive_maximum": 0})
    with pytest.raises(NATSConfigError, match=r"transports\[n\]\.max_ack_pending"):
        NATSSettings.from_options({"rules": NATS_RULES, "max_ack_pending": 0}, "transports[n]")


def test_a_transport_level_decoder_is_refused_not_ignored() -> None:
    with pytest.raises(MQTTConfigError, match="set the decoder on each mapping rule"):
        MQTTSettings.from_options({"rules": MQTT_RULES, "decoder": "cfx"})
    with pytest.raises(NATSConfigError, match="set the decoder on each mapping rule"):
        NATSSettings.from_options({"rules": NATS_RULES, "decoder": "cfx"})


def test_nats_tls_uses_the_shared_tls_settings() -> None:
    s = NATSSettings.from_options({"rules": NATS_RULES, "tls": {"verify_hostname": False}})
    assert s.tls is not None and s.tls.client_context().check_hostname is False
