"""Options of the ``wats-report``, ``wats-asset`` and ``wats-production`` handlers (``[[handlers]]`` tables).

```toml
[[handlers]]
kind = "wats-report"
base_url = "https://wats.example.com"
token_env = "WATS_TOKEN"          # or token = "…" (never logged)
part_number = "PCBA-1000"         # defaults ...
revision = "A"
process_code = 10
location = "Line 3"
purpose = "Production"
timezone = "Europe/Oslo"          # the offset of WSJF "start"; default UTC
process_codes = { ict = 10, fct = 20, aoi = 30 }   # by test/inspection method
[handlers.stations."SMTPlus.Model_21232.SN23123"] # by station (the event source, the CFX handle)
machine_name = "ICT-01"
[handlers.recipes."RCP-PCBA-2000"]                # by recipe
part_number = "PCBA-2000"
revision = "C"
```

Where each product field comes from, later wins: the defaults, ``process_codes`` by method, ``stations``
by event source, ``recipes`` by recipe name, the ``resolver`` (``package.module:function``, called as
``f(event) -> dict`` with any of the product keys), and last the payload's own ``part_number``,
``revision``, ``process_code``, ``station``, ``location``, ``purpose`` (an MQTT or webhook producer that
knows them).
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .errors import WatsConfigError

__all__ = [
    "AssetSettings",
    "ClientSettings",
    "Product",
    "ProductionSettings",
    "ReportSettings",
    "parse_settings",
]


class ClientSettings(BaseModel):
    """How to reach WATS: URL, token, TLS and time limits (seconds).

    Attributes:
        base_url: the server, e.g. ``https://wats.example.com`` (``/api/...`` is appended).
        token / token_env: the API token from Control Panel → Tokens, sent as ``Authorization: Basic
            <token>`` (support.wats.com article 207424253); ``token_env`` names an environment variable
            read when the handler is built. One of them is required.
        timeout: seconds for connecting and for each answer.
        verify: verify the server's TLS certificate; a path gives a CA bundle instead.
        client_cert: path of a client certificate (PEM, key included) for servers that ask for one.
        max_connections: connections kept open to the server (keep-alive, reused).
        retry_attempts: calls per delivery before it is parked (WATS unreachable, 5xx, 408, 429).
        retry_delay: seconds before the first retry (doubling after each).
        probe_interval: seconds between probes while WATS is unavailable (the breaker's reset timeout);
            when a probe succeeds, the parked deliveries are sent, oldest first.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(min_length=1, pattern=r"^https?://")
    token: SecretStr | None = None
    token_env: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    verify: bool | str = True
    client_cert: str | None = None
    max_connections: int = Field(default=10, ge=1)
    retry_attempts: int = Field(default=3, ge=1)
    retry_delay: float = Field(default=1.0, ge=0)
    probe_interval: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _token(self) -> ClientSettings:
        if self.token is None and not self.token_env:
            raise ValueError("give token or token_env (the WATS API token)")
        return self

    def resolved_token(self) -> SecretStr:
        """The token itself: ``token``, or the value of ``token_env``.

        Raises:
            WatsConfigError: ``token_env`` names a variable that is not set.
        """
        if self.token is not None:
            return self.token
        assert self.token_env is not None
        value = os.environ.get(self.token_env)
        if not value:
            raise WatsConfigError(f"token_env: environment variable {self.token_env!r} is not set")
        return SecretStr(value)


class Product(BaseModel):
    """Product fields of a report, each optional so that maps can fill in only what differs."""

    model_config = ConfigDict(extra="forbid")

    part_number: str | None = None
    revision: str | None = None
    process_code: int | None = None
    process_name: str | None = None
    machine_name: str | None = None
    location: str | None = None
    purpose: str | None = None
    fixture: str | None = None


class ReportSettings(ClientSettings):
    """``wats-report`` options: the client's, plus how events become reports (see the module docstring).

    Attributes:
        part_number, revision, process_code, process_name, location, purpose, machine_name, fixture:
            defaults of the product fields (``machine_name`` default: the event source cut to 100).
        process_codes: method (``ict``, ``fct``, ``aoi``, lower case) → process code.
        stations: event source → product fields.
        recipes: recipe name → product fields.
        resolver: ``package.module:function`` returning product fields for an event.
        timezone: IANA zone or ``+HH:MM`` for the offset of ``start`` (default ``UTC``).
        verdict: ``limits`` (default): a numeric measurement's status is computed from its value and
            limits, because the server does not compare them (support article 360015705199) and a
            tester's result that contradicts its limits would otherwise be stored as it came;
            ``tester``: keep the result the tester sent.
        skipped: what a unit ``skipped`` becomes: ``terminated`` (result ``T``) or ``drop`` (no report).
        fixture_usage: with ``fixture`` set, add it to ``assets`` with this ``usageCount`` (tests per unit).
        repair_process_code / repair_process_name: the repair operation of repair reports (type ``R``)
            from ``repair.result`` events; without it those events are not this handler's.
        failure_category: the WATS fail-code category of a repair that names none.
        event_types: the event types handled.
    """

    part_number: str | None = None
    revision: str | None = None
    process_code: int | None = None
    process_name: str | None = None
    location: str | None = None
    purpose: str | None = None
    machine_name: str | None = None
    fixture: str | None = None
    process_codes: dict[str, int] = Field(default_factory=dict)
    stations: dict[str, Product] = Field(default_factory=dict)
    recipes: dict[str, Product] = Field(default_factory=dict)
    resolver: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    timezone: str = "UTC"
    verdict: Literal["limits", "tester"] = "limits"
    skipped: Literal["terminated", "drop"] = "terminated"
    fixture_usage: int = Field(default=1, ge=0)
    repair_process_code: int | None = None
    repair_process_name: str | None = None
    failure_category: str = Field(default="Component", min_length=1)
    event_types: list[str] = Field(default_factory=lambda: ["test.result", "inspection.result", "repair.result"])

    def defaults(self) -> Product:
        """The product fields given at the top level."""
        return Product(**{k: getattr(self, k) for k in Product.model_fields})


class AssetSettings(ClientSettings):
    """``wats-asset`` options.

    Attributes:
        asset_ids: event source (CFX handle) or payload asset id → WATS asset serial number; an asset not
            in the map is addressed by its own id.
        state_map: SEMI E10 state category (``PRD``, ``SBY``, ``ENG``, ``SDT``, ``UDT``, ``NST``) → WATS
            AssetState code 0-6; merged over the default ``pywats_wats.handlers.E10_TO_ASSET_STATE``.
        test_fixture: asset serial whose usage count goes up by one per ``test.result`` (``None``: off).
        event_types: the event types handled.
    """

    asset_ids: dict[str, str] = Field(default_factory=dict)
    state_map: dict[str, int] = Field(default_factory=dict)
    test_fixture: str | None = None
    event_types: list[str] = Field(
        default_factory=lambda: [
            "asset.fault",
            "asset.fault_cleared",
            "asset.maintenance",
            "asset.calibration",
            "asset.tool_used",
            "asset.state_changed",
            "test.result",
        ]
    )


class ProductionSettings(ClientSettings):
    """``wats-production`` options.

    Attributes:
        part_number, revision: defaults for units whose event names none.
        recipes: recipe name → product fields (part number and revision of the unit built).
        first_stations: event sources where units are registered (``unit_initialized`` anywhere,
            ``work_started`` only here); empty: every station.
        last_stations: event sources where ``work_completed`` finalizes the unit; empty: none does.
        event_types: the event types handled.
    """

    part_number: str | None = None
    revision: str | None = None
    recipes: dict[str, Product] = Field(default_factory=dict)
    first_stations: list[str] = Field(default_factory=list)
    last_stations: list[str] = Field(default_factory=list)
    event_types: list[str] = Field(
        default_factory=lambda: [
            "production.unit_initialized",
            "production.work_started",
            "production.unit_disqualified",
            "production.work_completed",
            "material.installed",
        ]
    )


T = TypeVar("T", bound=BaseModel)


def parse_settings(cls: type[T], name: str, options: dict[str, Any]) -> T:
    """Validate a handler's options.

    Raises:
        WatsConfigError: unknown key or invalid value, as ``handler '<name>': <key>: <problem>``.
    """
    try:
        return cls(**options)
    except ValidationError as exc:
        raise WatsConfigError.from_validation(exc, f"handler {name!r}: ") from None
