"""Biosero lab events: the event message, ``ModuleStatus`` and ``ModuleStatusUpdateEvent``, and the decoder.

Names follow the Biosero data model (``biosero.datamodels.events``): code written against it runs with the
import prefix changed to ``pywats_lab.events``. ``ModuleStatus.Ready/Busy/Error/Offline`` (0..3),
``ModuleStatusUpdateEvent(Id=..., ModuleIdentifier=..., ModuleName=..., Status=...)`` with its PascalCase
attributes, ``to_dict()`` (keeps ``None``), the ``ClassName`` default and the string form; ``EventMessage``
with ``topic``, ``subjects``, ``data``, ``tags``, ``created_date_utc``, ``source_trace_ids``,
``organization_id``, ``user_id``.

A lab scheduler or instrument driver publishes an *event message* to an event service
(``POST /api/v2.0/EventService``)::

    {"topic": "ModuleStatusUpdate", "subjects": ["liquid-handler-2"], "data": {...}, "tags": ["lab"],
     "createdDateUtc": "2024-05-02T08:15:00Z", "sourceTraceIds": ["run-42"],
     "organizationId": "site-a", "userId": "scheduler"}

Keys are accepted in camelCase (as above), PascalCase (``Topic``) and snake_case (``created_date_utc``);
``data`` may be a JSON object or a string holding JSON (some clients serialize it twice). The message
becomes one ``Event``: ``topic`` is its type, ``subjects`` and ``tags`` carry over, ``sourceTraceIds[0]``
is its ``correlation_id`` and ``data`` its payload.

A ``ModuleStatusUpdateEvent`` (a module reporting Ready / Busy / Error / Offline), inside a message's
``data`` or posted on its own, becomes an ``asset.state_changed`` event shaped like the ones the CFX
adapters make from ``StationStateChanged``, so the status board treats lab modules and line stations
alike. The decoder ``lab-event`` (registered by entry point) takes the bytes of one message, a list of
messages, or a bare module status update; the HTTP EventService intake uses it too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from pywats_events import jsonsafe
from pywats_events.codec import DecodeContext
from pywats_events.event import Event, EventType, Severity, derive_event_id

from .errors import InvalidLabMessageError

__all__ = [
    "MODULE_STATUS_CLASS_NAME",
    "EventMessage",
    "LabEventMessage",
    "ModuleStatus",
    "ModuleStatusUpdateEvent",
    "decode_lab_event",
    "event_to_lab_message",
    "is_module_status_topic",
    "lab_message_to_event",
    "module_status_to_event",
    "monitor_status_changes",
    "parse_lab_body",
    "remove_none_values",
]

#: ``ClassName`` of a ``ModuleStatusUpdateEvent`` when the sender gives none (the Biosero data model's default).
MODULE_STATUS_CLASS_NAME = "Biosero.DataModels.Events.ModuleStatusUpdateEvent"

#: SEMI E10 category each module status maps to, so lab modules and CFX stations share one vocabulary:
#: Ready waits for work (standby), Busy works (productive), Error is unscheduled downtime, Offline is
#: non-scheduled time.
STATUS_CATEGORY = {0: "SBY", 1: "PRD", 2: "USD", 3: "NST"}

_MODULE_STATUS_TOPICS = frozenset({"modulestatusupdate", "modulestatusupdateevent", "modulestatus"})


class ModuleStatus(IntEnum):
    """Status of a lab module (Biosero ``ModuleStatus``); serialized as its integer.

    ``Ready`` (0) takes new orders, ``Busy`` (1) executes orders (more only with
    ``AllowSimultaneousExecution``), ``Error`` (2) needs attention and takes none, ``Offline`` (3) is
    powered down, in maintenance or unreachable. ``name`` is the document's spelling (``Ready``); the
    upper-case names (``READY``) are aliases of the same members.
    """

    Ready = 0
    Busy = 1
    Error = 2
    Offline = 3
    READY = 0
    BUSY = 1
    ERROR = 2
    OFFLINE = 3

    @property
    def label(self) -> str:
        """``Ready``, ``Busy``, ``Error`` or ``Offline``."""
        return self.name

    def __str__(self) -> str:
        # IntEnum prints as its integer since Python 3.11; the Biosero string form names the member.
        return f"ModuleStatus.{self.name}"


def _aliases(pascal: str) -> AliasChoices:
    camel = pascal[0].lower() + pascal[1:]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return AliasChoices(pascal, camel, snake)


def _names(value: Any) -> Any:
    # Order and instrument ids are strings; scripts often send numbers, which lose nothing as text.
    if value is None:
        return []
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


class ModuleStatusUpdateEvent(BaseModel):
    """A lab module reporting its status (the lab event-service ``ModuleStatusUpdateEvent``).

    JSON keys are PascalCase (``ModuleIdentifier``); camelCase and snake_case are accepted on input.
    ``Status`` is written as its integer (0 Ready, 1 Busy, 2 Error, 3 Offline) and read from the integer
    or the name (any case).

    Attributes:
        id: ``Id``, the update's id, > 0.
        module_identifier: ``ModuleIdentifier``, the module's unique id (non-empty).
        module_name: ``ModuleName``, display name (non-empty).
        status: ``Status``.
        status_details: ``StatusDetails``, free text; required when the status is Error.
        image: ``Image``, picture of the module (URL or base64), optional.
        orders_being_processed: ``OrdersBeingProcessed``, order ids; at least one when Busy.
        allow_simultaneous_execution: ``AllowSimultaneousExecution``, whether it takes several orders.
        instrument_identifiers: ``InstrumentIdentifiers``, instruments the module contains.
        capabilities: ``Capabilities``, what it can do (``dispense``, ``read-absorbance``).
        class_name: ``ClassName``, the driver class.

    Raises:
        pydantic.ValidationError: on construction or ``model_validate`` with an invalid field (the error
            names it: ``ModuleIdentifier``, ``OrdersBeingProcessed``...).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    id: int = Field(gt=0, validation_alias=_aliases("Id"), serialization_alias="Id")
    module_identifier: str = Field(
        min_length=1,
        max_length=200,
        validation_alias=_aliases("ModuleIdentifier"),
        serialization_alias="ModuleIdentifier",
        # stripped before the length check (str.strip), so at least one other character: said in the schema
        json_schema_extra={"pattern": r"[^\s\x1c-\x1f]"},
    )
    module_name: str = Field(
        min_length=1,
        max_length=500,
        validation_alias=_aliases("ModuleName"),
        serialization_alias="ModuleName",
        # stripped before the length check (str.strip), so at least one other character: said in the schema
        json_schema_extra={"pattern": r"[^\s\x1c-\x1f]"},
    )
    status: ModuleStatus = Field(validation_alias=_aliases("Status"), serialization_alias="Status")
    status_details: str | None = Field(
        default=None,
        validate_default=True,
        validation_alias=_aliases("StatusDetails"),
        serialization_alias="StatusDetails",
    )
    image: str | None = Field(default=None, validation_alias=_aliases("Image"), serialization_alias="Image")
    orders_being_processed: list[str] | None = Field(
        default=None,
        validate_default=True,
        validation_alias=_aliases("OrdersBeingProcessed"),
        serialization_alias="OrdersBeingProcessed",
    )
    allow_simultaneous_execution: bool = Field(
        default=False,
        validation_alias=_aliases("AllowSimultaneousExecution"),
        serialization_alias="AllowSimultaneousExecution",
    )
    instrument_identifiers: list[str] | None = Field(
        default=None,
        validation_alias=_aliases("InstrumentIdentifiers"),
        serialization_alias="InstrumentIdentifiers",
    )
    capabilities: list[str] | None = Field(
        default=None, validation_alias=_aliases("Capabilities"), serialization_alias="Capabilities"
    )
    class_name: str = Field(
        default=MODULE_STATUS_CLASS_NAME, validation_alias=_aliases("ClassName"), serialization_alias="ClassName"
    )

    @field_validator("module_identifier", "module_name", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.isdecimal():
                return int(text)
            try:
                return ModuleStatus[text.upper()]
            except KeyError:
                raise ValueError(
                    f"{value!r} is not a module status; expected Ready, Busy, Error, Offline or 0..3"
                ) from None
        if isinstance(value, bool):
            raise ValueError("a boolean is not a module status; expected 0..3 or Ready/Busy/Error/Offline")
        return value

    @field_validator("status_details")
    @classmethod
    def _details_when_error(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("status") is ModuleStatus.ERROR and not (value and value.strip()):
            raise ValueError("StatusDetails must say what is wrong when Status is Error (2)")
        return value

    @field_validator("orders_being_processed", "instrument_identifiers", mode="before")
    @classmethod
    def _name_lists(cls, value: Any) -> Any:
        return None if value is None else _names(value)

    @field_validator("class_name", mode="before")
    @classmethod
    def _class_name(cls, value: Any) -> Any:
        return MODULE_STATUS_CLASS_NAME if value is None else value

    @field_validator("orders_being_processed")
    @classmethod
    def _orders_when_busy(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if info.data.get("status") is ModuleStatus.BUSY and not value:
            raise ValueError("OrdersBeingProcessed must list at least one order when Status is Busy (1)")
        return value

    # The Biosero data model's attribute names (``event.ModuleIdentifier``), read-only views of the fields.
    @property
    def Id(self) -> int:
        """``Id``: the update's id."""
        return self.id

    @property
    def ModuleIdentifier(self) -> str:
        """``ModuleIdentifier``: the module's unique id."""
        return self.module_identifier

    @property
    def ModuleName(self) -> str:
        """``ModuleName``: display name."""
        return self.module_name

    @property
    def Status(self) -> ModuleStatus:
        """``Status``."""
        return self.status

    @property
    def StatusDetails(self) -> str | None:
        """``StatusDetails``."""
        return self.status_details

    @property
    def Image(self) -> str | None:
        """``Image``."""
        return self.image

    @property
    def OrdersBeingProcessed(self) -> list[str] | None:
        """``OrdersBeingProcessed``."""
        return self.orders_being_processed

    @property
    def AllowSimultaneousExecution(self) -> bool:
        """``AllowSimultaneousExecution``."""
        return self.allow_simultaneous_execution

    @property
    def InstrumentIdentifiers(self) -> list[str] | None:
        """``InstrumentIdentifiers``."""
        return self.instrument_identifiers

    @property
    def Capabilities(self) -> list[str] | None:
        """``Capabilities``."""
        return self.capabilities

    @property
    def ClassName(self) -> str:
        """``ClassName`` (default ``Biosero.DataModels.Events.ModuleStatusUpdateEvent``)."""
        return self.class_name

    def to_dict(self) -> dict[str, Any]:
        """The Biosero ``to_dict()``: every field under its PascalCase key, ``Status`` as its integer, ``None``
        values kept (``{"Id": 12345, "ModuleIdentifier": ..., "Status": 1, "StatusDetails": None, ...}``)."""
        out = self.model_dump(mode="json", by_alias=True)
        out["Status"] = int(self.status)
        return out

    def to_wire_dict(self) -> dict[str, Any]:
        """The JSON form with PascalCase keys and ``Status`` as its integer; ``None`` values left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def __str__(self) -> str:
        fields = ", ".join(
            f"{key}={value if key != 'Status' else self.status}" for key, value in self.to_dict().items()
        )
        return f"ModuleStatusUpdateEvent({fields})"

    @classmethod
    def from_state_payload(cls, payload: dict[str, Any]) -> ModuleStatusUpdateEvent:
        """Rebuild the update from an ``asset.state_changed`` payload made by ``state_payload`` (what a
        handler downstream of the ``lab-event`` decoder receives).

        Raises:
            InvalidLabMessageError: the payload is not a lab module's (``asset_kind`` is not ``lab_module``)
                or a field is invalid (``field`` names the payload key).
        """
        if payload.get("asset_kind") != "lab_module":
            raise InvalidLabMessageError(
                f"asset_kind is {payload.get('asset_kind')!r}, not 'lab_module': not a module status update",
                "asset_kind",
            )
        data = {
            "Id": payload.get("module_status_id"),
            "ModuleIdentifier": payload.get("asset_id"),
            "ModuleName": payload.get("asset_name"),
            "Status": payload.get("new_state"),
            "StatusDetails": payload.get("status_details"),
            "Image": payload.get("image"),
            "OrdersBeingProcessed": payload.get("orders_being_processed") or None,
            "AllowSimultaneousExecution": bool(payload.get("allow_simultaneous_execution")),
            "InstrumentIdentifiers": payload.get("instrument_identifiers") or None,
            "Capabilities": payload.get("capabilities") or None,
            "ClassName": payload.get("class_name"),
        }
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _first_error(exc, "payload", cls) from None

    def state_payload(self) -> dict[str, Any]:
        """The ``asset.state_changed`` payload: the keys the CFX adapters use (``asset_id``, ``new_state``,
        ``new_state_name``, ``new_category``) plus the module's own (orders, capabilities...)."""
        payload: dict[str, Any] = {
            "asset_id": self.module_identifier,
            "asset_name": self.module_name,
            "asset_kind": "lab_module",
            "new_state": int(self.status),
            "new_state_name": self.status.label,
            "new_category": STATUS_CATEGORY[int(self.status)],
            "status_details": self.status_details,
            "orders_being_processed": list(self.orders_being_processed or ()),
            "allow_simultaneous_execution": self.allow_simultaneous_execution,
            "instrument_identifiers": list(self.instrument_identifiers or ()),
            "capabilities": list(self.capabilities or ()),
            "class_name": self.class_name,
            "image": self.image,
            "module_status_id": self.id,
        }
        if self.model_extra:
            payload["extra"] = dict(self.model_extra)
        return payload


class LabEventMessage(BaseModel):
    """The event message lab event clients send (``POST /api/v2.0/EventService``); Biosero ``EventMessage``.

    Built as the document does (``EventMessage(topic=..., subjects=[...], data={...}, tags=[...])``);
    attributes may be set afterwards (``event.created_date_utc = server_time``). A message without
    ``created_date_utc`` is stamped by the receiving service.

    Attributes:
        topic: what happened (``ModuleStatusUpdate``, ``Orders.Completed``); becomes the event type, so no
            whitespace; 1..200 characters.
        subjects: what it is about (order ids, module ids).
        data: the body: a JSON object, a string holding JSON, or any JSON value.
        tags: free labels.
        created_date_utc: ``createdDateUtc``, when it happened (naive times are taken as UTC).
        source_trace_ids: ``sourceTraceIds``, ids of the messages that caused it; the first becomes the
            event's ``correlation_id``.
        organization_id: ``organizationId``. user_id: ``userId``.

    Keys not listed are kept (``model_extra``) and copied into the event's headers as ``lab.<key>``.

    Raises:
        pydantic.ValidationError: a field is missing or invalid.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    # The pattern is the validator's rule (str.isspace: \s plus U+001C..U+001F), said in the schema so the
    # OpenAPI document tells clients.
    topic: str = Field(
        json_schema_extra={"pattern": r"^[^.\s\x1c-\x1f][^\s\x1c-\x1f]*$"},
        min_length=1, max_length=200, validation_alias=_aliases("Topic"), serialization_alias="topic"
    )
    subjects: list[str] = Field(
        default_factory=list, validation_alias=_aliases("Subjects"), serialization_alias="subjects"
    )
    data: Any = Field(default=None, validation_alias=_aliases("Data"), serialization_alias="data")
    tags: list[str] = Field(
        default_factory=list, validation_alias=_aliases("Tags"), serialization_alias="tags"
    )
    created_date_utc: datetime | None = Field(
        default=None, validation_alias=_aliases("CreatedDateUtc"), serialization_alias="createdDateUtc"
    )
    source_trace_ids: list[str] = Field(
        default_factory=list,
        validation_alias=_aliases("SourceTraceIds"),
        serialization_alias="sourceTraceIds",
    )
    organization_id: str | None = Field(
        default=None, validation_alias=_aliases("OrganizationId"), serialization_alias="organizationId"
    )
    user_id: str | None = Field(
        default=None, validation_alias=_aliases("UserId"), serialization_alias="userId"
    )

    @field_validator("topic")
    @classmethod
    def _topic_is_a_type(cls, value: str) -> str:
        if any(c.isspace() for c in value) or value.startswith("."):
            raise ValueError("topic becomes the event type: no whitespace, and it must not start with '.'")
        return value

    @field_validator("subjects", "tags", "source_trace_ids", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _names(value)

    def data_object(self) -> dict[str, Any]:
        """``data`` as a JSON object: an object as is, a string holding a JSON object parsed, ``None`` as
        ``{}``, any other value wrapped as ``{"value": data}``."""
        data = self.data
        if isinstance(data, str):
            try:
                parsed = jsonsafe.loads(data)
            except ValueError:
                return {"value": data}
            data = parsed
        if data is None:
            return {}
        if isinstance(data, dict):
            return data
        return {"value": data}

    def to_dict(self) -> dict[str, Any]:
        """The camelCase JSON form with ``None`` values kept (``EventClient`` removes them before posting)."""
        out = self.model_dump(mode="json", by_alias=True)
        if self.created_date_utc is not None:
            out["createdDateUtc"] = _utc_text(self.created_date_utc)
        return out

    def to_wire_dict(self) -> dict[str, Any]:
        """The camelCase JSON form, ``None`` values left out (what ``HttpForwarder`` posts)."""
        out = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if self.created_date_utc is not None:
            out["createdDateUtc"] = _utc_text(self.created_date_utc)
        return out


#: The Biosero name of the lab event message.
EventMessage = LabEventMessage


def remove_none_values(d: Any) -> Any:
    """``d`` without ``None`` values, at every level of nested dicts and lists (Biosero
    ``EventClient.remove_none_values``): ``{"name": "s", "value": None}`` -> ``{"name": "s"}``."""
    if isinstance(d, dict):
        return {k: remove_none_values(v) for k, v in d.items() if v is not None}
    if isinstance(d, list | tuple):
        return [remove_none_values(v) for v in d]
    return d


def monitor_status_changes(
    previous_status: ModuleStatus | None, current_event: ModuleStatusUpdateEvent
) -> EventMessage | None:
    """The document's status-change monitor: the ``module.status.changed`` message when ``current_event``'s
    status differs from ``previous_status``, else ``None``.

    The message's ``data`` carries ``previous_status`` and ``current_status`` (names: ``Ready``...) and
    ``module_details`` (``to_dict()``); its tags are ``status_change``, ``module_monitoring`` and the
    transition: ``error`` (to Error), ``offline`` (to Offline), ``recovered`` (Error to Ready).
    A first update (``previous_status`` None) is a change from unknown: ``previous_status`` is ``None``.
    """
    current = current_event.status
    if previous_status is not None and ModuleStatus(previous_status) is current:
        return None
    tags = ["status_change", "module_monitoring"]
    if current is ModuleStatus.Error:
        tags.append("error")
    elif current is ModuleStatus.Offline:
        tags.append("offline")
    elif previous_status is not None and ModuleStatus(previous_status) is ModuleStatus.Error:
        if current is ModuleStatus.Ready:
            tags.append("recovered")
    return EventMessage(
        topic="module.status.changed",
        subjects=[current_event.module_identifier],
        data={
            "previous_status": ModuleStatus(previous_status).name if previous_status is not None else None,
            "current_status": current.name,
            "module_details": current_event.to_dict(),
        },
        tags=tags,
    )


def _utc_text(stamp: datetime) -> str:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _first_error(exc: ValidationError, prefix: str, model: type[BaseModel]) -> InvalidLabMessageError:
    err = exc.errors()[0]
    parts = [str(p) for p in err["loc"]]
    if parts:
        # A missing or defaulted field is reported by its Python name; users know the wire key.
        info = model.model_fields.get(parts[0])
        if info is not None and info.serialization_alias:
            parts[0] = info.serialization_alias
    loc = ".".join(parts)
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err["msg"].removeprefix("Value error, ")
    return InvalidLabMessageError(f"field {field!r}: {msg}", field)


def is_module_status_topic(topic: str) -> bool:
    """True when ``topic`` names a module status update (``ModuleStatusUpdate``,
    ``Lab.Events.ModuleStatusUpdateEvent``...; the last dotted segment decides, any case)."""
    return topic.rsplit(".", 1)[-1].lower() in _MODULE_STATUS_TOPICS


def _looks_module_status(data: dict[str, Any]) -> bool:
    keys = {k.lower().replace("_", "") for k in data}
    return "moduleidentifier" in keys and "status" in keys


def module_status_to_event(
    update: ModuleStatusUpdateEvent,
    *,
    event_id: str | None = None,
    timestamp: datetime | None = None,
    correlation_id: str | None = None,
    subjects: Sequence[str] = (),
    tags: Sequence[str] = (),
    headers: dict[str, Any] | None = None,
) -> Event:
    """Turn a module status update into an ``asset.state_changed`` event.

    The source is the module identifier; severity is ``error`` for Error, ``warning`` for Offline, else
    ``info``; subjects default to ``[ModuleIdentifier]``.
    """
    severity = {ModuleStatus.ERROR: Severity.ERROR, ModuleStatus.OFFLINE: Severity.WARNING}.get(
        update.status, Severity.INFO
    )
    return Event(
        id=event_id or str(uuid.uuid4()),
        type=EventType.ASSET_STATE_CHANGED,
        source=update.module_identifier,
        timestamp=timestamp or datetime.now(UTC),
        payload=update.state_payload(),
        correlation_id=correlation_id,
        severity=severity,
        subjects=tuple(subjects) or (update.module_identifier,),
        tags=tuple(tags),
        headers=headers or {},
    )


def lab_message_to_event(
    message: LabEventMessage,
    *,
    source: str = "lab",
    event_id: str | None = None,
    headers: dict[str, Any] | None = None,
) -> Event:
    """Turn a lab event message into one event (see the module docstring for the mapping).

    A message whose topic names a module status update, or whose ``data`` has ``ModuleIdentifier`` and
    ``Status``, becomes ``asset.state_changed`` (``module_status_to_event``); the topic is kept in
    ``headers["lab.topic"]``.

    Args:
        message: the validated message.
        source: the event source for ordinary messages (module updates use the module identifier).
        event_id: the event id (default a new UUID); pass a derived id to make retries idempotent.
        headers: transport metadata to add.

    Raises:
        InvalidLabMessageError: ``data`` holds an invalid module status update (``field`` is
            ``data.<Key>``).
    """
    data = message.data_object()
    meta: dict[str, Any] = dict(headers or {})
    meta["lab.topic"] = message.topic
    if message.source_trace_ids:
        meta["lab.source_trace_ids"] = list(message.source_trace_ids)
    if message.organization_id is not None:
        meta["lab.organization_id"] = message.organization_id
    if message.user_id is not None:
        meta["lab.user_id"] = message.user_id
    for key, value in (message.model_extra or {}).items():
        meta[f"lab.{key}"] = value
    correlation = message.source_trace_ids[0] if message.source_trace_ids else None
    stamp = message.created_date_utc or datetime.now(UTC)
    if is_module_status_topic(message.topic) or _looks_module_status(data):
        try:
            update = ModuleStatusUpdateEvent.model_validate(data)
        except ValidationError as exc:
            raise _first_error(exc, "data", ModuleStatusUpdateEvent) from None
        return module_status_to_event(
            update,
            event_id=event_id,
            timestamp=stamp,
            correlation_id=correlation,
            subjects=message.subjects,
            tags=message.tags,
            headers=meta,
        )
    return Event(
        id=event_id or str(uuid.uuid4()),
        type=message.topic,
        source=source,
        timestamp=stamp,
        payload=data,
        correlation_id=correlation,
        subjects=tuple(message.subjects),
        tags=tuple(message.tags),
        headers=meta,
    )


def parse_lab_body(
    data: Any, *, source: str = "lab", id_seed: str | None = None, headers: dict[str, Any] | None = None
) -> list[Event]:
    """Turn parsed JSON into events: a lab event message, a list of them, or a bare module status update
    (an object with ``ModuleIdentifier`` and no ``topic``).

    Args:
        data: the parsed JSON body.
        source: source of ordinary messages.
        id_seed: when given (an ``Idempotency-Key``), event ``i`` gets the id ``derive_event_id(seed, i)``
            so a resent request produces the same ids.
        headers: transport metadata for every event.

    Raises:
        InvalidLabMessageError: not an object or list of objects, or a field is invalid (``field`` names
            it, prefixed with ``[i]`` for list items).
    """
    items = data if isinstance(data, list) else [data]
    many = isinstance(data, list)
    events: list[Event] = []
    for i, item in enumerate(items):
        prefix = f"[{i}]" if many else ""
        eid = derive_event_id(id_seed, i) if id_seed else None
        if not isinstance(item, dict):
            raise InvalidLabMessageError(
                f"expected a JSON object (lab event message), got {type(item).__name__}", prefix
            )
        if not any(k.lower() == "topic" for k in item) and _looks_module_status(item):
            try:
                update = ModuleStatusUpdateEvent.model_validate(item)
            except ValidationError as exc:
                raise _first_error(exc, prefix, ModuleStatusUpdateEvent) from None
            events.append(module_status_to_event(update, event_id=eid, headers=dict(headers or {})))
            continue
        try:
            message = LabEventMessage.model_validate(item)
        except ValidationError as exc:
            raise _first_error(exc, prefix, LabEventMessage) from None
        try:
            events.append(lab_message_to_event(message, source=source, event_id=eid, headers=headers))
        except InvalidLabMessageError as exc:
            if prefix:
                exc.field = f"{prefix}.{exc.field}"
            raise
    return events


def decode_lab_event(body: bytes, ctx: DecodeContext) -> list[Event]:
    """Decoder ``lab-event``: UTF-8 JSON of one lab event message, a list, or a bare module update.

    Raises:
        InvalidLabMessageError: invalid UTF-8 or JSON, or an invalid message (names the field).
    """
    try:
        data = jsonsafe.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise InvalidLabMessageError(f"invalid UTF-8 at byte {exc.start}", "", ctx.origin) from None
    except json.JSONDecodeError as exc:
        raise InvalidLabMessageError(
            f"invalid JSON: {exc.msg} at line {exc.lineno}", "", ctx.origin
        ) from None
    except RecursionError:
        raise InvalidLabMessageError("JSON nested too deeply", "", ctx.origin) from None
    return parse_lab_body(data, source=ctx.source or "lab", headers=dict(ctx.headers))


def event_to_lab_message(event: Event) -> dict[str, Any]:
    """The lab event message for ``event`` (camelCase, ``None`` values removed): ``topic`` is the type,
    ``data`` the payload, ``sourceTraceIds`` the correlation and causation ids; organization and user are
    taken from ``headers["lab.organization_id"]`` / ``["lab.user_id"]`` when present."""
    traces = [i for i in (event.correlation_id, event.causation_id) if i]
    message = LabEventMessage(
        topic=event.type,
        subjects=list(event.subjects),
        data=remove_none_values(event.payload),
        tags=list(event.tags),
        created_date_utc=event.timestamp,
        source_trace_ids=traces,
        organization_id=event.headers.get("lab.organization_id"),
        user_id=event.headers.get("lab.user_id"),
    )
    return message.to_wire_dict()
