"""The OpenAPI 3.0.3 document of the app (``GET /openapi.json``).

The request bodies that a pydantic model validates (``Event``, ``LabEventMessage``,
``ModuleStatusUpdateEvent``) get their schemas from the model (``model_json_schema``, validation mode),
converted from JSON Schema 2020-12 to the OpenAPI 3.0 schema object (OpenAPI 3.0.3, section 4.7.24), so
the document cannot drift from what the app validates. The answers and admin bodies, which no model
validates, are written here. The contract tests (schemathesis) hold the app to the document.

3.0.3 rather than 3.1: the shipped Swagger UI (``/docs``) renders 3.0 documents only.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from ..event import Event
from ..plugins import DECODER_GROUP, available
from .analytics import analytics_paths
from .settings import HTTPSettings

__all__ = ["MODEL_SCHEMAS", "build_openapi", "model_schemas", "portable_pattern", "to_openapi_schema"]

_REF_TEMPLATE = "#/components/schemas/{model}"

def _lab_models() -> dict[str, type[BaseModel]]:
    """The lab event-service body models, from the module of the registered ``lab-event`` decoder (the
    core names no plug-in package); none when no such decoder is installed."""
    spec = available(DECODER_GROUP).get("lab-event")
    if spec is None:
        return {}
    try:
        module = importlib.import_module(spec.value.partition(":")[0])
    except ImportError:
        return {}
    found = {name: getattr(module, name, None) for name in ("LabEventMessage", "ModuleStatusUpdateEvent")}
    return {n: m for n, m in found.items() if isinstance(m, type) and issubclass(m, BaseModel)}


#: The components generated from a model, by component name.
MODEL_SCHEMAS: dict[str, type[BaseModel]] = {"Event": Event, **_lab_models()}


#: What pydantic-core's regex engine (Rust ``regex``) means by ``\s``: the Unicode White_Space property.
#: ECMA-262, the dialect of OpenAPI patterns, means something else (no U+0085, but U+FEFF), so a ``\s``
#: is spelled out for the document to mean what the app checks.
_WHITE_SPACE = "\\t\\n\\x0b\\x0c\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def portable_pattern(pattern: str) -> str:
    """``pattern`` with each ``\\s`` / ``\\S`` replaced by the explicit White_Space class, so that Rust regex
    (pydantic), Python ``re`` and ECMA-262 (OpenAPI 3.0.3, 4.7.24) agree on what it matches.

    Raises:
        ValueError: a ``\\S`` inside a character class, which has no explicit spelling.
    """
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "s":
                out.append(_WHITE_SPACE if in_class else f"[{_WHITE_SPACE}]")
            elif nxt == "S":
                if in_class:
                    raise ValueError(f"cannot spell out \\S inside a character class in {pattern!r}")
                out.append(f"[^{_WHITE_SPACE}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return "".join(out)


def to_openapi_schema(schema: Any) -> Any:
    """Convert one JSON Schema 2020-12 value, as pydantic writes it, to an OpenAPI 3.0 schema object.

    The differences handled (OpenAPI 3.0.3, 4.7.24 "Schema Object"): ``{"type": "null"}`` in an ``anyOf``
    becomes ``nullable: true``; numeric ``exclusiveMinimum``/``exclusiveMaximum`` become ``minimum`` /
    ``maximum`` with the boolean form; ``const`` becomes a one-value ``enum``; ``examples`` becomes
    ``example``; ``\\s`` in a ``pattern`` is spelled out (``portable_pattern``); a ``$ref`` with siblings
    (pydantic writes ``default`` beside it) is wrapped in ``allOf``, since 3.0 ignores a reference's
    siblings; ``title`` (pydantic's field name in title case) is dropped.

    Args:
        schema: a JSON Schema value (dict, list or scalar); ``$ref`` values must already point into
            ``#/components/schemas/``.

    Returns:
        A new value; ``schema`` is not changed.

    Raises:
        ValueError: a construct OpenAPI 3.0 cannot say (``prefixItems``, ``$defs`` nested in a property).
    """
    if isinstance(schema, list):
        return [to_openapi_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    for unsupported in ("prefixItems", "$defs", "dependentSchemas", "unevaluatedProperties"):
        if unsupported in schema:
            raise ValueError(f"OpenAPI 3.0 has no {unsupported!r}; cannot convert {schema!r}")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {name: to_openapi_schema(sub) for name, sub in value.items()}
        elif key == "pattern":
            out[key] = portable_pattern(value)
        elif key == "const":
            out["enum"] = [value]
        elif key == "examples":
            if value:
                out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = to_openapi_schema(value)
    for key in ("anyOf", "oneOf"):
        if key in out:
            options = [o for o in out[key] if o != {"type": "null"}]
            if len(options) < len(out[key]):
                out["nullable"] = True
                if len(options) == 1:
                    del out[key]
                    only = options[0]
                    if "$ref" in only:
                        out["allOf"] = [only]
                    else:
                        out = {**only, **out}
                else:
                    out[key] = options
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


#: Rules a model checks across fields (in validators, which pydantic cannot put in a schema), said in
#: OpenAPI 3.0 terms; the agreement tests generate bodies from them, so a missing one fails a test.
_CROSS_FIELD_RULES: dict[str, dict[str, Any]] = {
    "ModuleStatusUpdateEvent": {
        "anyOf": [
            {"properties": {"Status": {"enum": [0, 3]}}},
            {
                "description": "Busy (1): OrdersBeingProcessed lists at least one order",
                "required": ["OrdersBeingProcessed"],
                "properties": {"Status": {"enum": [1]}, "OrdersBeingProcessed": {"type": "array", "minItems": 1}},
            },
            {
                # not blank as str.strip() sees it: White_Space plus U+001C..U+001F
                "description": "Error (2): StatusDetails says what is wrong (not blank)",
                "required": ["StatusDetails"],
                "properties": {
                    "Status": {"enum": [2]},
                    "StatusDetails": {"type": "string", "pattern": "[^\\s\\x1c-\\x1f]"},
                },
            },
        ]
    },
}


def model_schemas(model: type[BaseModel], name: str) -> dict[str, Any]:
    """The components for ``model`` under ``name`` (plus one per nested model or enum, by its class name),
    in the validation mode: what the app accepts, not what it writes.

    ``Event`` gets ``category`` back as a read-only property: the JSON form carries it, the input ignores it
    (``Event.from_json_dict``), and the model's ``extra="forbid"`` would otherwise make it look refused.

    Raises:
        ValueError: the model's schema has a construct OpenAPI 3.0 cannot say (see ``to_openapi_schema``).
    """
    raw = model.model_json_schema(ref_template=_REF_TEMPLATE, mode="validation")
    defs = raw.pop("$defs", {})
    out = {def_name: to_openapi_schema(sub) for def_name, sub in defs.items()}
    main = to_openapi_schema(raw)
    # The docstring's Raises: section is about the Python API, not the wire.
    main["description"] = main.get("description", "").split("\n\nRaises:")[0]
    if model is Event:
        main["properties"]["category"] = {
            "type": "string",
            "readOnly": True,
            "description": "derived: the first dotted segment of `type`; ignored on input",
        }
    out[name] = {**main, **to_openapi_schema(_CROSS_FIELD_RULES.get(name, {}))}
    return out

_STR = {"type": "string"}
_STR_LIST = {"type": "array", "items": _STR}
_NULL_STR = {"type": "string", "nullable": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"required": True, "description": description, "content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_AUTH_ERRORS = {
    "401": _problem("Credentials missing"),
    "403": _problem("Credentials not accepted"),
}

_INGEST_ERRORS = {
    "400": _problem("Invalid JSON or event; `field` names the offending field"),
    **_AUTH_ERRORS,
    "413": _problem("Body larger than the configured limit"),
    "415": _problem("Content-Encoding other than gzip"),
    "503": _problem("Saturated, stopping, or not settled in time; retry after `Retry-After` seconds"),
}

_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": _STR,
            "title": _STR,
            "status": {"type": "integer"},
            "detail": _STR,
            "field": _STR,
            "dead_letter_id": _STR,
            "error_type": _STR,
            "limit": {"type": "integer"},
        },
    },
    "Settlement": {
        "type": "object",
        "required": ["events", "handled", "skipped", "dead_lettered", "unrouted"],
        "properties": {
            k: {"type": "integer", "minimum": 0} for k in ("events", "handled", "skipped", "dead_lettered", "unrouted")
        },
    },
    "IngestResult": {
        "type": "object",
        "description": "Answered only once every delivery succeeded or is durably dead-lettered",
        "required": ["accepted", "event_ids", "settlement"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "event_ids": _STR_LIST,
            "settlement": _ref("Settlement"),
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["ready", "not_ready"],
        "properties": {"ready": {"type": "boolean"}, "not_ready": _STR_LIST, "transports": {"type": "array"}},
    },
    "Asset": {
        "type": "object",
        "required": ["asset_id", "kind", "state", "ready"],
        "properties": {
            "asset_id": _STR,
            "name": _STR,
            "kind": _STR,
            "state": _STR,
            "state_code": {"type": "integer", "nullable": True},
            "category": _STR,
            "ready": {"type": "boolean"},
            "orders": _STR_LIST,
            "capabilities": _STR_LIST,
            "faults": {"type": "array", "items": {"type": "object"}},
        },
    },
    "StatusOverview": {
        "type": "object",
        "required": ["assets", "ready", "by_state", "active_orders", "active_faults", "items"],
        "properties": {
            "assets": {"type": "integer"},
            "ready": {"type": "integer"},
            "by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_category": {"type": "object", "additionalProperties": {"type": "integer"}},
            "active_orders": {"type": "array", "items": {"type": "object"}},
            "active_faults": {"type": "array", "items": {"type": "object"}},
            "items": {"type": "array", "items": _ref("Asset")},
        },
    },
    "Available": {
        "type": "object",
        "required": ["count", "items"],
        "properties": {
            "capability": _NULL_STR,
            "count": {"type": "integer"},
            "items": {"type": "array", "items": _ref("Asset")},
        },
    },
    "DeadLetter": {
        "type": "object",
        "required": ["id", "reason"],
        "properties": {
            "id": _STR,
            "reason": _STR,
            "handler": _NULL_STR,
            "event": {"type": "object", "nullable": True},
            "error_type": _STR,
            "error_message": _STR,
            "attempts": {"type": "integer"},
            "origin": _STR,
            "transport": _STR,
        },
    },
    "StoredEvent": {"type": "object", "required": ["id", "type"], "properties": {"id": _STR, "type": _STR}},
    "Breaker": {
        "type": "object",
        "required": ["handler", "state"],
        "properties": {"handler": _STR, "state": {"type": "string", "enum": ["closed", "open", "half_open"]}},
    },
    "ReplayReport": {
        "type": "object",
        "required": ["replayed", "succeeded", "failed", "failed_ids"],
        "properties": {
            "replayed": {"type": "integer"},
            "succeeded": {"type": "integer"},
            "failed": {"type": "integer"},
            "failed_ids": _STR_LIST,
        },
    },
}


def _schemas() -> dict[str, Any]:
    generated: dict[str, Any] = {}
    for name, model in MODEL_SCHEMAS.items():
        generated.update(model_schemas(model, name))
    clash = generated.keys() & _SCHEMAS.keys()
    if clash:
        raise ValueError(f"components both generated and written by hand: {sorted(clash)}")
    return {**_SCHEMAS, **generated}


def _security(settings: HTTPSettings, group: str) -> list[dict[str, list[str]]]:
    return [{"bearer": []}] if settings.security(group).tokens else []


def _signature(settings: HTTPSettings, group: str) -> list[dict[str, Any]]:
    sec = settings.security(group)
    both = sec.hmac_secret is not None and bool(sec.webhook_secret)
    params: list[dict[str, Any]] = []
    if sec.hmac_secret is not None:
        params.append(
            {
                "name": "X-Signature",
                "in": "header",
                "required": not both,
                "description": "sha256=<hex HMAC-SHA256 of the raw body>"
                + (" (or the Standard Webhooks headers)" if both else ""),
                "schema": _STR,
            }
        )
    if sec.webhook_secret:
        for name, text in (
            ("webhook-id", "Standard Webhooks message id, the same on every resend; a replay is answered 409"),
            ("webhook-timestamp", "integer Unix seconds of signing; outside the tolerance window: 403"),
            ("webhook-signature", "space-separated v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{raw body}'>"),
        ):
            params.append({"name": name, "in": "header", "required": not both, "description": text, "schema": _STR})
    return params


def _ingest(settings: HTTPSettings, group: str, summary: str, body: dict[str, Any], extra: dict[str, Any]) -> Any:
    signed = settings.security(group).signed
    key_use = (
        "ignored on this signed route (the signature does not cover it): events without an id get ids "
        "derived from the signed body, so a retried or replayed request is a no-op"
        if signed
        else "events without an id get ids derived from this key (retries are no-ops)"
    )
    return {
        "post": {
            "summary": summary,
            "security": _security(settings, group),
            "parameters": [
                *_signature(settings, group),
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": key_use,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
                },
            ],
            "requestBody": body,
            "responses": {"200": _ok(_ref("IngestResult"), "Settled"), **_INGEST_ERRORS, **extra},
        }
    }


def _admin_op(summary: str, ok: dict[str, Any], *, body: dict[str, Any] | None = None, params: Any = ()) -> Any:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": list(params),
        "responses": {
            "200": _ok(ok),
            "400": _problem("Invalid parameter; `field` names it"),
            **_AUTH_ERRORS,
            "404": _problem("No such entry or handler"),
            "409": _problem("The entry's handler is not registered on this bus"),
        },
    }
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _admin_paths() -> dict[str, Any]:
    ids = {"type": "array", "items": _STR}
    page = [
        _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),
        _q("offset", {"type": "integer", "minimum": 0}),
    ]
    return {
        "/admin/dead-letters": {
            "get": _admin_op(
                "List dead letters, oldest first",
                {"type": "array", "items": _ref("DeadLetter")},
                params=[_q("handler", _STR), _q("reason", _STR), *page],
            )
        },
        "/admin/dead-letters/{entry_id}": {
            "get": _admin_op(
                "One dead letter with traceback and body",
                _ref("DeadLetter"),
                params=[{"name": "entry_id", "in": "path", "required": True, "schema": _STR}],
            )
        },
        "/admin/dead-letters/replay": {
            "post": _admin_op(
                "Replay dead letters by id or filter (to the failed handler only)",
                _ref("ReplayReport"),
                body={"type": "object", "properties": {"ids": ids, "handler": _STR, "reason": _STR}},
            )
        },
        "/admin/dead-letters/purge": {
            "post": _admin_op(
                "Delete dead letters by id, filter, or all (`everything`)",
                {"type": "object", "required": ["purged"], "properties": {"purged": {"type": "integer"}}},
                body={
                    "type": "object",
                    "properties": {
                        "ids": ids,
                        "handler": _STR,
                        "reason": _STR,
                        "everything": {"type": "boolean"},
                    },
                },
            )
        },
        "/admin/events": {
            "get": _admin_op(
                "Query stored events, oldest first",
                {"type": "array", "items": _ref("StoredEvent")},
                params=[
                    _q("type", _STR),
                    _q("category", _STR),
                    _q("min_severity", {"type": "string", "enum": ["info", "warning", "error", "critical"]}),
                    _q("since", {"type": "string", "format": "date-time"}),
                    _q("until", {"type": "string", "format": "date-time"}),
                    _q("source", _STR),
                    _q("acknowledged", {"type": "boolean"}),
                    _q("correlation_id", _STR),
                    _q("limit", {"type": "integer", "minimum": 1, "maximum": 100000}),
                    _q("offset", {"type": "integer", "minimum": 0}),
                ],
            )
        },
        "/admin/events/acknowledge": {
            "post": _admin_op(
                "Acknowledge stored events",
                {
                    "type": "object",
                    "required": ["acknowledged"],
                    "properties": {"acknowledged": {"type": "integer"}},
                },
                body={"type": "object", "required": ["ids"], "properties": {"ids": ids, "by": _STR}},
            )
        },
        "/admin/events/purge": {
            "post": _admin_op(
                "Delete stored events older than N days and/or beyond the newest N",
                {"type": "object", "required": ["purged"], "properties": {"purged": {"type": "integer"}}},
                body={
                    "type": "object",
                    "properties": {
                        "older_than_days": {"type": "number", "minimum": 0, "maximum": 36500},
                        "keep_at_most": {"type": "integer", "minimum": 0, "maximum": 2**62},
                    },
                },
            )
        },
        "/admin/breakers": {
            "get": _admin_op("Every handler's circuit breaker", {"type": "array", "items": _ref("Breaker")})
        },
        "/admin/breakers/{handler}": {
            "post": _admin_op(
                "Force a breaker open (until closed) or closed (replays parked deliveries)",
                _ref("Breaker"),
                body={
                    "type": "object",
                    "required": ["state"],
                    "properties": {"state": {"type": "string", "enum": ["open", "closed"]}},
                },
                params=[{"name": "handler", "in": "path", "required": True, "schema": _STR}],
            )
        },
    }


def build_openapi(settings: HTTPSettings) -> dict[str, Any]:
    """The document for an app built with ``settings`` (security and admin paths follow them)."""
    events_body = _json_body(
        {"oneOf": [_ref("Event"), {"type": "array", "items": _ref("Event"), "minItems": 1}]},
        "one event or a list of events; send `Content-Encoding: gzip` for a gzip body",
    )
    lab_body = _json_body(
        {
            "anyOf": [
                _ref("LabEventMessage"),
                _ref("ModuleStatusUpdateEvent"),
                {"type": "array", "items": _ref("LabEventMessage"), "minItems": 1},
            ]
        },
        "a lab event message, a list of them, or a bare module status update; `Content-Encoding: gzip` accepted",
    )
    cfx_body = _json_body(
        {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}]},
        "IPC-CFX envelope(s); send `Content-Encoding: gzip` for a gzip body",
    )
    status_sec = _security(settings, "status")
    paths: dict[str, Any] = {
        "/events": _ingest(settings, "events", "Ingest normalized events", events_body, {}),
        "/cfx": _ingest(
            settings,
            "cfx",
            "Ingest IPC-CFX envelopes; undecodable bodies are dead-lettered and answered 400",
            cfx_body,
            {},
        ),
        "/api/v2.0/EventService": _ingest(
            settings,
            "event_service",
            "Ingest lab event messages (lab event service compatible)",
            lab_body,
            {},
        ),
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _ok({"type": "object"})}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: bus running and every transport connected",
                "responses": {"200": _ok(_ref("Readiness")), "503": _ok(_ref("Readiness"), "Not ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": _security(settings, "metrics"),
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": _STR}},
                    },
                    **_AUTH_ERRORS,
                },
            }
        },
        "/status": {
            "get": {
                "summary": "Status board overview",
                "security": status_sec,
                "responses": {"200": _ok(_ref("StatusOverview")), **_AUTH_ERRORS},
            }
        },
        "/status/available": {
            "get": {
                "summary": "Ready assets offering a capability",
                "security": status_sec,
                "parameters": [_q("capability", _STR)],
                "responses": {"200": _ok(_ref("Available")), **_AUTH_ERRORS},
            }
        },
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok({"type": "object"})}}},
    }
    paths.update(analytics_paths(settings))
    if settings.admin_token is not None:
        paths.update(_admin_paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "pyWATS events", "version": "0.1.0"},
        "paths": paths,
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
