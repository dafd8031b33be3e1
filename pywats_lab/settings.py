"""Settings of the lab wing: the status DB URL, the lab configuration file and the estimation window.

Read like the rest of the project: keyword arguments first, then the environment (``PYWATS_LAB_DB``,
``PYWATS_LAB_CONFIG_FILE``, ``PYWATS_LAB_HISTORY_WINDOW``, ``PYWATS_LAB_STRICT_DEVICES``), then the
defaults. ``StatusDBImplementation()`` with no arguments uses them, so the LARA document's
``db = StatusDBImplementation()`` opens the database ``PYWATS_LAB_DB`` names (``postgresql://user@host/db``
when several processes share it); without it, the bus's own store ``PYWATS_EVENTS_DB`` when that is a
SQLite or PostgreSQL URL (the lab tables are prefixed ``lab_``, so they sit beside the bus's); else
``sqlite:///pywats-lab.db`` in the working directory.

The lab configuration file (YAML or JSON) lists devices and their positions::

    devices:
      Hamilton_STAR: {positions: 4}
      Incubator: {positions: 20}
      PlateReader: {positions: 1}

With ``strict_devices`` the status DB refuses devices and positions the file does not list
(``UnknownDeviceError``); otherwise a device or position named for the first time is created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import LabConfigError

__all__ = ["DEFAULT_DB_URL", "DeviceConfig", "LabConfig", "LabSettings"]

#: The status DB when nothing else is configured: a SQLite file in the working directory.
DEFAULT_DB_URL = "sqlite:///pywats-lab.db"


_SQL_SCHEMES = ("sqlite:", "sqlite+aiosqlite:", "postgresql:", "postgres:", "postgresql+asyncpg:")


class LabSettings(BaseSettings):
    """Lab wing settings.

    Attributes:
        db: SQLAlchemy URL of the status DB: ``sqlite:///path.db`` (default: see the module docstring) or
            ``postgresql://user@host:5432/db``; the async driver (aiosqlite, asyncpg) is chosen for you.
        config_file: the lab configuration file (devices and positions), or ``None``.
        strict_devices: refuse devices/positions the configuration file does not list.
        history_window: how many of the most recent matching steps an estimate looks at (count, >= 1).
    """

    model_config = SettingsConfigDict(env_prefix="PYWATS_LAB_", extra="forbid")

    db: str = Field(default=DEFAULT_DB_URL, min_length=1)
    config_file: Path | None = None
    strict_devices: bool = False
    history_window: int = Field(default=1000, ge=1, le=1_000_000)

    @classmethod
    def load(cls, **values: Any) -> LabSettings:
        """Settings from ``values``, then the environment, then defaults.

        Raises:
            LabConfigError: a value is invalid (the message names the key, ``PYWATS_LAB_<KEY>`` in the
                environment).
        """
        given = {k: v for k, v in values.items() if v is not None}
        shared = os.environ.get("PYWATS_EVENTS_DB", "")
        if "db" not in given and not os.environ.get("PYWATS_LAB_DB") and shared.startswith(_SQL_SCHEMES):
            given["db"] = shared
        try:
            return cls(**given)
        except ValidationError as exc:
            raise LabConfigError.from_validation(exc, "lab.") from None


class DeviceConfig(BaseModel):
    """One device of the lab configuration file.

    Attributes:
        positions: number of positions (slots), numbered ``0 .. positions-1``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    positions: int = Field(default=1, ge=1, le=100_000)


class LabConfig(BaseModel):
    """The lab configuration file: ``devices`` by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: dict[str, DeviceConfig] = Field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> LabConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON file.

        Raises:
            LabConfigError: the file is missing, unreadable or invalid (the message names the file and key).
        """
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LabConfigError(f"lab configuration {str(path)!r}: cannot read: {exc.strerror}") from None
        try:
            data = yaml.safe_load(text) if path.suffix.lower() in {".yaml", ".yml"} else json.loads(text)
        except (yaml.YAMLError, ValueError) as exc:
            raise LabConfigError(f"lab configuration {str(path)!r}: not valid YAML/JSON: {exc}") from None
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise LabConfigError.from_validation(exc, f"lab configuration {str(path)!r}: ") from None
