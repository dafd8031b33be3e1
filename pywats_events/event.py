"""The normalized event: the one shape every transport produces and every handler receives."""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, computed_field, field_validator

__all__ = ["Event", "EventType", "Severity", "derive_event_id", "severity_rank"]

#: Namespace for ids derived from a source id plus an item index (RFC 4122 version 5 UUIDs).
EVENT_ID_NAMESPACE = uuid.UUID("7d0f1c52-6f44-4d8e-9d0b-3a1f8f6c2e11")


class Severity(StrEnum):
    """How much attention an event needs, lowest first: ``info`` < ``warning`` < ``error`` < ``critical``."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Position in the order above (0 for ``info``); used by minimum-severity filters."""
        return _SEVERITY_RANK[self.value]


_SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


def severity_rank(value: str | Severity) -> int:
    """Return the rank (0..3) of a severity given as a member or its string value.

    Raises:
        ValueError: ``value`` is not one of ``info``, ``warning``, ``error``, ``critical``.
    """
    try:
        return _SEVERITY_RANK[str(value)]
    except KeyError:
        raise ValueError(f"unknown severity {value!r}; expected one of {list(_SEVERITY_RANK)}") from None


class EventType(StrEnum):
    """The event types the project knows. Any other dotted string is a valid ``Event.type`` too."""

    TEST_RESULT = "test.result"
    INSPECTION_RESULT = "inspection.result"
    ASSET_FAULT = "asset.fault"
    ASSET_FAULT_CLEARED = "asset.fault_cleared"
    ASSET_FAULT_ACKNOWLEDGED = "asset.fault_acknowledged"
    ASSET_STATE_CHANGED = "asset.state_changed"
    MATERIAL_INSTALLED = "material.installed"
    MATERIAL_LOADED = "material.loaded"
    PRODUCTION_WORK_STARTED = "production.work_started"
    PRODUCTION_WORK_COMPLETED = "production.work_completed"
    PRODUCTION_UNIT_ARRIVED = "production.unit_arrived"
    PRODUCTION_UNIT_DEPARTED = "production.unit_departed"
    PRODUCTION_UNIT_DISQUALIFIED = "production.unit_disqualified"
    SYSTEM_ENDPOINT_CONNECTED = "system.endpoint_connected"
    SYSTEM_ENDPOINT_SHUTTING_DOWN = "system.endpoint_shutting_down"
    SYSTEM_HEARTBEAT = "system.heartbeat"
    SYSTEM_TRANSPORT_CONNECTED = "system.transport_connected"
    SYSTEM_TRANSPORT_DISCONNECTED = "system.transport_disconnected"
    SYSTEM_TRANSPORT_ERROR = "system.transport_error"
    SYSTEM_DEAD_LETTER = "system.dead_letter"
    SYSTEM_HANDLER_ERROR = "system.handler_error"
    TEST_STARTED = "test.started"
    ASSET_MAINTENANCE = "asset.maintenance"
    MATERIAL_CONSUMED = "material.consumed"
    # The names of the pyWATS event architecture document (seed 004), same values as above.
    WORK_STARTED = "production.work_started"
    WORK_COMPLETED = "production.work_completed"
    UNIT_DISQUALIFIED = "production.unit_disqualified"
    TRANSPORT_CONNECTED = "system.transport_connected"
    HANDLER_ERROR = "system.handler_error"
    EVENT_DEAD_LETTER = "system.dead_letter"


