"""The WATS handlers, configured by kind: ``wats-report``, ``wats-asset``, ``wats-production``.

All three store and forward: a WATS that is down, slow or overloaded raises ``WatsUnavailableError``, which
the bus retries and then parks durably (the broker message is acknowledged once it is parked) with the
breaker open; the breaker's probe, every ``probe_interval`` seconds, redelivers the parked deliveries oldest
first as soon as WATS answers, with no operator. A refused token (401/403) parks at once and shows in
readiness until an accepted call. A report WATS refuses (400) is dead-lettered at once with the server's
text. Reports carry the event id as their id, so a redelivered event overwrites its report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import httpx

from pywats_events.breaker import BreakerPolicy
from pywats_events.event import Event
from pywats_events.handlers import BaseHandler
from pywats_events.retry import RetryPolicy

from .builder import ReportBuilder
from .client import WatsClient
from .errors import ReportBuildError
from .models import UURReport, UUTReport
from .settings import AssetSettings, ClientSettings, ProductionSettings, ReportSettings, parse_settings

__all__ = [
    "E10_TO_ASSET_STATE",
    "PHASE_FINALIZED",
    "PHASE_SCRAPPED",
    "WatsAssetHandler",
    "WatsProductionHandler",
    "WatsReportHandler",
]

log = logging.getLogger(__name__)

#: SEMI E10 state category (as the CFX adapters put it in ``new_category``) → WATS AssetState (olreppe/pyWATS
#: ``domains/asset/enums.py``: 0 Unknown, 1 In operation, 2 In transit, 3 In maintenance, 4 In calibration,
#: 5 In storage, 6 Scrapped). Productive, standby and engineering time are all "in operation" to WATS;
#: scheduled and unscheduled downtime take the asset out for maintenance or repair; non-scheduled time
#: means the tool is not planned for use, the nearest WATS state being storage.
E10_TO_ASSET_STATE: dict[str, int] = {"PRD": 1, "SBY": 1, "ENG": 1, "SDT": 3, "UDT": 3, "NST": 5}

#: UnitPhaseFlag values (olreppe/pyWATS ``domains/production/enums.py``).
PHASE_FINALIZED = 16
PHASE_SCRAPPED = 32


class _WatsHandler(BaseHandler):
    """What the three handlers share: the client, store and forward policies, readiness."""

    def __init__(self, settings: ClientSettings, name: str | None, transport: httpx.AsyncBaseTransport | None) -> None:
        if name:
            self.name = name
        super().__init__()
        self.settings = settings
        self.client = WatsClient.from_settings(settings, transport)
        self.retry = RetryPolicy(
            max_attempts=settings.retry_attempts,
            initial_delay=settings.retry_delay,
            max_delay=max(settings.retry_delay, 30.0),
        )
        # One delivery's own retries never open the breaker; running out of them does (the bus parks the
        # delivery and opens it), and so do failures of several deliveries at once.
        self.breaker = BreakerPolicy(
            failure_threshold=settings.retry_attempts + 1, reset_timeout=settings.probe_interval
        )

    def health(self) -> str | None:
        return self.client.config_problem

    async def on_stop(self) -> None:
        await self.client.aclose()


class WatsReportHandler(_WatsHandler):
    """``test.result`` / ``inspection.result`` → ``POST /api/Report/WSJF`` (a UUT report per unit);
    ``repair.result`` → a repair (UUR) report when ``repair_process_code`` is configured.

    Args:
        settings: ``ReportSettings`` (URL, token, product defaults and maps).
        name: handler name (default ``wats-report``); dead letters and idempotency records are keyed by it.
        transport: an httpx transport instead of the network (tests).

    Raises (from ``handle``):
        ReportBuildError: the event cannot become a valid report (dead-lettered at once).
        WatsRejectedError: WATS answered 400; the message is the server's text (dead-lettered at once).
        WatsUnavailableError / WatsAuthError: WATS cannot take it now (parked, redelivered automatically).
    """

    name = "wats-report"
    event_types: ClassVar[Sequence[str]] = ("test.result", "inspection.result", "repair.result")

    def __init__(
        self, settings: ReportSettings, *, name: str | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(settings, name, transport)
        self.event_types = tuple(settings.event_types)  # type: ignore[misc]
        self.builder = ReportBuilder(settings)

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[handlers]]`` table (see ``ReportSettings``).

        Raises:
            WatsConfigError: unknown key, invalid value, unset ``token_env``, unusable resolver or time zone.
        """
        return cls(parse_settings(ReportSettings, name, options), name=name)

    def matches(self, event: Event) -> bool:
        # Repair reports need a repair operation; without one configured, repairs are not ours.
        return event.type != "repair.result" or self.builder.settings.repair_process_code is not None

    def build(self, event: Event) -> UUTReport | UURReport | None:
        """The report this handler would post for ``event`` (``None``: dropped by the settings).

        Raises:
            ReportBuildError: see ``ReportBuilder.build``.
        """
        return self.builder.build(event)

    async def handle(self, event: Event) -> None:
        report = self.builder.build(event)
        if report is None:
            log.info("event %s: skipped unit not reported (skipped = 'drop')", event.id)
            return
        await self.client.submit_report(report)


