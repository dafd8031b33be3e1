"""Console access rules through the real app (httpx in-process ASGI): off by default, login with a token,
a signed HttpOnly SameSite=Strict cookie, CSRF and same-origin on every action, roles."""

from __future__ import annotations

import re

import httpx
import pytest
from pydantic import ValidationError

from pywats_events import Event, EventBus, MemoryStore
from pywats_events.http.app import create_app
from pywats_events.http.console import ConsoleSettings
from pywats_events.http.settings import HTTPSettings

ADMIN, VIEWER = "admin-secret-1", "viewer-secret-1"
BASE = "http://console.test"


def settings(**console: object) -> HTTPSettings:
    return HTTPSettings(console=ConsoleSettings(**console))  # type: ignore[arg-type]


async def logged_in(client: httpx.AsyncClient, token: str) -> str:
    r = await client.post("/console/login", data={"token": token, "next": "/"})
    assert r.status_code == 303 and r.headers["location"] == "/"
    page = await client.get("/console/events")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def test_console_enabled_without_tokens_is_refused() -> None:
    with pytest.raises(ValidationError, match="nobody could log in"):
        ConsoleSettings(enabled=True)
    with pytest.raises(ValidationError, match="at least 8 characters"):
        ConsoleSettings(enabled=True, admin_tokens=["short"])  # type: ignore[list-item]


async def test_console_is_off_by_default_and_says_how_to_turn_it_on() -> None:
    bus = EventBus(MemoryStore())
    app = create_app(bus, HTTPSettings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        r = await client.get("/")
        assert r.status_code == 404
        assert "[http.console] enabled = true" in r.text
        assert (await client.get("/console/board")).status_code == 404


async def test_pages_need_a_login_and_the_cookie_holds_no_token() -> None:
    bus = EventBus(MemoryStore())
    app = create_app(bus, settings(enabled=True, admin_tokens=[ADMIN], viewer_tokens=[VIEWER]))
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        r = await client.get("/console/dead-letters")
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
        bad = await client.post("/console/login", data={"token": "wrong-token-x"})
        assert bad.status_code == 401 and "Unknown token." in bad.text
        r = await client.post("/console/login", data={"token": ADMIN, "next": "//evil.example/"})
        assert r.headers["location"] == "/"  # no open redirect
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert ADMIN not in cookie
        overview = await client.get("/")
        assert overview.status_code == 200 and ADMIN not in overview.text
        assert "default-src 'self'" in overview.headers["content-security-policy"]
        client.cookies.set("pywats_console", client.cookies["pywats_console"] + "x")  # tampered
        assert (await client.get("/")).status_code == 303


async def test_actions_need_csrf_same_origin_and_the_admin_role() -> None:
    bus = EventBus(MemoryStore())
    bus.add_event_store()
    app = create_app(bus, settings(enabled=True, admin_tokens=[ADMIN], viewer_tokens=[VIEWER]))
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        ev = Event(type="asset.fault", source="st-1")
        await bus.publish(ev)
        csrf = await logged_in(client, ADMIN)
        same = {"origin": BASE}
        r = await client.post("/console/events/ack", data={"csrf": "forged", "id": ev.id}, headers=same)
        assert r.status_code == 403 and "CSRF" in r.text
        r = await client.post("/console/events/ack", data={"csrf": csrf, "id": ev.id},
                              headers={"origin": "http://evil.example"})
        assert r.status_code == 403
        r = await client.post("/console/events/ack", data={"csrf": csrf, "id": ev.id}, headers=same)
        assert r.status_code == 200 and "Acknowledged 1 of 1 event(s)." in r.text

        await client.post("/console/logout")
        csrf = await logged_in(client, VIEWER)
        r = await client.post("/console/dead-letters/purge", data={"csrf": csrf, "handler": "x", "confirm": "yes"},
                              headers=same)
        assert r.status_code == 403 and "Admin role needed" in r.text


async def test_purge_needs_confirmation_and_listings_page_on_the_server() -> None:
    bus = EventBus(MemoryStore())
    bus.add_event_store()
    app = create_app(bus, settings(enabled=True, admin_tokens=[ADMIN], page_size=5))
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        for i in range(12):
            await bus.publish(Event(type="test.result", source=f"st-{i:02d}"))
        csrf = await logged_in(client, ADMIN)
        first = await client.get("/console/events?type=test.*")
        assert "page 1, newest first" in first.text and 'rel="next"' in first.text
        assert first.text.count('name="id"') == 5 and "st-11" in first.text and "st-06" not in first.text
        last = await client.get("/console/events?type=test.*&page=3")
        assert last.text.count('name="id"') == 2 and "st-00" in last.text
        assert 'rel="next"' not in last.text  # no older page after the oldest event
        r = await client.post("/console/dead-letters/purge", data={"csrf": csrf, "handler": "x"},
                              headers={"origin": BASE})
        assert r.status_code == 400 and "confirm" in r.text