def derive_event_id(source_id: str, index: int) -> str:
    """Derive a stable event id for item ``index`` (0-based) of a message whose own id is ``source_id``.

    The same message redelivered gives the same ids, so idempotency records still match. The result is
    the RFC 4122 version 5 UUID of ``f"{source_id}#{index}"`` in ``EVENT_ID_NAMESPACE``, as a string
    (computed without building a ``uuid.UUID``: it is on the decode hot path).
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{source_id}#{index}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes


#: 62 random bits per generated id. The random module's shared generator (seeded from the OS, reseeded in
#: a forked child) is enough: ids must be unique, not unpredictable, and ``os.urandom`` per id costs a
#: system call on the hot path.
_random_bits = random.getrandbits
_time_ns = time.time_ns


def _new_id() -> str:
    """A time-ordered UUID version 7 (RFC 9562 section 5.7) as a string: 48 bits of Unix milliseconds,
    12 bits of sub-millisecond time (section 6.2, method 3), 62 random bits. Ids generated later sort
    later, so a database index on them grows at its right edge instead of touching pages all over (the
    store's intake stays flat as the event table grows), and building one is cheaper than ``uuid4``."""
    ns = _time_ns()
    ms, frac = divmod(ns, 1_000_000)
    h = f"{ms & 0xFFFFFFFFFFFF:012x}7{frac * 4096 // 1_000_000:03x}{0x8000000000000000 | _random_bits(62):016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _now() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    """One normalized, immutable event.

    Attributes:
        id: unique id (a UUID string; a generated one is a time-ordered UUID version 7); taken from the
            source's own id when it has one (CFX ``UniqueID``), so a redelivered copy keeps its id. At most
            200 characters.
        type: dotted type such as ``test.result`` (see ``EventType``); any non-empty dotted string is valid.
            ``event_type`` is accepted for it (the name in the pyWATS event architecture document).
        source: who produced it (a CFX handle, a station name); ``unknown`` when nobody says.
        timestamp: when it happened, timezone-aware UTC (an aware input is converted to UTC; a naive one
            is taken to be UTC already).
        payload: the type-specific body, JSON-serializable.
        correlation_id: ties events of one transaction together (CFX ``TransactionID``).
        causation_id: id of the event that caused this one.
        severity: ``info``, ``warning``, ``error`` or ``critical``.
        subjects: what the event is about (unit ids, station ids), in order.
        tags: free labels.
        headers: transport metadata (routing key, topic, file name); not part of the domain data.
        category: derived, the first segment of ``type`` (``test`` for ``test.result``).

    Raises:
        pydantic.ValidationError: on construction with invalid fields (empty type, unknown severity,
            unknown key, a timestamp that is not a date-time).
    """

    # ser_json_inf_nan: model_dump_json writes non-finite floats as "NaN"/"Infinity"/"-Infinity"
    # (pywats_events.jsonsafe: the one rule every emitter follows), not as null.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="strings")

    id: str = Field(default_factory=_new_id, min_length=1, max_length=200)
    type: str = Field(
        min_length=1, max_length=200, pattern=r"^[^.\s][^\s]*$", validation_alias=AliasChoices("type", "event_type")
    )
    source: str = Field(default="unknown", min_length=1, max_length=500)
    timestamp: datetime = Field(default_factory=_now)
    payload: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = None
    causation_id: str | None = None
    severity: Severity = Severity.INFO
    subjects: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    headers: dict[str, Any] = Field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """``type`` under the name the pyWATS event architecture document uses (``Event(event_type=...)``
        is accepted on construction too)."""
        return self.type

    @computed_field  # type: ignore[prop-decorator]
    @property
    def category(self) -> str:
        """The first dotted segment of ``type``."""
        return self.type.partition(".")[0]

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.utcoffset():
            return value.astimezone(UTC)
        return value

    @classmethod
    def trusted(
        cls,
        *,
        type: str,
        source: str = "unknown",
        id: str | None = None,
        timestamp: datetime | None = None,
        payload: dict[str, Any] | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        severity: Severity = Severity.INFO,
        subjects: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
        headers: dict[str, Any] | None = None,
    ) -> Event:
        """Build an event from values that are already valid, without running validation (about 4x
        cheaper than ``Event(...)``). For adapters and stores whose input was validated on its own terms
        (a typed CFX message, a row this store wrote), on the decode hot path.

        The caller guarantees what validation would otherwise enforce: ``type`` a non-empty dotted
        string without whitespace (at most 200 characters), ``source`` and ``id`` non-empty (``id``
        ``None``: a new time-ordered UUID version 7), ``timestamp`` timezone-aware UTC (``None``: now),
        ``severity`` a
        ``Severity`` member, ``subjects`` and ``tags`` tuples of strings, ``payload`` and ``headers``
        JSON-serializable dicts (``None``: empty). Nothing is checked or copied: an event built from
        invalid values misbehaves later (in the store, in handlers) instead of failing here, so input
        from outside (bytes off the wire, user JSON) goes through ``Event(...)`` or ``from_json_dict``.
        The result is the same frozen model: equal to ``Event(...)`` built from the same values.
        """
        fields = {
            "id": id if id is not None else _new_id(),
            "type": type,
            "source": source,
            "timestamp": timestamp if timestamp is not None else _now(),
            "payload": payload if payload is not None else {},
            "correlation_id": correlation_id,
            "causation_id": causation_id,
            "severity": severity,
            "subjects": subjects,
            "tags": tags,
            "headers": headers if headers is not None else {},
        }
        event = cls.__new__(cls)
        # What BaseModel.model_construct sets, without its per-field default handling (20x slower).
        _set = object.__setattr__
        _set(event, "__dict__", fields)
        _set(event, "__pydantic_fields_set__", set(_ALL_FIELDS))
        _set(event, "__pydantic_extra__", None)
        _set(event, "__pydantic_private__", None)
        return event

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Event:
        """Build an event from its JSON form (as ``to_json_dict`` writes it); ``category`` is ignored.

        Raises:
            pydantic.ValidationError: a field is missing, unknown or invalid.
            TypeError: ``data`` is not a dict.
        """
        if not isinstance(data, dict):
            raise TypeError(f"event JSON must be an object, got {type(data).__name__}")
        if "category" in data:
            data = {k: v for k, v in data.items() if k != "category"}
        return cls.model_validate(data)

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON form: keys ``id``, ``type``, ``source``, ``timestamp`` (ISO 8601 UTC), ``category``,
        ``severity``, ``payload``, ``correlation_id``, ``causation_id``, ``subjects``, ``tags``, ``headers``.
        """
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
            "category": self.category,
            "severity": self.severity.value,
            "payload": self.payload,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "subjects": list(self.subjects),
            "tags": list(self.tags),
            "headers": self.headers,
        }

    def to_json(self) -> str:
        """The JSON form as a compact RFC 8259 string (non-JSON payload values are written with ``str``,
        non-finite floats as ``"NaN"``/``"Infinity"``/``"-Infinity"``: ``pywats_events.jsonsafe``)."""
        from .jsonsafe import dumps

        return dumps(self.to_json_dict())

    @property
    def severity_rank(self) -> int:
        """Rank of ``severity`` (0 = info .. 3 = critical)."""
        return _SEVERITY_RANK[self.severity.value]


_ALL_FIELDS = frozenset(Event.model_fields)
