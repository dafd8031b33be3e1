"""The IPC-CFX envelope: reading and writing the JSON wrapper around every CFX message.

An envelope is a JSON object with the members ``MessageName``, ``Version``, ``TimeStamp``, ``UniqueID``,
``Source``, ``Target``, ``RequestID`` and ``MessageBody`` (IPC-2591 / CFX SDK ``CFXEnvelope``). One AMQP
message carries one envelope or a JSON array of them, raw or gzip-compressed (the SDK's default). Member
names are matched case-insensitively, as the SDK reads them.
"""

from __future__ import annotations

import gzip as _gzip
import json
import re
import uuid
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from pywats_events import _json as _core_json
from pywats_events import jsonsafe
from pywats_events.codec import json_error_text, maybe_gunzip
from pywats_events.errors import DecodeError

from .errors import (
    CFXDecodeError,
    InvalidFieldError,
    InvalidGzipError,
    InvalidJSONError,
    InvalidUTF8Error,
    MissingFieldError,
    NestingTooDeepError,
    NotAnObjectError,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "CFXEnvelope",
    "encode_envelope",
    "envelope_to_bytes",
    "parse_envelopes",
]

#: Deepest nesting of objects and arrays accepted by default. The SDK's examples reach 9; 64 leaves room
#: for vendor extensions while keeping the parser far from Python's recursion limit.
DEFAULT_MAX_DEPTH = 64

# Lower-cased wire name -> model field name. The SDK matches names case-insensitively, so do we.
_ENVELOPE_FIELDS: dict[str, str] = {
    "messagename": "message_name",
    "version": "version",
    "timestamp": "time_stamp",
    "uniqueid": "unique_id",
    "source": "source",
    "target": "target",
    "requestid": "request_id",
    "messagebody": "message_body",
}

_WIRE_NAMES = frozenset(
    ("MessageName", "Version", "TimeStamp", "UniqueID", "Source", "Target", "RequestID", "MessageBody")
)
_WIRE_TO_FIELD = tuple((wire, _ENVELOPE_FIELDS[wire.lower()]) for wire in _WIRE_NAMES)
_CHECKED_NAMES: set[str] = set()

# A JSON string literal, matched possessively so that a 5 MB unterminated string costs one linear scan.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]++")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# Newtonsoft writes double.NaN and the infinities as these strings (FloatFormatHandling.String, its
# default); its reader also takes them as bare tokens, which Python's json hands to parse_constant.
# Non-finite numbers are kept as these strings so that everything emitted later is RFC 8259 JSON.
NON_FINITE_TEXT: dict[str, str] = {"NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity"}
_INF = float("inf")


def _finite_or_text(literal: str) -> float | str:
    # A literal beyond a double's range (1e999) becomes an infinity: keep it as Newtonsoft's text.
    # Real messages carry few fractional numbers, so this hook costs well under a microsecond each.
    value = float(literal)
    if value == _INF or value == -_INF:
        return "Infinity" if value > 0 else "-Infinity"
    return value


_DECODER = json.JSONDecoder(parse_constant=NON_FINITE_TEXT.__getitem__, parse_float=_finite_or_text)

# orjson (the ``orjson`` extra; ``PYWATS_EVENTS_NO_ORJSON=1`` turns it off as for the core) parses a
# message about three times faster and gives the same values for every document it accepts, except
# integers beyond 64 bits, which it silently turns into floats. So it only sees text without a run of
# 19 or more digits (the cheapest sure test: 19 digits can exceed -2**63); anything else, and anything
# orjson refuses (NaN/Infinity tokens, 1e999, lone surrogates), is parsed by _DECODER as without orjson,
# with the same values and the same error messages.
_orjson_loads: Any = None
_OrjsonDecodeError: type[Exception] = ValueError
if _core_json.ORJSON:
    import orjson

    _orjson_loads, _OrjsonDecodeError = orjson.loads, orjson.JSONDecodeError
