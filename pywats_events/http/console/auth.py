"""Console sessions: log in with a token, a signed HttpOnly SameSite=Strict cookie, roles, CSRF.

The token is typed into the login form once and never appears in a page, a URL or the cookie: the cookie
holds only the role, a random session id and the CSRF token, signed with ``itsdangerous`` (HMAC-SHA1 over
a timestamped payload) so it cannot be forged or extended. Every state-changing request is a POST that
must carry the session's CSRF token in its form and come from the same origin.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from .settings import ConsoleSettings

__all__ = ["COOKIE", "Role", "Session", "SessionSigner"]

COOKIE = "pywats_console"


class Role(StrEnum):
    """What a logged-in user may do: ``viewer`` reads, ``admin`` also acts."""

    VIEWER = "viewer"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: its role and the CSRF token its forms must carry."""

    role: Role
    csrf: str

    @property
    def admin(self) -> bool:
        """True for the admin role."""
        return self.role is Role.ADMIN


class SessionSigner:
    """Issues and checks session cookies for one console.

    Args:
        settings: the console settings (tokens, secret, lifetime in seconds).
    """

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_hex(32)
        self._serializer = URLSafeTimedSerializer(secret, salt="pywats-events-console")

    def role_for(self, token: str) -> Role | None:
        """The role a typed token grants, or ``None`` (compared in constant time)."""
        given = token.encode()
        if any(hmac.compare_digest(given, t.get_secret_value().encode()) for t in self.settings.admin_tokens):
            return Role.ADMIN
        if any(hmac.compare_digest(given, t.get_secret_value().encode()) for t in self.settings.viewer_tokens):
            return Role.VIEWER
        return None

    def login(self, response: Response, role: Role, request: Request) -> Session:
        """Set a new session cookie for ``role`` on ``response``; returns the session."""
        session = Session(role, secrets.token_urlsafe(24))
        value = self._serializer.dumps({"r": role.value, "c": session.csrf, "s": secrets.token_hex(8)})
        response.set_cookie(
            COOKIE, value, max_age=self.settings.session_max_age, path="/", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )
        return session

    @staticmethod
    def logout(response: Response) -> None:
        """Remove the session cookie."""
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")

    def session(self, request: Request) -> Session | None:
        """The request's valid session, or ``None`` (no cookie, tampered, expired)."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.settings.session_max_age)
            return Session(Role(data["r"]), str(data["c"]))
        except (BadSignature, KeyError, ValueError, TypeError):
            return None

    @staticmethod
    def same_origin(request: Request) -> bool:
        """True when the request's ``Origin`` (or, without one, ``Referer``) is this server."""
        origin = request.headers.get("origin") or request.headers.get("referer")
        if not origin:
            return False
        here = f"{request.url.scheme}://{request.url.netloc}"
        return origin == here or origin.startswith(here + "/")

    @staticmethod
    def csrf_ok(session: Session, submitted: str | None) -> bool:
        """True when ``submitted`` is the session's CSRF token."""
        return submitted is not None and hmac.compare_digest(submitted.encode(), session.csrf.encode())
