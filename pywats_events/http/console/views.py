"""The console's pages and actions (server-rendered with Jinja2) and its live stream (server-sent events).

Pages read through the same ``Admin`` the command line and the admin API use, so a replay from the page
is the replay the CLI does. Listings are paged on the server (``page_size`` rows, newest first), so a
page with 10,000 dead letters or a million stored events costs one count and one page query.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ... import jsonsafe
from ...admin import Admin
from ...errors import DeadLetterNotFoundError
from ...event import Severity
from ...store import DeadLetterQuery, EventQuery
from ..context import HTTPContext
from .auth import Session, SessionSigner
from .settings import ConsoleSettings

__all__ = ["E10_COLOURS", "RATE_WINDOW", "SCAN_ROWS", "RateMeter", "console_routes"]

log = logging.getLogger(__name__)

HERE = Path(__file__).parent

#: Colour class per SEMI E10 category (SEMI E10-0304 §5: productive, standby, engineering, scheduled
#: downtime, unscheduled downtime, non-scheduled) and per Biosero module status.
E10_COLOURS = {
    "PRD": "prd", "SBY": "sby", "ENG": "eng", "SDT": "sdt", "USD": "usd", "NST": "nst",
    "ready": "prd", "busy": "eng", "error": "usd", "offline": "nst",
}
E10_NAMES = {
    "PRD": "productive", "SBY": "standby", "ENG": "engineering", "SDT": "scheduled downtime",
    "USD": "unscheduled downtime", "NST": "non-scheduled",
}
PARKED_REASONS = ("circuit_open",)
FAILED_REASONS = ("failed", "unrecoverable", "decode_error", "timeout", "unrouted", "too_large")

_env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
_env.filters["pretty"] = lambda value: jsonsafe.dumps(value, indent=2, ensure_ascii=False)


def _colour(asset: dict[str, Any]) -> str:
    if asset.get("faults"):
        return "usd"
    if asset.get("kind") == "lab_module":
        return E10_COLOURS.get(str(asset.get("state", "")).lower(), "nst")
    return E10_COLOURS.get(str(asset.get("category") or ""), "nst")


_env.filters["colour"] = _colour
_env.globals["e10_names"] = E10_NAMES


#: Events a page of the events listing examines at most for a filter no index serves (count).
SCAN_ROWS = 100_000

#: Seconds over which the overview's rates are computed.
RATE_WINDOW = 60.0


class RateMeter:
    """Events per second in, handled and dead-lettered over the last ``window`` seconds, from the bus's
    cumulative counters (``BusMetrics``): each ``sample`` keeps ``(time, in, handled, dead-lettered)``,
    at most one per ``every`` seconds, and drops those older than the window. The console samples once a
    second in the background while the bus runs (from the app's creation when it is created in a running
    event loop; else from the first console request) and whenever the overview or its live stream
    renders. A bus started less than a minute before the first sample is seeded with zero counts at its
    start (``seed``), so the rates cover everything since the start; a console first opened later reads
    "measuring" for a second and then covers the time since it began sampling, up to the window.

    Args:
        window: seconds of history (> 0). every: seconds between kept samples.
        clock: monotonic clock in seconds (tests may pass their own).
    """

    def __init__(self, window: float = RATE_WINDOW, every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.every = every
        self._clock = clock
        self._samples: deque[tuple[float, int, int, int]] = deque()

    @staticmethod
    def totals(metrics: Any) -> tuple[int, int, int]:
        """``(received, handled, dead-lettered)`` counts of a ``BusMetrics`` (raw input dead-lettered by a
        transport counts as dead-lettered)."""
        received = sum(metrics.received.values())
        handled = sum(metrics.handled.values())
        dead = sum(metrics.dead_lettered.values()) + sum(metrics.raw_dead_lettered.values())
        return received, handled, dead

    def seed(self, started_at: datetime | str | None) -> None:
        """With no sample yet and a bus started less than ``window`` seconds ago (``started_at``: aware
        UTC, or ISO 8601 text as ``EventBus.readiness`` gives it), add the sample ``(start, 0, 0, 0)``:
        the counters were at zero then, so the first view after a start already has its rates."""
        if self._samples or started_at is None:
            return
        start = datetime.fromisoformat(started_at) if isinstance(started_at, str) else started_at
        age = (datetime.now(UTC) - start).total_seconds()
        if 0 <= age < self.window:
            self._samples.append((self._clock() - age, 0, 0, 0))

    def sample(self, metrics: Any) -> dict[str, Any]:
        """Take a sample and return ``{"in_per_s", "handled_per_s", "dead_lettered_per_s", "window_s"}``
        (floats, events per second; ``None`` each until two samples span at least ``every`` seconds)."""
        now = self._clock()
        totals = self.totals(metrics)
        samples = self._samples
        if not samples or now - samples[-1][0] >= self.every:
            samples.append((now, *totals))
        else:  # keep the newest counts without a sample per call
            samples[-1] = (samples[-1][0], *totals)
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        first, last = samples[0], (now, *totals)
        span = last[0] - first[0]
        if span < self.every:
            return {"in_per_s": None, "handled_per_s": None, "dead_lettered_per_s": None, "window_s": 0.0}
        return {
            "in_per_s": (last[1] - first[1]) / span,
            "handled_per_s": (last[2] - first[2]) / span,
            "dead_lettered_per_s": (last[3] - first[3]) / span,
            "window_s": round(min(span, self.window + self.every), 1),
        }


def _rate(value: float | None) -> str:
    if value is None:
        return "measuring"
    if value == 0:
        return "0/s"
    if value < 1:
        return f"{value:.2f}/s"  # one dead letter a minute is 0.02/s, not 0.0/s
    return f"{value:.1f}/s" if value < 100 else f"{value:,.0f}/s"


_env.filters["rate"] = _rate


class Console:
    """The console of one app: settings, session signer, and the page and action endpoints."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.signer = SessionSigner(settings)
        self.rates = RateMeter()
        self._sampler: asyncio.Task[None] | None = None

    def ensure_sampler(self, bus: Any) -> None:
        """Start the background rate sampler of ``bus`` if it is not running (needs a running loop; a
        no-op without one). It samples every ``rates.every`` seconds while the bus runs and ends when the
        bus stops (the next console request starts it again)."""
        if self._sampler is not None and not self._sampler.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._sampler = loop.create_task(self._sample(bus), name="pywats-console-rates")

    async def _sample(self, bus: Any) -> None:
        seen_running = False
        while True:
            if bus.running:
                if not seen_running:
                    self.rates.seed(bus.readiness()[1].get("started_at"))
                seen_running = True
                self.rates.sample(bus.metrics)
            elif seen_running:
                return
            await asyncio.sleep(self.rates.every)

    # -- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _ctx(request: Request) -> HTTPContext:
        ctx: HTTPContext = request.app.state.ctx
        return ctx

    def _render(self, request: Request, template: str, session: Session | None, status: int = 200,
                **data: Any) -> HTMLResponse:
        html = _env.get_template(template).render(request=request, session=session, **data)
        return HTMLResponse(html, status, headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        })

    def page(
        self, render: Callable[[Request, Session], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: redirect to the login form without a valid session."""

        async def endpoint(request: Request) -> Response:
            self.ensure_sampler(self._ctx(request).bus)
            session = self.signer.session(request)
            if session is None:
                return RedirectResponse("/console/login?" + urlencode({"next": request.url.path}), 303)
            return await render(request, session)

        return endpoint

    def action(self, run: Callable[[Request, Session, dict[str, list[str]]], Awaitable[Response]]
               ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a state-changing POST: session, admin role, same origin and CSRF token required."""

        async def endpoint(request: Request) -> Response:
            session = self.signer.session(request)
            if session is None:
                return RedirectResponse("/console/login", 303)
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            if not self.signer.same_origin(request) or not self.signer.csrf_ok(session, _one(form, "csrf")):
                return self._render(request, "message.html", session, 403, title="Refused",
                                    message="This action did not come from a console page (CSRF check failed).")
            if not session.admin:
                return self._render(request, "message.html", session, 403, title="Admin role needed",
                                    message="You are logged in read-only; this action needs an admin token.")
            return await run(request, session, form)

        return endpoint

    # -- login ----------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        return self._render(request, "login.html", None, next=request.query_params.get("next", "/"), error=None)

    async def login(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        target = _one(form, "next") or "/"
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        role = self.signer.role_for(_one(form, "token") or "")
        if role is None:
            log.warning("console: failed login from %s", request.client.host if request.client else "?")
            return self._render(request, "login.html", None, 401, next=target, error="Unknown token.")
        response = RedirectResponse(target, 303)
        self.signer.login(response, role, request)
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/console/login", 303)
        self.signer.logout(response)
        return response

    # -- pages ----------------------------------------------------------------------------------
    async def snapshot(self, request: Request) -> dict[str, Any]:
        """What the overview and the board show, as plain data (also pushed over the live stream)."""
        ctx = self._ctx(request)
        admin = Admin(ctx.bus)
        ready, details = ctx.bus.readiness()
        board = ctx.board.overview()
        parked = sum([await admin.count_dead_letters(reason=r) for r in PARKED_REASONS])
        total = await admin.count_dead_letters()
        transports = details["transports"]
        breakers = details["breakers"]
        attention = []
        attention += [f"transport {t['name']} is {t['state']}" + (f": {t['last_error']}" if t.get("last_error") else "")
                      for t in transports if t["state"] != "connected"]
        attention += [f"circuit of {b['handler']} is {b['state']}" for b in breakers if b["state"] != "closed"]
        if total - parked:
            attention.append(f"{total - parked} dead letter(s) failed")
        attention += [f"fault on {f['asset_id']}: {f.get('description') or f.get('code') or f['fault_id']}"
                      for f in board["active_faults"]]
        if not details["running"]:
            attention.insert(0, "the bus is not running")
        return {
            "ready": ready,
            "running": details["running"],
            "queue_depth": details["queue_depth"],
            "queue_capacity": details["queue_capacity"],
            "transports": transports,
            "breakers": breakers,
            "dead_letters": {"total": total, "parked": parked, "failed": total - parked},
            "board": board,
            "rates": self._rates(ctx, details),
            "attention": attention,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _rates(self, ctx: HTTPContext, details: dict[str, Any]) -> dict[str, Any]:
        if details.get("running"):
            self.rates.seed(details.get("started_at"))
        return self.rates.sample(ctx.bus.metrics)

    async def overview(self, request: Request, session: Session) -> Response:
        return self._render(request, "overview.html", session, snap=await self.snapshot(request), page="overview")

    async def board(self, request: Request, session: Session) -> Response:
        return self._render(request, "board.html", session, snap=await self.snapshot(request), page="board")

    def _page_number(self, request: Request, name: str = "n") -> int:
        try:
            return max(1, int(request.query_params.get(name, "1")))
        except ValueError:
            return 1

    async def events(self, request: Request, session: Session) -> Response:
        ctx = self._ctx(request)
        q = request.query_params
        filters = {k: q.get(k) or None for k in ("type", "min_severity", "source", "since", "until", "correlation_id")}
        ack = q.get("acknowledged") or None
        error = None
        rows: list[dict[str, Any]] = []
        page = self._page_number(request)
        size = self.settings.page_size
        older = newer = scanned = None
        try:
            since, until = _when(filters["since"], "since"), _when(filters["until"], "until")
            if filters["min_severity"] and filters["min_severity"] not in {s.value for s in Severity}:
                raise ValueError(f"unknown severity {filters['min_severity']!r}")
            acknowledged = {"yes": True, "no": False}.get(ack or "")
            from ...pattern import validate_type_pattern

            if filters["type"]:
                validate_type_pattern(filters["type"])
            before, after = _cursor(q.get("before"), "before"), _cursor(q.get("after"), "after")
            base = dict(type_pattern=filters["type"], min_severity=filters["min_severity"], source=filters["source"],
                        since=since, until=until, acknowledged=acknowledged, correlation_id=filters["correlation_id"])
            # Keyset paging, newest first by (timestamp, id): one indexed read of a page and one row more
            # (to know whether there is a further page), however deep; no count over the whole table.
            if after is not None:  # "newer": the page just above the cursor, read upwards, shown newest first
                query = EventQuery(**base, limit=size + 1, after=after, newest_first=False)  # type: ignore[arg-type]
                found = await ctx.bus.store.query_events(query)
                more_newer = len(found) > size
                found = list(reversed(found[:size]))
                more_older = True
            else:
                # ``page=N`` without a cursor (links of earlier versions) still works, by OFFSET: fine for
                # the first pages, and the pager's own links carry cursors from there on.
                skip = 0
                if before is None and "page" in q:
                    page = self._page_number(request, "page")
                    skip = (page - 1) * size
                # A filter no index serves (source, severity, acknowledged, a type pattern) examines at most
                # SCAN_ROWS events per page: a rare filter's page stays fast over a million events, and
                # "older (more)" goes on searching below the part searched.
                bounded = skip == 0 and filters["correlation_id"] is None and any(
                    (filters["type"], filters["min_severity"], filters["source"], acknowledged is not None)
                )
                query = EventQuery(**base, limit=size + 1, offset=skip, after=before, newest_first=True,  # type: ignore[arg-type]
                                   scan_limit=SCAN_ROWS if bounded else None)
                found = await ctx.bus.store.query_events(query)
                more_older = len(found) > size
                found = found[:size]
                more_newer = before is not None or skip > 0
                if bounded and not more_older:
                    store = ctx.bus.store
                    edge = await store.scan_edge(query)
                    if edge is not None:
                        edge_cursor = (edge, "")
                        if await store.query_events(EventQuery(newest_first=True, after=edge_cursor, limit=1)):
                            scanned = edge_cursor[0].isoformat()
                            older = _cursor_text(*edge_cursor)
            rows = [s.to_json_dict() for s in found]
            if found and more_older:
                older = _cursor_text(found[-1].event.timestamp, found[-1].event.id)
            if found and more_newer:
                newer = _cursor_text(found[0].event.timestamp, found[0].event.id)
        except ValueError as exc:
            error = str(exc)
        return self._render(request, "events.html", session, rows=rows, page=page, older=older, newer=newer,
                            filters=filters, ack=ack, error=error, query=_query_without_page(request),
                            scanned=scanned, scan_rows=SCAN_ROWS, page_name="events")

    async def event(self, request: Request, session: Session) -> Response:
        ctx = self._ctx(request)
        event_id = request.path_params["event_id"]
        found = await ctx.bus.store.query_events(EventQuery(event_id=event_id, limit=1))
        if not found:
            return self._render(request, "message.html", session, 404, title="Not found",
                                message=f"No stored event {event_id!r}.")
        stored = found[0]
        dead = await ctx.bus.store.query_dead_letters(DeadLetterQuery(event_id=event_id, limit=100))
        related: list[dict[str, Any]] = []
        cid = stored.event.correlation_id
        if cid is not None:
            same = await ctx.bus.store.query_events(EventQuery(correlation_id=cid, limit=21, newest_first=True))
            related = [s.to_json_dict() for s in same if s.event.id != event_id][:20]
        return self._render(request, "event.html", session, ev=stored.to_json_dict(),
                            dead=[e.to_json_dict() for e in dead], related=related, page_name="events")

    async def dead_letters(self, request: Request, session: Session) -> Response:
        ctx = self._ctx(request)
        admin = Admin(ctx.bus)
        q = request.query_params
        handler = q.get("handler") or None
        reason = q.get("reason") or None
        view = q.get("view", "failed")
        page = self._page_number(request)
        size = self.settings.page_size
        reasons: tuple[str, ...] | None = (
            (reason,) if reason else None if view == "all" else PARKED_REASONS if view == "parked" else FAILED_REASONS
        )
        counts = [await admin.count_dead_letters(handler=handler, reason=r) for r in (reasons or (None,))]
        total = sum(counts)
        error = None
        rows: list[dict[str, Any]] = []
        older = None
        try:
            before = _cursor(q.get("before"), "before")
            # Keyset paging, newest first by (first failure, id): one read along the first_failure_at index.
            found = await ctx.bus.store.query_dead_letters(
                DeadLetterQuery(handler=handler, reasons=reasons, before=before, limit=size + 1)
            )
            if len(found) > size:
                found = found[:size]
                older = _cursor_text(found[-1].first_failure_at, found[-1].id)
            rows = [e.to_json_dict() for e in found]
        except ValueError as exc:
            error = str(exc)
        handlers = sorted(ctx.bus.breakers)
        return self._render(request, "dead_letters.html", session, rows=rows, total=total, page=page,
                            older=older, newer=None, handler=handler, reason=reason, view=view, error=error,
                            handlers=handlers, reasons=PARKED_REASONS + FAILED_REASONS,
                            query=_query_without_page(request), page_name="dead_letters")

    async def dead_letter(self, request: Request, session: Session) -> Response:
        admin = Admin(self._ctx(request).bus)
        try:
            entry = await admin.show_dead_letter(request.path_params["entry_id"])
        except DeadLetterNotFoundError:
            return self._render(request, "message.html", session, 404, title="Not found",
                                message=f"No dead letter {request.path_params['entry_id']!r}.")
        return self._render(request, "dead_letter.html", session, entry=entry, page_name="dead_letters")

    async def analytics(self, request: Request, session: Session) -> Response:
        from ..analytics import find_analytics

        ctx = self._ctx(request)
        handler = find_analytics(ctx.bus)
        if handler is None:
            return self._render(request, "analytics.html", session, report=None, page_name="analytics", bars={},
                                window=None, error=None)
        from ...analytics.errors import AnalyticsWindowError
        from ...analytics.window import resolve_window

        choice = request.query_params.get("window", "shift")
        error = None
        try:
            w = resolve_window(since=None, until=None, window=choice, bucket_s=handler.engine.bucket_s,
                               shift_starts=handler.shift_starts)
        except (AnalyticsWindowError, ValueError) as exc:
            error, choice = str(exc), "day"
            w = resolve_window(since=None, until=None, window="day", bucket_s=handler.engine.bucket_s,
                               shift_starts=handler.shift_starts)
        report = handler.engine.report(w)
        bars = {asset: _state_bar(fig.get("time_in_state_s")) for asset, fig in report["assets"].items()}
        return self._render(request, "analytics.html", session, report=report, bars=bars, window=choice,
                            error=error, page_name="analytics")

    async def breakers(self, request: Request, session: Session) -> Response:
        snap = await self.snapshot(request)
        history = {
            name: [t.to_json_dict() for t in reversed(b.history)]
            for name, b in sorted(self._ctx(request).bus.breakers.items())
        }
        return self._render(request, "breakers.html", session, snap=snap, history=history, page_name="breakers")

    # -- actions --------------------------------------------------------------------------------
    async def ack_events(self, request: Request, session: Session, form: dict[str, list[str]]) -> Response:
        ids = form.get("id", [])
        if not ids:
            return self._render(request, "message.html", session, 400, title="Nothing selected",
                                message="Select the events to acknowledge.")
        n = await Admin(self._ctx(request).bus).acknowledge_events(ids, by="console")
        return self._done(request, session, f"Acknowledged {n} of {len(ids)} event(s).", _one(form, "back"))

    async def replay(self, request: Request, session: Session, form: dict[str, list[str]]) -> Response:
        admin = Admin(self._ctx(request).bus)
        ids = form.get("id", [])
        handler = _one(form, "handler")
        if not ids and not handler:
            return self._render(request, "message.html", session, 400, title="Nothing selected",
                                message="Select dead letters, or a handler to replay all of its entries.")
        try:
            report = await admin.replay_dead_letters(ids or None, handler=None if ids else handler)
        except DeadLetterNotFoundError as exc:
            return self._render(request, "message.html", session, 404, title="Not found", message=str(exc))
        text = f"Replayed {report['replayed']}: {report['succeeded']} succeeded, {report['failed']} failed again."
        return self._done(request, session, text, _one(form, "back"))

    async def purge(self, request: Request, session: Session, form: dict[str, list[str]]) -> Response:
        if _one(form, "confirm") != "yes":
            return self._render(request, "message.html", session, 400, title="Not confirmed",
                                message="Purging deletes dead letters for good; confirm it.")
        ids = form.get("id", [])
        handler = _one(form, "handler")
        if not ids and not handler:
            return self._render(request, "message.html", session, 400, title="Nothing selected",
                                message="Select dead letters, or a handler.")
        n = await Admin(self._ctx(request).bus).purge_dead_letters(ids or None, handler=None if ids else handler)
        return self._done(request, session, f"Deleted {n} dead letter(s).", _one(form, "back"))

    async def force_breaker(self, request: Request, session: Session, form: dict[str, list[str]]) -> Response:
        name, state = _one(form, "handler") or "", _one(form, "state") or ""
        try:
            await Admin(self._ctx(request).bus).force_breaker(name, state)
        except (KeyError, ValueError) as exc:
            return self._render(request, "message.html", session, 400, title="Refused", message=str(exc))
        return self._done(request, session, f"Circuit of {name} forced {state}.", "/console/breakers")

    def _done(self, request: Request, session: Session, text: str, back: str | None) -> Response:
        target = back if back and back.startswith("/") and not back.startswith("//") else "/"
        return self._render(request, "message.html", session, title="Done", message=text, back=target)

    # -- live -----------------------------------------------------------------------------------
    async def stream(self, request: Request) -> Response:
        session = self.signer.session(request)
        if session is None:
            return Response("log in first", 401)

        async def events() -> AsyncIterator[bytes]:
            last = ""
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected():
                snap = await self.snapshot(request)
                fragments = {
                    "board": _env.get_template("_board.html").render(snap=snap),
                    "overview": _env.get_template("_overview.html").render(snap=snap),
                    "attention": _env.get_template("_attention.html").render(snap=snap),
                }
                digest = hashlib.sha256(json.dumps(fragments, sort_keys=True).encode()).hexdigest()
                if digest != last:
                    last = digest
                    yield f"event: snapshot\ndata: {json.dumps(fragments)}\n\n".encode()
                await asyncio.sleep(self.settings.live_interval)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def _state_bar(time_in_state: dict[str, float] | None, width: float = 300.0) -> list[dict[str, Any]]:
    """Segments of a horizontal bar (SVG ``x``/``width`` in px) for seconds per SEMI E10 category."""
    if not time_in_state:
        return []
    total = sum(v for v in time_in_state.values() if v) or 1.0
    out, x = [], 0.0
    for code in ("PRD", "SBY", "ENG", "SDT", "USD", "NST"):
        seconds = time_in_state.get(code) or 0.0
        if seconds > 0:
            w = width * seconds / total
            out.append({"code": code, "x": round(x, 1), "width": round(w, 1), "seconds": seconds})
            x += w
    return out


def _one(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def _when(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not an ISO 8601 date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _query_without_page(request: Request) -> str:
    """The query string without the paging parameters (``before``, ``after``, ``n``, ``page``)."""
    paging = ("before", "after", "n", "page")
    return urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in paging])


def _cursor_text(ts: datetime, row_id: str) -> str:
    """A keyset cursor as it goes in a URL: ``<ISO 8601 time>|<id>``."""
    return f"{ts.isoformat()}|{row_id}"


def _cursor(text: str | None, name: str) -> tuple[datetime, str] | None:
    """Parse ``_cursor_text``'s form. Raises ``ValueError`` naming the parameter for anything else."""
    if not text:
        return None
    stamp, sep, row_id = text.partition("|")  # an empty id: strictly before (after) that time
    if not sep:
        raise ValueError(f"{name}: {text!r} is not a page cursor (<time>|<id>)")
    when = _when(stamp, name)
    assert when is not None
    return when, row_id


def console_routes(settings: ConsoleSettings, bus: Any = None) -> list[BaseRoute]:
    """The console's routes: ``/`` (overview), ``/console/board``, ``/console/events[/{id}]``,
    ``/console/dead-letters[/{id}]``, ``/console/breakers``, the login form, the actions (POST) and the
    live stream ``/console/stream``; static assets under ``/console/static``.

    Args:
        settings: ``[http.console]``.
        bus: the app's ``EventBus``: given (and called in a running event loop), the overview's rate
            sampler starts now rather than at the first console request.

    Raises:
        ValueError: ``settings.enabled`` is False (the app serves no console then).
    """
    if not settings.enabled:
        raise ValueError("the console is not enabled ([http.console] enabled = true)")
    c = Console(settings)
    if bus is not None:
        c.ensure_sampler(bus)
    return [
        Route("/", c.page(c.overview), methods=["GET"]),
        Route("/console/login", c.login_form, methods=["GET"]),
        Route("/console/login", c.login, methods=["POST"]),
        Route("/console/logout", c.logout, methods=["POST"]),
        Route("/console/board", c.page(c.board), methods=["GET"]),
        Route("/console/events", c.page(c.events), methods=["GET"]),
        Route("/console/events/ack", c.action(c.ack_events), methods=["POST"]),
        Route("/console/events/{event_id:path}", c.page(c.event), methods=["GET"]),
        Route("/console/dead-letters", c.page(c.dead_letters), methods=["GET"]),
        Route("/console/dead-letters/replay", c.action(c.replay), methods=["POST"]),
        Route("/console/dead-letters/purge", c.action(c.purge), methods=["POST"]),
        Route("/console/dead-letters/{entry_id}", c.page(c.dead_letter), methods=["GET"]),
        Route("/console/breakers", c.page(c.breakers), methods=["GET"]),
        Route("/console/analytics", c.page(c.analytics), methods=["GET"]),
        Route("/console/breakers/force", c.action(c.force_breaker), methods=["POST"]),
        Route("/console/stream", c.stream, methods=["GET"]),
        Mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static"),
    ]