# Digits -> "0", "{" and "[" -> "{" (multi-byte UTF-8 never holds ASCII bytes), anything else -> " ".
_MARKS = bytes(48 if 48 <= i <= 57 else 123 if i in (91, 123) else 32 for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19
# Event.type must be a non-empty dotted word; MessageName becomes the type of unknown messages.
_MESSAGE_NAME = re.compile(r"[^.\s]\S{0,199}")


class CFXEnvelope(BaseModel):
    """One IPC-CFX envelope (``CFX.CFXEnvelope``), member names as in the standard.

    Attributes:
        message_name: the full message name, e.g. ``CFX.Production.WorkStarted`` (wire ``MessageName``).
        version: CFX version of the sender (``"2.1"``; older endpoints send ``"1.x"``), or None.
        time_stamp: when the event happened, timezone-aware, converted to UTC. A naive wire value is taken
            as UTC; a missing or null one is replaced by the time of decoding.
        unique_id: the message's GUID (``UniqueID``), used to drop duplicates; None if the sender gave none.
        source: CFX handle of the sender (``Vendor.Model.Serial``), or None.
        target: CFX handle of the addressee, or None.
        request_id: request/response correlation id (``RequestID``), or None.
        message_body: the message itself (``MessageBody``), a JSON object as received.

    Validating a dict (``CFXEnvelope.model_validate(obj)``) accepts the wire names in any letter case.

    Raises:
        MissingFieldError: ``MessageName`` or ``MessageBody`` is absent or null.
        InvalidFieldError: a member has the wrong type or an unusable value.
        NotAnObjectError: the value validated is not a JSON object.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    message_name: str = Field(alias="MessageName", min_length=1, max_length=200)
    version: str | None = Field(default=None, alias="Version")
    time_stamp: AwareDatetime = Field(alias="TimeStamp")
    unique_id: str | None = Field(default=None, alias="UniqueID", max_length=200)
    source: str | None = Field(default=None, alias="Source", max_length=500)
    target: str | None = Field(default=None, alias="Target")
    request_id: str | None = Field(default=None, alias="RequestID")
    message_body: dict[str, Any] = Field(alias="MessageBody")

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        if isinstance(data, CFXEnvelope):
            return data
        return _envelope_fields(data, "")

    @classmethod
    def _trusted(cls, fields: dict[str, Any]) -> CFXEnvelope:
        """Build from values ``_envelope_fields`` has already checked, skipping a second validation.

        This is ``model_construct`` without its per-call bookkeeping (aliases, defaults, field-set
        computation), which costs more than the rest of envelope parsing on the decode hot path.
        """
        env = cls.__new__(cls)
        _set(env, "__dict__", fields)
        _set(env, "__pydantic_fields_set__", set(_FIELD_NAMES))
        _set(env, "__pydantic_extra__", None)
        _set(env, "__pydantic_private__", None)
        return env

    def to_wire_dict(self) -> dict[str, Any]:
        """The envelope as the CFX SDK writes it: PascalCase members, nulls written out, ISO 8601 time."""
        return {
            "MessageName": self.message_name,
            "Version": self.version,
            "TimeStamp": _format_time(self.time_stamp),
            "UniqueID": self.unique_id,
            "Source": self.source,
            "Target": self.target,
            "RequestID": self.request_id,
            "MessageBody": self.message_body,
        }


_set = object.__setattr__
_FIELD_NAMES = tuple(CFXEnvelope.model_fields)


def _kind(value: Any) -> str:
    """JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _optional_text(name: str, value: Any, where: str, max_len: int = 500) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidFieldError(name, f"expected a string or null, got {_kind(value)}", where)
    if len(value) > max_len:
        raise InvalidFieldError(name, f"longer than {max_len} characters", where)
    return value or None


def _parse_time(value: Any, where: str) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidFieldError(
                "TimeStamp", f"{value[:60]!r} is not an ISO 8601 date-time", where
            ) from None
    else:
        raise InvalidFieldError("TimeStamp", f"expected an ISO 8601 string, got {_kind(value)}", where)
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=UTC)
    if stamp.utcoffset():
        try:
            return stamp.astimezone(UTC)
        except OverflowError:
            raise InvalidFieldError("TimeStamp", f"{value!s:.60} is out of range in UTC", where) from None
    return stamp if stamp.tzinfo is UTC else stamp.replace(tzinfo=UTC)


