"""Shared fixtures: service checks and sample locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services import MOSQUITTO, POSTGRES, RABBITMQ, require_service

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


@pytest.fixture
def rabbitmq() -> None:
    """Require the real RabbitMQ broker."""
    require_service("RabbitMQ", RABBITMQ)


@pytest.fixture
def mosquitto() -> None:
    """Require the real Mosquitto broker."""
    require_service("Mosquitto", MOSQUITTO)


@pytest.fixture
def postgres() -> None:
    """Require the real PostgreSQL server."""
    require_service("PostgreSQL", POSTGRES)
