"""The pyWATS event architecture document's CFX example (seed ``004``) runs as written."""

from __future__ import annotations

import pytest

from pywats_cfx import CFXConfig, CFXTransport
from pywats_cfx.config import AMQPConfig, EndpointConfig
from pywats_events import EventBus


def test_the_documents_cfx_configuration_builds_the_transport_it_describes() -> None:
    config = CFXConfig(
        amqp=AMQPConfig(host="cfx-broker.factory.local"),
        endpoint=EndpointConfig(cfx_handle="//Company/WATS/Station1"),
    )
    transport = CFXTransport(config)
    bus = EventBus()
    bus.register_transport(transport)
    s = transport.settings
    assert transport.name == "cfx" and bus.transports["cfx"] is transport
    assert s.url.get_secret_value() == "amqp://guest@cfx-broker.factory.local:5672/%2F"
    assert s.password is not None and s.password.get_secret_value() == "guest"
    assert s.handle == "//Company/WATS/Station1"
    assert s.queue == "pywats-events.Company.WATS.Station1"
    assert (s.exchange, s.exchange_type, s.binding_keys) == ("cfx", "topic", ["#"])


def test_tls_fields_map_onto_the_transport_settings(tmp_path: object) -> None:
    config = CFXConfig(amqp=AMQPConfig(host="b", port=5671, use_ssl=True, ssl_verify=False, virtual_host="line1",
                                       username="line user", heartbeat=15))
    s = config.to_settings()
    assert s.url.get_secret_value() == "amqps://line%20user@b:5671/line1"
    assert s.tls_verify_hostname is False and s.heartbeat == 15
    with pytest.raises(TypeError, match="CFXConfig alone"):
        CFXTransport(config, prefetch=10)  # type: ignore[arg-type]