def _envelope_fields(obj: Any, where: str) -> dict[str, Any]:
    """Check one decoded envelope object and return the ``CFXEnvelope`` field values it gives."""
    if not isinstance(obj, dict):
        raise NotAnObjectError(f"expected a CFX envelope (JSON object), got {_kind(obj)}", where)
    if obj.keys() == _WIRE_NAMES:
        # What the SDK writes: every member, spelled as the standard spells it.
        found = {field: obj[wire] for wire, field in _WIRE_TO_FIELD}
    else:
        found = {}
        for key, value in obj.items():
            field = _ENVELOPE_FIELDS.get(key.lower()) if isinstance(key, str) else None
            if field is not None:
                found[field] = value
    name = found.get("message_name")
    if name.__class__ is not str or name not in _CHECKED_NAMES:
        _check_name(name, where)
    body = found.get("message_body")
    if body.__class__ is not dict:
        if body is None:
            raise MissingFieldError("MessageBody", where)
        if not isinstance(body, dict):
            raise InvalidFieldError("MessageBody", f"expected a JSON object, got {_kind(body)}", where)
    version = found.get("version")
    if isinstance(version, int | float) and not isinstance(version, bool):
        # Some old endpoints write the version as a bare number (1.7).
        version = str(version)
    unique_id, source = found.get("unique_id"), found.get("source")
    target, request_id = found.get("target"), found.get("request_id")
    return {
        "message_name": name,
        "version": _optional_text("Version", version, where, 50),
        "time_stamp": _parse_time(found.get("time_stamp"), where),
        "unique_id": _optional_text("UniqueID", unique_id, where, 200),
        "source": _optional_text("Source", source, where),
        "target": None if target is None else _optional_text("Target", target, where),
        "request_id": None if request_id is None else _optional_text("RequestID", request_id, where, 200),
        "message_body": body,
    }


def _check_name(name: Any, where: str) -> None:
    if name is None:
        raise MissingFieldError("MessageName", where)
    if not isinstance(name, str):
        raise InvalidFieldError("MessageName", f"expected a string, got {_kind(name)}", where)
    if _MESSAGE_NAME.fullmatch(name) is None:
        raise InvalidFieldError(
            "MessageName", f"{name[:60]!r} is not a message name (1..200 characters, no spaces)", where
        )
    # Endpoints send a few dozen distinct names; remembering the good ones saves the regex per message.
    if len(_CHECKED_NAMES) < 4096:
        _CHECKED_NAMES.add(name)


def _too_deep(text: str, max_depth: int) -> bool:
    """True when objects/arrays in ``text`` nest deeper than ``max_depth``, judged without recursion."""
    # Every opening bracket, even one inside a string, can add at most one level: a cheap upper bound
    # that settles nearly every real message without looking further.
    if text.count("{") + text.count("[") <= max_depth:
        return False
    skeleton = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, skeleton)), default=0) > max_depth


def _text(data: bytes | bytearray | memoryview | str, origin: str) -> str:
    if isinstance(data, str):
        text = data
    else:
        raw = bytes(data)
        if raw[:2] == b"\x1f\x8b":
            try:
                raw = maybe_gunzip(raw, origin)
            except CFXDecodeError:
                raise
            except DecodeError as exc:
                raise InvalidGzipError(exc.reason, origin) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidUTF8Error(f"invalid UTF-8 at byte {exc.start}: {exc.reason}", origin) from None
    # Windows tools put a byte-order mark in front of JSON files; it is not part of the JSON.
    return text[1:] if text.startswith("\ufeff") else text


def _loads(text: str, origin: str, max_depth: int) -> Any:
    if not text.strip():
        raise InvalidJSONError("empty input, expected a CFX envelope", origin)
    if _orjson_loads is None:
        if _too_deep(text, max_depth):
            raise NestingTooDeepError(f"JSON nested deeper than {max_depth} levels", origin)
    else:
        raw = text.encode("utf-8", "surrogatepass")
        marks = raw.translate(_MARKS)  # one pass gives both _too_deep's cheap bound and the digit runs
        if marks.count(b"{") > max_depth and _too_deep(text, max_depth):
            raise NestingTooDeepError(f"JSON nested deeper than {max_depth} levels", origin)
        if _LONG_DIGIT_RUN not in marks:
            try:
                return _orjson_loads(raw)
            except _OrjsonDecodeError:
                pass
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise InvalidJSONError(
            f"invalid JSON: {json_error_text(exc)}", origin
        ) from None
    except RecursionError:
        raise NestingTooDeepError(f"JSON nested deeper than {max_depth} levels", origin) from None
    except ValueError as exc:
        # json raises plain ValueError for integers longer than sys.get_int_max_str_digits().
        raise InvalidJSONError(f"invalid JSON: {str(exc)[:120]}", origin) from None


