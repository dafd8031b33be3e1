"""Bus handlers of the lab wing: ``lab-status-db`` fills the status DB from events, ``lab-orchestrator``
assigns orders to modules.

Event contract of ``lab-status-db`` (any transport: the EventService intake with ``topic`` as the type,
MQTT, AMQP, files). Payload keys; times are ISO 8601 (naive = UTC) and default to the event's timestamp:

=========================  ====================================================================================
``lab.experiment.started``  ``experiment_uuid``, ``process_name``, ``process_src`` (optional). Creates the
                            process (by name) and experiment unless they exist.
``lab.container.added``     ``barcode``, ``device``, ``pos``, ``name``, ``lidded``, ``filled`` (optional).
                            Already there at that position: nothing changes (a redelivered event).
``lab.container.moved``     ``barcode``, ``source_device``, ``source_pos``, ``target_device``, ``target_pos``;
                            optional ``step_id`` (default: the event id), ``main_device`` (default
                            ``transfer``), ``name``, ``start``, ``finish``, ``experiment_uuid``, ``data``.
                            Moves the container and records the move step in one transaction; without
                            ``start`` the step has no duration and does not feed move estimates.
``lab.container.removed``   ``barcode``.
``lab.step.started``        ``step_id``, ``name``, ``device``, ``data`` (with ``fct``), ``barcode``,
                            ``experiment_uuid`` (optional), ``start``.
``lab.step.finished``       ``step_id`` and ``finish``, ``status`` (default ``completed``); the other keys of
                            ``lab.step.started`` when no start was recorded for that ``step_id``.
=========================  ====================================================================================

Every write is idempotent per event (a redelivered copy changes nothing). A payload with a missing or
invalid key, or one the status DB refuses (unknown barcode, occupied target, a container not at the
source, a finish before the start), raises ``LabEventError``: retrying cannot help, so the delivery is
dead-lettered at once with the event type, the key and the reason.

``lab-orchestrator`` takes ``asset.state_changed`` events of lab modules (what the ``lab-event`` decoder
makes of a ``ModuleStatusUpdateEvent``), ``lab.order.requested`` (``order_id``,
``required_capabilities``) and ``lab.order.completed`` (``order_id``), and publishes its decisions
(``lab.order.assigned``, ``lab.order.pending``, ``lab.order.requeued``, ``lab.order.completed`` from a
module report, ``lab.module.status_changed``) back on the bus with ids derived from the triggering
event, so a redelivered trigger yields the same ids.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pywats_events.event import Event, derive_event_id
from pywats_events.handlers import BaseHandler

from .errors import InvalidLabMessageError, LabConfigError, LabDataError, LabEventError
from .events import ModuleStatusUpdateEvent
from .orchestrator import WorkflowOrchestrator
from .status_db import StatusDBImplementation
from .structures import ContainerInfo, DeviceInfo, MoveStep, ProcessStep

if TYPE_CHECKING:
    from pywats_events.bus import EventBus

__all__ = ["LabStatusDBHandler", "LabStatusDBSettings", "OrchestratorHandler", "OrchestratorSettings"]

log = logging.getLogger(__name__)


class LabStatusDBSettings(BaseModel):
    """Options of ``[[handlers]] kind = "lab-status-db"``.

    Attributes:
        db: status DB URL (default ``PYWATS_LAB_DB``, else ``sqlite:///pywats-lab.db``).
        config_file: the lab configuration file (devices and positions).
        strict_devices: refuse devices/positions the configuration file does not list.
        history_window: newest matching steps an estimate looks at (count).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db: str | None = None
    config_file: str | None = None
    strict_devices: bool | None = None
    history_window: int | None = Field(default=None, ge=1)


def _settings(model: type[BaseModel], name: str, options: dict[str, Any]) -> Any:
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        raise LabConfigError.from_validation(exc, f"handlers[{name}].") from None


# -- payload models of the event contract (validation names the key) ------------------------------------
class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Experiment(_Payload):
    experiment_uuid: str = Field(min_length=1)
    process_name: str = Field(min_length=1)
    process_src: str = ""


class _ContainerAdded(_Payload):
    barcode: str = Field(min_length=1)
    device: str = Field(min_length=1)
    pos: int = Field(ge=0)
    name: str | None = None
    lidded: bool = False
    filled: bool = True


class _ContainerMoved(_Payload):
    barcode: str = Field(min_length=1)
    source_device: str = Field(min_length=1)
    source_pos: int = Field(ge=0)
    target_device: str = Field(min_length=1)
    target_pos: int = Field(ge=0)
    step_id: str | None = None
    main_device: str = "transfer"
    name: str | None = None
    start: datetime | None = None
    finish: datetime | None = None
    experiment_uuid: str | None = None
    data: dict[str, Any] = Field(default_factory=lambda: {"fct": "move"})


class _Barcode(_Payload):
    barcode: str = Field(min_length=1)


class _Step(_Payload):
    step_id: str = Field(min_length=1)
    name: str | None = None
    device: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    barcode: str | None = None
    experiment_uuid: str | None = None
    start: datetime | None = None
    finish: datetime | None = None
    status: str | None = None


class _OrderRequested(_Payload):
    order_id: str = Field(min_length=1)
    required_capabilities: list[str] = Field(default_factory=list)


class _OrderId(_Payload):
    order_id: str = Field(min_length=1)


def _parse(model: type[_Payload], event: Event) -> Any:
    try:
        return model.model_validate(event.payload)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(payload)"
        raise LabEventError(f"{event.type} {event.id}: payload key {key!r}: {err['msg']}") from None


def _utc(value: datetime | None, default: datetime) -> datetime:
    value = value or default
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class LabStatusDBHandler(BaseHandler):
    """Records lab events in the status DB (``[[handlers]] kind = "lab-status-db"``; contract in the module
    docstring) and serves the lab REST routes (``pywats_lab.http``) when the HTTP surface runs.

    Args:
        db / config_file / strict_devices / history_window: see ``LabStatusDBSettings``.
        status_db: an open ``StatusDBImplementation`` to use instead (the caller closes it).

    Raises:
        LabConfigError: invalid options.
    """

    name = "lab-status-db"
    event_types: ClassVar[tuple[str, ...]] = ("lab.experiment.*", "lab.container.*", "lab.step.*")
    settings_model = LabStatusDBSettings

    def __init__(
        self,
        db: str | None = None,
        config_file: str | None = None,
        strict_devices: bool | None = None,
        history_window: int | None = None,
        *,
        status_db: StatusDBImplementation | None = None,
    ) -> None:
        super().__init__()
        self._options = LabStatusDBSettings(
            db=db, config_file=config_file, strict_devices=strict_devices, history_window=history_window
        )
        self._owned = status_db is None
        self.status_db: StatusDBImplementation | None = status_db

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[handlers]]`` table. Raises ``LabConfigError``."""
        s: LabStatusDBSettings = _settings(LabStatusDBSettings, name, options)
        handler = cls(s.db, s.config_file, s.strict_devices, s.history_window)
        handler.name = name
        return handler

    @property
    def db(self) -> StatusDBImplementation:
        """The status DB (opened on first use)."""
        if self.status_db is None:
            o = self._options
            self.status_db = StatusDBImplementation(
                o.db, config_file=o.config_file, strict_devices=o.strict_devices, history_window=o.history_window
            )
        return self.status_db

    async def on_start(self) -> None:
        await self.db.aio.ping()

    async def on_stop(self) -> None:
        if self._owned and self.status_db is not None:
            await self.status_db.aclose()
            self.status_db = None

    def http_routes(self) -> list[Any]:
        """The lab REST routes (``pywats_lab.http``) for the bus's HTTP app."""
        from .http import lab_routes

        return lab_routes(self)

    def openapi_paths(self) -> dict[str, Any]:
        """The OpenAPI paths of ``http_routes`` (merged into ``/openapi.json``)."""
        from .http import openapi_paths

        return openapi_paths()

    async def handle(self, event: Event) -> None:
        try:
            await self._dispatch(event)
        except LabDataError as exc:
            raise LabEventError(f"{event.type} {event.id}: {exc}") from exc

    async def _dispatch(self, event: Event) -> None:
        aio = self.db.aio
        kind = event.type
        if kind == "lab.experiment.started":
            p = _parse(_Experiment, event)
            await aio.ensure_experiment(p.experiment_uuid, p.process_name, p.process_src)
        elif kind == "lab.container.added":
            c = _parse(_ContainerAdded, event)
            here = await aio.get_cont_info_by_barcode(c.barcode)
            if here is not None and (here.current_device, here.current_pos) == (c.device, c.pos):
                return
            await aio.add_container(
                ContainerInfo(c.name or c.barcode, c.device, c.pos, c.barcode, lidded=c.lidded, filled=c.filled)
            )
        elif kind == "lab.container.moved":
            m = _parse(_ContainerMoved, event)
            finish = _utc(m.finish, event.timestamp)
            step = MoveStep(
                name=m.name or f"Move {m.barcode} to {m.target_device}",
                main_device=DeviceInfo(m.main_device),
                data=m.data,
                start=_utc(m.start, finish) if m.start else finish,
                finish=finish if m.start else None,
                status="completed" if m.start else "moved",
                uuid=m.step_id or event.id,
                origin_device=DeviceInfo(m.source_device),
                target_device=DeviceInfo(m.target_device),
                origin_pos=m.source_pos,
                destination_pos=m.target_pos,
            )
            await aio.record_move(step, m.barcode, m.experiment_uuid)
        elif kind == "lab.container.removed":
            b = _parse(_Barcode, event)
            if await aio.get_cont_info_by_barcode(b.barcode) is not None:
                await aio.remove_container(b.barcode)
        elif kind in ("lab.step.started", "lab.step.finished"):
            await self._step(event)
        else:
            raise LabEventError(
                f"{kind} {event.id}: not a lab status DB event; known: lab.experiment.started, lab.container.added/"
                "moved/removed, lab.step.started/finished"
            )

    async def _step(self, event: Event) -> None:
        aio = self.db.aio
        s = _parse(_Step, event)
        finished = event.type == "lab.step.finished"
        known = await aio.get_step(s.step_id)
        name = s.name or (known.name if known else None)
        device = s.device or (known.device if known else None)
        if not name or not device:
            raise LabEventError(
                f"{event.type} {event.id}: payload key 'name'/'device' missing and no lab.step.started "
                f"was recorded for step_id {s.step_id!r}"
            )
        if finished:
            start = s.start or (known.start if known else None)
            if start is None:
                raise LabEventError(
                    f"{event.type} {event.id}: payload key 'start' missing and no lab.step.started was recorded "
                    f"for step_id {s.step_id!r}"
                )
            finish: datetime | None = _utc(s.finish, event.timestamp)
        else:
            start, finish = s.start or event.timestamp, None
        barcode = s.barcode or (known.barcode if known else None)
        step = ProcessStep(
            name=name,
            main_device=DeviceInfo(device),
            data=s.data or (known.data if known else {}),
            start=_utc(start, event.timestamp),
            finish=finish,
            status=s.status or ("completed" if finished else "running"),
            uuid=s.step_id,
        )
        container = None
        if barcode:
            container = await aio.get_cont_info_by_barcode(barcode) or ContainerInfo(barcode, "", 0, barcode)
        await aio.safe_step_to_db(step, container, s.experiment_uuid or (known.experiment_uuid if known else None))


