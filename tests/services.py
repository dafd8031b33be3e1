"""Finding the real services the integration tests use (RabbitMQ, Mosquitto, PostgreSQL...).

With ``PYWATS_REQUIRE_SERVICES=1`` (set by ``.ci/run``) a missing service fails the test run instead of
skipping, so CI can never pass by not testing.
"""

from __future__ import annotations

import os
import socket

import pytest

RABBITMQ = ("127.0.0.1", 5672)
MOSQUITTO = ("127.0.0.1", 1883)
POSTGRES = ("127.0.0.1", 5432)
AMQP_URL = os.environ.get("PYWATS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_ADMIN_URL = os.environ.get("PYWATS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def services_required() -> bool:
    """True when a missing service must fail the run (``PYWATS_REQUIRE_SERVICES=1``)."""
    return os.environ.get("PYWATS_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, address: tuple[str, int]) -> None:
    """Skip the calling test when ``name`` does not answer at ``address``, or fail it when services are
    required."""
    if port_open(*address):
        return
    message = f"{name} is not reachable at {address[0]}:{address[1]}"
    if services_required():
        pytest.fail(message + " (PYWATS_REQUIRE_SERVICES=1)")
    pytest.skip(message)
