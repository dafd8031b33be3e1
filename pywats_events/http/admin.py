"""Admin routes, behind the admin bearer token: the same operations as the command line, through
``pywats_events.admin.Admin`` (one implementation underneath both).

=======  ===================================  ==================================================
GET      /admin/dead-letters                  list (``handler``, ``reason``, ``limit``, ``offset``)
GET      /admin/dead-letters/{id}             show one, with traceback and body
POST     /admin/dead-letters/replay           ``{"ids": [...]}`` or ``{"handler":..,"reason":..}``
POST     /admin/dead-letters/purge            ``{"ids"|"handler"|"reason"|"everything": true}``
GET      /admin/events                        query (``type``, ``category``, ``min_severity``,
                                              ``since``, ``until``, ``source``, ``acknowledged``,
                                              ``correlation_id``, ``limit``, ``offset``)
POST     /admin/events/acknowledge            ``{"ids": [...], "by": "operator"}``
POST     /admin/events/purge                  ``{"older_than_days": 30, "keep_at_most": 100000}``
GET      /admin/breakers                      every handler's breaker
POST     /admin/breakers/{handler}            ``{"state": "open" | "closed"}``
=======  ===================================  ==================================================
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import jsonsafe
from ..admin import Admin
from ..errors import BusError, DeadLetterNotFoundError
from .context import HTTPContext
from .errors import InvalidRequestError
from .limits import BodyTooLargeError, read_body
from .problem import problem
from .security import check_bearer

__all__ = ["admin_routes"]

#: Largest admin request body, in bytes (id lists; 1 MiB holds ~25 000 UUIDs).
_MAX_ADMIN_BODY = 1024 * 1024

#: Largest ``older_than_days`` accepted, in days, and largest ``keep_at_most``, in events.
_MAX_DAYS = 36_500
_MAX_COUNT = 2**62

Endpoint = Callable[[Request], Awaitable[Response]]


def _json(data: Any, status: int = 200) -> Response:
    return Response(jsonsafe.dumps(data), status, media_type="application/json")


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequestError(f"query parameter {name!r} must be an integer", name) from None
    if not low <= value <= high:
        raise InvalidRequestError(f"query parameter {name!r} must be {low}..{high}", name)
    return value


def _time(request: Request, name: str) -> datetime | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequestError(f"query parameter {name!r} must be an ISO 8601 date-time", name) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _bool(request: Request, name: str) -> bool | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    low = text.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise InvalidRequestError(f"query parameter {name!r} must be true or false", name)


async def _body(request: Request) -> dict[str, Any]:
    try:
        raw = await read_body(request, _MAX_ADMIN_BODY)
    except BodyTooLargeError:
        raise InvalidRequestError(f"body larger than {_MAX_ADMIN_BODY} bytes") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidRequestError("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("body must be a JSON object")
    return data


def _opt(data: dict[str, Any], name: str, kinds: tuple[type, ...]) -> Any:
    if name not in data:
        return None
    value = data[name]
    if value is None:  # an explicit null is not "absent": the document gives each field one type
        raise InvalidRequestError(f"field {name!r} must not be null (leave it out instead)", name)
    # bool is an int in Python, but JSON true is no count of days.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise InvalidRequestError(f"field {name!r} has the wrong type", name)
    return value


def _ids(data: dict[str, Any], required: bool = False) -> list[str] | None:
    ids = data.get("ids")
    if ids is None:
        if required:
            raise InvalidRequestError("field 'ids' is required", "ids")
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequestError("field 'ids' must be a list of strings", "ids")
    return ids


def _guarded(admin: Admin, func: Callable[[Admin, Request], Awaitable[Any]]) -> Endpoint:
    """Wrap an admin action: admin token first, then map the action's errors to problems."""

    async def endpoint(request: Request) -> Response:
        ctx: HTTPContext = request.app.state.ctx
        token = ctx.settings.admin_token
        denied = check_bearer(request, [token] if token is not None else [])
        if denied is not None:
            ctx.metrics.rejected.labels("/admin", "unauthorized" if denied.status_code == 401 else "forbidden").inc()
            return denied
        try:
            return _json(await func(admin, request))
        except InvalidRequestError as exc:
            return problem(400, exc.reason, field=exc.field or None)
        except DeadLetterNotFoundError as exc:
            return problem(404, str(exc))
        except KeyError as exc:
            return problem(404, str(exc.args[0]) if exc.args else "not found")
        except ValueError as exc:
            return problem(400, str(exc))
        except BusError as exc:
            return problem(409, str(exc), title="Conflict")

    return endpoint


