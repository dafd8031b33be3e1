"""The operator console: server-rendered pages (Jinja2) at ``/`` with live updates over server-sent
events, served by the same HTTP server as the API. Off unless ``[http.console] enabled = true``.

Pages: overview (transports, breakers, queue depth, dead letters, active faults, rates over the last
minute; red when a person is needed), line / lab board (SEMI E10 category colours, Biosero module
status), events (filter incl. correlation id, keyset paging, acknowledge) and one event (payload,
headers, its dead letters, same correlation id), dead letters (failed apart from parked; replay one,
selected or all of a handler; purge with confirmation), circuit breakers (history; force open / closed).
Assets ship in the wheel; no build step.
"""

from typing import Any

from .auth import Role, Session, SessionSigner
from .settings import ConsoleSettings

__all__ = ["ConsoleSettings", "Role", "Session", "SessionSigner", "console_routes"]


def __getattr__(name: str) -> Any:
    # The views import the HTTP context, which imports the HTTP settings, which import ConsoleSettings
    # from here: loading the views lazily keeps that chain free of cycles.
    if name == "console_routes":
        from .views import console_routes

        return console_routes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