class OrchestratorSettings(BaseModel):
    """Options of ``[[handlers]] kind = "lab-orchestrator"``.

    Attributes:
        db: status DB URL keeping the order queue (default ``PYWATS_LAB_DB``, else ``sqlite:///pywats-lab.db``);
            ``memory`` keeps it in memory only (lost on restart).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    db: str | None = None


class OrchestratorHandler(BaseHandler):
    """Runs a ``WorkflowOrchestrator`` on the bus (``[[handlers]] kind = "lab-orchestrator"``).

    Args:
        db: see ``OrchestratorSettings``.
        orchestrator: an orchestrator to use instead.

    Raises:
        LabConfigError: invalid options.
    """

    name = "lab-orchestrator"
    event_types: ClassVar[tuple[str, ...]] = ("asset.state_changed", "lab.order.requested", "lab.order.completed")
    settings_model = OrchestratorSettings

    def __init__(self, db: str | None = None, *, orchestrator: WorkflowOrchestrator | None = None) -> None:
        super().__init__()
        self._db_url = db
        self._status_db: StatusDBImplementation | None = None
        self.orchestrator = orchestrator
        self._bus: EventBus | None = None
        self._opening = threading.Lock()

    @classmethod
    def from_config(cls, name: str, options: dict[str, Any]) -> Self:
        """Build from a ``[[handlers]]`` table. Raises ``LabConfigError``."""
        s: OrchestratorSettings = _settings(OrchestratorSettings, name, options)
        handler = cls(s.db)
        handler.name = name
        return handler

    def attach_bus(self, bus: EventBus) -> None:
        """Told the bus at registration: decisions are published on it."""
        self._bus = bus

    def matches(self, event: Event) -> bool:
        return event.type != "asset.state_changed" or event.payload.get("asset_kind") == "lab_module"

    def _ensure(self) -> WorkflowOrchestrator:
        with self._opening:  # first deliveries may race on_start: one orchestrator, one queue
            if self.orchestrator is None:
                if self._db_url == "memory":
                    self.orchestrator = WorkflowOrchestrator()
                else:
                    self._status_db = StatusDBImplementation(self._db_url)
                    self.orchestrator = WorkflowOrchestrator(self._status_db)
            return self.orchestrator

    async def on_start(self) -> None:
        # Loading the durable queue reads the DB: off the loop.
        await asyncio.to_thread(self._ensure)

    async def on_stop(self) -> None:
        if self._status_db is not None:
            await self._status_db.aclose()
            self._status_db = None
            self.orchestrator = None

    async def handle(self, event: Event) -> None:
        orchestrator = await asyncio.to_thread(self._ensure)
        try:
            if event.type == "asset.state_changed":
                update = ModuleStatusUpdateEvent.from_state_payload(event.payload)
                await asyncio.to_thread(orchestrator.process_status_update, update)
            elif event.type == "lab.order.requested":
                o = _parse(_OrderRequested, event)
                await asyncio.to_thread(orchestrator.assign_order_to_module, o.order_id, o.required_capabilities)
            elif event.type == "lab.order.completed":
                if event.source == orchestrator.source:
                    return  # our own announcement coming back
                c = _parse(_OrderId, event)
                await asyncio.to_thread(orchestrator.complete_order, c.order_id)
        except InvalidLabMessageError as exc:
            raise LabEventError(f"{event.type} {event.id}: {exc}") from exc
        decisions = orchestrator.drain_events()
        if decisions and self._bus is not None:
            seed = f"{event.id}:{self.name}"
            out = [d.model_copy(update={"id": derive_event_id(seed, i), "causation_id": event.id})
                   for i, d in enumerate(decisions)]
            await self._bus.submit(out, transport=self.name)