def parse_envelopes(
    data: bytes | bytearray | memoryview | str, *, origin: str = "", max_depth: int = DEFAULT_MAX_DEPTH
) -> list[CFXEnvelope]:
    """Read one CFX envelope or a JSON array of envelopes (a batch).

    Args:
        data: UTF-8 JSON, raw or gzip-compressed (recognised by the gzip magic bytes, not by any name);
            or already-decoded text. A leading byte-order mark is ignored.
        origin: where the bytes came from (file path, routing key), used in error messages.
        max_depth: deepest allowed nesting of objects and arrays (counts, >= 1); deeper input is refused
            before parsing, so hostile input cannot exhaust the stack.

    Returns:
        The envelopes in input order; an empty array gives an empty list. Bare ``NaN``/``Infinity``/
        ``-Infinity`` tokens and numbers that overflow a double (``1e999``) are read as the strings
        Newtonsoft writes for them (``"NaN"``, ``"Infinity"``, ``"-Infinity"``), never as non-finite floats.

    Raises:
        InvalidGzipError: gzip data that is corrupt, truncated or expands beyond 64 MiB.
        InvalidUTF8Error: bytes that are not UTF-8.
        InvalidJSONError: text that is not JSON (reason, line and column in the message).
        NestingTooDeepError: nesting deeper than ``max_depth``.
        NotAnObjectError: JSON that is not an object or an array of objects.
        MissingFieldError: an envelope without ``MessageName`` or ``MessageBody``.
        InvalidFieldError: an envelope member of the wrong type (``TimeStamp`` not a date, ...).
    """
    decoded = _loads(_text(data, origin), origin, max_depth)
    if isinstance(decoded, dict):
        return [CFXEnvelope._trusted(_envelope_fields(decoded, origin))]
    if isinstance(decoded, list):
        return [
            CFXEnvelope._trusted(_envelope_fields(item, f"{origin}[{i}]")) for i, item in enumerate(decoded)
        ]
    raise NotAnObjectError(f"expected a CFX envelope or an array of envelopes, got {_kind(decoded)}", origin)


def _format_time(stamp: datetime) -> str:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.isoformat(timespec="microseconds")


def encode_envelope(
    message_name: str,
    body: dict[str, Any],
    *,
    source: str,
    unique_id: str | None = None,
    timestamp: datetime | None = None,
    target: str | None = None,
    version: str = "2.1",
    request_id: str | None = None,
) -> dict[str, Any]:
    """Build a CFX envelope as the SDK writes it (PascalCase members, nulls written out).

    Args:
        message_name: full CFX message name, e.g. ``CFX.Production.TestAndInspection.UnitsTested``.
        body: the ``MessageBody`` object (not copied).
        source: CFX handle of the sender, ``Vendor.Model.Serial``.
        unique_id: the message GUID; a random UUID4 when None.
        timestamp: when the event happened; now (UTC) when None; a naive value is taken as UTC.
        target: CFX handle of the addressee, or None for a broadcast.
        version: CFX version string.
        request_id: request/response correlation id, or None.

    Returns:
        A JSON-ready dict; ``envelope_to_bytes`` serializes it.
    """
    return {
        "MessageName": message_name,
        "Version": version,
        "TimeStamp": _format_time(timestamp or datetime.now(UTC)),
        "UniqueID": unique_id or str(uuid.uuid4()),
        "Source": source,
        "Target": target,
        "RequestID": request_id,
        "MessageBody": body,
    }


def envelope_to_bytes(env: dict[str, Any] | CFXEnvelope, *, gzip: bool = False) -> bytes:
    """Serialize an envelope (or a list of them) to UTF-8 JSON, optionally gzip-compressed.

    Args:
        env: a wire dict (``encode_envelope``) or a ``CFXEnvelope``.
        gzip: compress like the CFX SDK does by default (``content-encoding: gzip``); the gzip header
            carries no time stamp, so equal input gives equal bytes.

    Returns:
        The bytes to publish.
    """
    wire = env.to_wire_dict() if isinstance(env, CFXEnvelope) else env
    data = jsonsafe.dumps(wire, ensure_ascii=False, default=None).encode("utf-8")
    return _gzip.compress(data, mtime=0) if gzip else data
