"""``/docs``: Swagger UI from the shipped swagger-ui-bundle assets renders the served document in a real
headless Chromium under the page's strict Content-Security-Policy, with nothing fetched from elsewhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pywats_events.http.docs import DOCS_CSP

from .test_contract import ThreadedService

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def service() -> Iterator[ThreadedService]:
    with ThreadedService() as svc:
        yield svc


def test_docs_page_and_its_assets_are_served_with_no_inline_script(service: ThreadedService) -> None:
    page = httpx.get(f"{service.url}/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_CSP
    assert "<script>" not in page.text  # every script has a src (CSP: 'self' only)
    for asset in ("/docs/init.js", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        answer = httpx.get(f"{service.url}{asset}", timeout=10)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100, asset
    assert "/openapi.json" in httpx.get(f"{service.url}/docs/init.js", timeout=10).text
    assert httpx.get(f"{service.url}/docs/assets/../app.py", timeout=10).status_code == 404


def test_swagger_ui_renders_every_operation_in_chromium_without_csp_violations(service: ThreadedService) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("headless Chromium is missing: apt-get install chromium (.ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    foreign: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request", lambda r: foreign.append(r.url) if not r.url.startswith((service.url, "data:")) else None
            )
            page.goto(f"{service.url}/docs")
            expect(page.locator(".opblock-summary-path").first).to_be_visible(timeout=30_000)
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            # the schema generated from the Event model is among the rendered components
            expect(page.locator(".model-container", has_text="Event").first).to_be_attached()
        finally:
            browser.close()
    cleaned = {p.replace("\u200b", "") for p in paths}
    assert {"/events", "/cfx", "/api/v2.0/EventService", "/admin/dead-letters", "/openapi.json"} <= cleaned
    assert not problems, problems  # a CSP refusal shows up as a console error
    assert not foreign, foreign


async def test_without_swagger_ui_bundle_docs_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from starlette.applications import Starlette

    from pywats_events.http.docs import docs_routes

    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # import fails as if not installed
    app = Starlette(routes=docs_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        answer = await client.get("/docs")
    assert answer.status_code == 404
    assert "pip install 'pywats-events[http]'" in answer.json()["detail"]