async def _list_dead(admin: Admin, r: Request) -> Any:
    return await admin.list_dead_letters(
        handler=r.query_params.get("handler") or None,
        reason=r.query_params.get("reason") or None,
        limit=_int(r, "limit", 100, 1, 10_000),
        offset=_int(r, "offset", 0, 0, 2**31),
    )


async def _show_dead(admin: Admin, r: Request) -> Any:
    return await admin.show_dead_letter(r.path_params["entry_id"])


async def _replay_dead(admin: Admin, r: Request) -> Any:
    data = await _body(r)
    ids = _ids(data)
    handler, reason = _opt(data, "handler", (str,)), _opt(data, "reason", (str,))
    if ids is None and handler is None and reason is None:
        raise InvalidRequestError("give 'ids', or a 'handler' and/or 'reason' filter", "ids")
    return await admin.replay_dead_letters(ids=ids, handler=handler, reason=reason)


async def _purge_dead(admin: Admin, r: Request) -> Any:
    data = await _body(r)
    everything = _opt(data, "everything", (bool,)) or False
    n = await admin.purge_dead_letters(
        ids=_ids(data),
        handler=_opt(data, "handler", (str,)),
        reason=_opt(data, "reason", (str,)),
        everything=everything,
    )
    return {"purged": n}


async def _query_events(admin: Admin, r: Request) -> Any:
    q = r.query_params
    return await admin.query_events(
        type_pattern=q.get("type") or None,
        category=q.get("category") or None,
        min_severity=q.get("min_severity") or None,
        since=_time(r, "since"),
        until=_time(r, "until"),
        source=q.get("source") or None,
        acknowledged=_bool(r, "acknowledged"),
        limit=_int(r, "limit", 100, 1, 100_000),
        offset=_int(r, "offset", 0, 0, 2**31),
        correlation_id=q.get("correlation_id") or None,
    )


async def _ack_events(admin: Admin, r: Request) -> Any:
    data = await _body(r)
    n = await admin.acknowledge_events(_ids(data, required=True) or [], by=_opt(data, "by", (str,)))
    return {"acknowledged": n}


async def _purge_events(admin: Admin, r: Request) -> Any:
    data = await _body(r)
    days = _opt(data, "older_than_days", (int, float))
    keep = _opt(data, "keep_at_most", (int,))
    # Bounds keep the date arithmetic and SQL integers in range (a century; a signed 63-bit count).
    if days is not None and not 0 <= days <= _MAX_DAYS:
        raise InvalidRequestError(f"field 'older_than_days' must be 0..{_MAX_DAYS}", "older_than_days")
    if keep is not None and not 0 <= keep <= _MAX_COUNT:
        raise InvalidRequestError(f"field 'keep_at_most' must be 0..{_MAX_COUNT}", "keep_at_most")
    return {"purged": await admin.purge_events(older_than_days=days, keep_at_most=keep)}


async def _breakers(admin: Admin, r: Request) -> Any:
    return await admin.breakers()


async def _force_breaker(admin: Admin, r: Request) -> Any:
    data = await _body(r)
    state = _opt(data, "state", (str,))
    if state is None:
        raise InvalidRequestError("field 'state' is required ('open' or 'closed')", "state")
    return await admin.force_breaker(r.path_params["handler"], state)


def admin_routes(admin: Admin) -> list[Route]:
    """The admin routes, each behind the admin token (see the module docstring)."""
    return [
        Route("/admin/dead-letters", _guarded(admin, _list_dead), methods=["GET"]),
        Route("/admin/dead-letters/replay", _guarded(admin, _replay_dead), methods=["POST"]),
        Route("/admin/dead-letters/purge", _guarded(admin, _purge_dead), methods=["POST"]),
        Route("/admin/dead-letters/{entry_id}", _guarded(admin, _show_dead), methods=["GET"]),
        Route("/admin/events", _guarded(admin, _query_events), methods=["GET"]),
        Route("/admin/events/acknowledge", _guarded(admin, _ack_events), methods=["POST"]),
        Route("/admin/events/purge", _guarded(admin, _purge_events), methods=["POST"]),
        Route("/admin/breakers", _guarded(admin, _breakers), methods=["GET"]),
        Route("/admin/breakers/{handler}", _guarded(admin, _force_breaker), methods=["POST"]),
    ]