class WatsAssetHandler(_WatsHandler):
    """Asset events → the WATS asset API (olreppe/pyWATS ``domains/asset/async_repository.py``).

    - ``asset.fault`` / ``asset.fault_cleared`` → ``POST /api/Asset/Message`` (the asset log);
    - ``asset.maintenance`` / ``asset.calibration`` → ``POST /api/Asset/Maintenance`` / ``Calibration``
      (payload ``performed_at`` or the event time, ``comment``);
    - ``asset.tool_used`` → ``PUT /api/Asset/Count`` per tool (payload ``tools: [{tool_id, usage_cycles}]``);
    - ``test.result`` with ``test_fixture`` set → ``PUT /api/Asset/Count`` by one for that fixture;
    - ``asset.state_changed`` → ``PUT /api/Asset/State`` through ``E10_TO_ASSET_STATE`` (payload
      ``new_category``, a SEMI E10 category).

    The asset is ``payload.asset_id`` (else the event source), renamed by ``asset_ids``.

    Args:
        settings: ``AssetSettings``.
        name: handler name (default ``wats-asset``).
        transport: an httpx transport instead of the network (tests).

    Raises (from ``handle``):
        ReportBuildError: a state category with no WATS state, or a tool without id (dead-lettered).
        WatsRejectedError / WatsUnavailableError / WatsAuthError: as ``WatsReportHandler``.
    """

    name = "wats-asset"
    event_types: ClassVar[Sequence[str]] = ("asset.*", "test.result")

    def __init__(
        self, settings: AssetSettings, *, name: str | None = None, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(settings, name, transport)
        self.asset_settings = settings
        self.event_types = tuple(settings.event_types)  # type: ignore[misc]
        self.state_map = {**E10_TO_ASSET_STATE, **settings.state_map}

    def matches(self, event: Event) -> bool:
        # Test results count only as fixture usage; without a configured fixture they are not ours.
        return event.type != "test.result" or bool(self.asset_settings.test_fixture)

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[handlers]]`` table (see ``AssetSettings``). Raises ``WatsConfigError``."""
        return cls(parse_settings(AssetSettings, name, options), name=name)

    def _asset(self, event: Event, asset_id: Any = None) -> str:
        key = str(asset_id or event.payload.get("asset_id") or event.source)
        return self.asset_settings.asset_ids.get(key, key)

    async def handle(self, event: Event) -> None:
        p, kind = event.payload, event.type
        if kind in ("asset.fault", "asset.fault_cleared"):
            if kind == "asset.fault":
                what = p.get("description") or p.get("cause") or "fault"
                comment = f"Fault {p.get('code') or ''} ({p.get('fault_severity') or event.severity}): {what}"
            else:
                by = f" by {p['operator_id']}" if p.get("operator_id") else ""
                comment = f"Fault cleared{by}"
            if p.get("fault_id"):
                comment += f" [fault {p['fault_id']}]"
            await self.client.asset_message(self._asset(event), comment.replace("  ", " ").strip())
        elif kind in ("asset.maintenance", "asset.calibration"):
            when = p.get("performed_at") or event.timestamp.isoformat()
            service = "Maintenance" if kind == "asset.maintenance" else "Calibration"
            await self.client.asset_service(service, self._asset(event), str(when), p.get("comment"))
        elif kind == "asset.tool_used":
            for tool in p.get("tools") or []:
                tool_id = tool.get("tool_id") if isinstance(tool, dict) else None
                if not tool_id:
                    raise ReportBuildError("payload.tools[]: a tool without tool_id", event.id)
                await self.client.asset_count(self._asset(event, tool_id), int(tool.get("usage_cycles") or 1))
        elif kind == "asset.state_changed":
            category = str(p.get("new_category") or "").upper()
            if category not in self.state_map:
                raise ReportBuildError(
                    f"payload.new_category {category!r} has no WATS asset state; known: {sorted(self.state_map)}",
                    event.id,
                )
            await self.client.asset_state(self._asset(event), self.state_map[category])
        elif kind == "test.result" and self.asset_settings.test_fixture:
            await self.client.asset_count(self.asset_settings.test_fixture, 1)


class WatsProductionHandler(_WatsHandler):
    """Unit tracking → the WATS production API (olreppe/pyWATS ``domains/production/async_repository.py``).

    - ``production.unit_initialized`` (any station) and ``production.work_started`` at a ``first_stations``
      source → ``PUT /api/Production/Units`` (each unit once per event);
    - ``production.unit_disqualified`` → ``SetUnitPhase`` 32 (scrapped), comment = the reason;
    - ``production.work_completed`` at a ``last_stations`` source → ``SetUnitPhase`` 16 (finalized);
    - ``material.installed`` with a material id and part number → ``AddChildUnit`` (box build).

    Units come from ``payload.units[].unit_id`` (else ``payload.unit_id``); part number and revision from
    ``recipes`` by ``payload.recipe``, else the defaults.

    Args:
        settings: ``ProductionSettings``.
        name: handler name (default ``wats-production``).
        transport: an httpx transport instead of the network (tests).

    Raises (from ``handle``):
        ReportBuildError: no part number for the unit (dead-lettered; configure ``part_number`` or ``recipes``).
        WatsRejectedError / WatsUnavailableError / WatsAuthError: as ``WatsReportHandler``.
    """

    name = "wats-production"
    event_types: ClassVar[Sequence[str]] = ("production.*", "material.installed")

    def __init__(
        self,
        settings: ProductionSettings,
        *,
        name: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(settings, name, transport)
        self.production = settings
        self.event_types = tuple(settings.event_types)  # type: ignore[misc]

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[handlers]]`` table (see ``ProductionSettings``). Raises ``WatsConfigError``."""
        return cls(parse_settings(ProductionSettings, name, options), name=name)

    def _product(self, event: Event) -> tuple[str, str | None]:
        s = self.production
        mapped = s.recipes.get(str(event.payload.get("recipe") or ""))
        pn = (mapped.part_number if mapped else None) or s.part_number
        rev = (mapped.revision if mapped else None) or s.revision
        if not pn:
            raise ReportBuildError("no part number for the unit: configure part_number or recipes", event.id)
        return pn, rev

    def matches(self, event: Event) -> bool:
        # Work started or completed elsewhere than the configured first/last stations is not a unit event.
        s = self.production
        if event.type == "production.work_started":
            return not s.first_stations or event.source in s.first_stations
        if event.type == "production.work_completed":
            return event.source in s.last_stations
        return True

    @staticmethod
    def _units(event: Event) -> list[str]:
        ids = [u.get("unit_id") for u in event.payload.get("units") or [] if isinstance(u, dict)]
        ids = ids or [event.payload.get("unit_id")]
        return list(dict.fromkeys(str(i) for i in ids if i))

    async def handle(self, event: Event) -> None:
        kind, p = event.type, event.payload
        if kind in ("production.unit_initialized", "production.work_started"):
            units = self._units(event)
            if not units:
                return
            pn, rev = self._product(event)
            body = [
                {"serialNumber": sn, "partNumber": pn, "revision": rev, "currentLocation": event.source} for sn in units
            ]
            await self.client.register_units([{k: v for k, v in u.items() if v is not None} for u in body])
        elif kind == "production.unit_disqualified":
            pn, _ = self._product(event)
            comment = "; ".join(str(x) for x in (p.get("reason"), p.get("comments")) if x) or None
            for sn in self._units(event):
                await self.client.set_unit_phase(sn, pn, PHASE_SCRAPPED, comment)
        elif kind == "production.work_completed":
            pn, _ = self._product(event)
            for sn in self._units(event):
                await self.client.set_unit_phase(sn, pn, PHASE_FINALIZED, p.get("result"))
        elif kind == "material.installed" and p.get("material_id") and p.get("part_number") and p.get("unit_id"):
            pn, _ = self._product(event)
            await self.client.add_child_unit(str(p["unit_id"]), pn, str(p["material_id"]), str(p["part_number"]))
