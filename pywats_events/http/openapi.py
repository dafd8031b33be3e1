"""The OpenAPI 3.0.3 document of the app (``GET /openapi.json``), written by hand so it says exactly what
the routes accept and answer; the contract tests (schemathesis) hold the app to it."""

from __future__ import annotations

from typing import Any

from .analytics import analytics_paths
from .settings import HTTPSettings

__all__ = ["build_openapi"]

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
    "Event": {
        "type": "object",
        "description": "An event in the normalized JSON form; `category` is derived and ignored on input",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 200},
            "type": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": "^[a-zA-Z0-9_][a-zA-Z0-9_.:-]*$",
            },
            "source": {"type": "string", "minLength": 1, "maxLength": 500},
            "timestamp": {"type": "string", "format": "date-time"},
            "category": _STR,
            "severity": {"type": "string", "enum": ["info", "warning", "error", "critical"]},
            "payload": {"type": "object"},
            "correlation_id": _NULL_STR,
            "causation_id": _NULL_STR,
            "subjects": _STR_LIST,
            "tags": _STR_LIST,
            "headers": {"type": "object"},
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
    "LabEventMessage": {
        "type": "object",
        "description": "Lab event message; camelCase shown, PascalCase and snake_case keys accepted",
        "required": ["topic"],
        "properties": {
            "topic": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": "^[a-zA-Z0-9_][a-zA-Z0-9_.:-]*$",
            },
            "subjects": _STR_LIST,
            "data": {"description": "JSON object, or a string holding JSON"},
            "tags": _STR_LIST,
            "createdDateUtc": {"type": "string", "format": "date-time"},
            "sourceTraceIds": _STR_LIST,
            "organizationId": _STR,
            "userId": _STR,
        },
    },
    "ModuleStatusUpdateEvent": {
        "type": "object",
        "required": ["Id", "ModuleIdentifier", "ModuleName", "Status"],
        "properties": {
            "Id": {"type": "integer", "minimum": 1},
            "ModuleIdentifier": {"type": "string", "minLength": 1, "maxLength": 200},
            "ModuleName": {"type": "string", "minLength": 1, "maxLength": 500},
            "Status": {
                "type": "integer",
                "enum": [0, 1, 2, 3],
                "description": "0 Ready, 1 Busy, 2 Error, 3 Offline",
            },
            "StatusDetails": {"type": "string", "description": "required when Status is 2 (Error)"},
            "Image": _STR,
            "OrdersBeingProcessed": {**_STR_LIST, "description": "at least one when Status is 1 (Busy)"},
            "AllowSimultaneousExecution": {"type": "boolean"},
            "InstrumentIdentifiers": _STR_LIST,
            "Capabilities": _STR_LIST,
            "ClassName": _STR,
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


def _security(settings: HTTPSettings, group: str) -> list[dict[str, list[str]]]:
    return [{"bearer": []}] if settings.security(group).tokens else []


def _signature(settings: HTTPSettings, group: str) -> list[dict[str, Any]]:
    if settings.security(group).hmac_secret is None:
        return []
    return [
        {
            "name": "X-Signature",
            "in": "header",
            "required": True,
            "description": "sha256=<hex HMAC-SHA256 of the raw body>",
            "schema": _STR,
        }
    ]


def _ingest(settings: HTTPSettings, group: str, summary: str, body: dict[str, Any], extra: dict[str, Any]) -> Any:
    signed = settings.security(group).hmac_secret is not None
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
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
