"""The operator console clicked through in a real headless Chromium (Debian's ``chromium``, driven by
Playwright), against a real ``pywats-events run`` consuming IPC-CFX from the real RabbitMQ.

An operator logs in, watches a station turn red live when a CFX ``FaultOccurred`` arrives over AMQP,
opens the dead letter the fault caused (the pager handler is down), replays it once the handler is fixed
and sees it succeed, acknowledges an event, and with the read-only token is refused an admin action.
Each page's screenshot is written to ``docs/console/`` (linked from the README).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.services import AMQP_URL, RABBITMQ, require_service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
SHOTS = REPO / "docs" / "console"
CLI = Path(sys.executable).parent / "pywats-events"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ADMIN, VIEWER = "admin-token-4f2a9c", "viewer-token-77b1e0"

PAGER = '''
from pathlib import Path
from pywats_events import BaseHandler

class FlakyPager(BaseHandler):
    """Pages the line lead on faults; "down" until the fixed flag file exists."""
    name = "pager"
    event_types = ("asset.fault",)
    flag = Path(__file__).with_name("pager-fixed")

    async def handle(self, event):
        if not self.flag.exists():
            raise RuntimeError("pager gateway unreachable")
        Path(__file__).with_name("paged.txt").write_text(event.id)
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fault_envelope(source: str) -> bytes:
    env = json.loads((REPO / "samples/cfx/CFX.ResourcePerformance.FaultOccurred__1.json").read_text())
    env["Source"] = source
    env["UniqueID"] = str(uuid.uuid4())
    env["MessageBody"]["Fault"]["FaultOccurrenceId"] = str(uuid.uuid4())
    env["MessageBody"]["Fault"]["Description"] = "Nozzle vacuum lost"
    now = datetime.now(UTC).isoformat()
    env["TimeStamp"] = env["MessageBody"]["Fault"]["OccurredAt"] = now
    return json.dumps(env).encode()


async def publish(exchange: str, routing_key: str, body: bytes) -> None:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel(publisher_confirms=True)
        ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        await ex.publish(aio_pika.Message(body, content_type="application/json"), routing_key)


async def cleanup(exchange: str, queue: str) -> None:
    import aio_pika

    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        ch = await conn.channel()
        for q in (queue, f"{queue}.dead-letter"):
            await ch.queue_delete(q)
        await ch.exchange_delete(exchange)
        await ch.exchange_delete(f"{queue}.dead-letter")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A running ``pywats-events run`` with CFX over AMQP, the status board, the event store, a flaky
    pager handler and the console on a free port."""
    require_service("RabbitMQ", RABBITMQ)
    if not Path(CHROMIUM).exists():
        pytest.fail("headless Chromium is missing: apt-get install chromium (.ci/run installs it)")
    tag = uuid.uuid4().hex[:8]
    exchange, queue, port = f"console-{tag}", f"console-{tag}", free_port()
    (tmp_path / "pager_handlers.py").write_text(PAGER)
    cfg = tmp_path / "pywats-events.toml"
    cfg.write_text(f"""
db = "sqlite:///{tmp_path / 'events.db'}"
[bus.retry]
max_attempts = 1
[[transports]]
kind = "cfx"
url = "{AMQP_URL}"
exchange = "{exchange}"
queue = "{queue}"
[[handlers]]
kind = "status-board"
[[handlers]]
kind = "event-store"
[[handlers]]
kind = "analytics"
[[handlers]]
kind = "python"
target = "pager_handlers:FlakyPager"
[http]
port = {port}
[http.console]
enabled = true
admin_tokens = ["{ADMIN}"]
viewer_tokens = ["{VIEWER}"]
live_interval = 0.2
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYWATS_EVENTS_", "PYWATS_HTTP_"))}
    env["PYTHONPATH"] = str(tmp_path)
    proc = subprocess.Popen([str(CLI), "run", "--config", str(cfg)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    import httpx

    while True:
        assert proc.poll() is None, f"run exited: {proc.communicate()[1]}"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the service did not become ready within 60 s"
        time.sleep(0.2)
    try:
        yield {"base": base, "exchange": exchange, "folder": tmp_path}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        asyncio.run(cleanup(exchange, queue))


def run_async(coro: Any) -> Any:
    """Run ``coro`` on a fresh loop in another thread (Playwright's sync API owns this thread's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(60)


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def login(page: Any, base: str, token: str) -> None:
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/console/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_operator_sees_a_fault_live_replays_its_dead_letter_and_viewer_is_refused(service: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, station = service["base"], f"SMT.Line{uuid.uuid4().hex[:4]}.Placer1"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        # a wrong token is refused on the form
        page.goto(f"{base}/console/login")
        page.fill("input[name=token]", "not-a-token-at-all")
        page.click("button[type=submit]")
        expect(page.locator(".error")).to_have_text("Unknown token.")
        shot(page, "login")

        login(page, base, ADMIN)
        expect(page.locator(".all-good")).to_be_visible()
        cookie = next(c for c in page.context.cookies() if c["name"] == "pywats_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert ADMIN not in cookie["value"] and ADMIN not in page.content()
        shot(page, "overview")

        # the board is open when the fault arrives over AMQP: the station turns red without a reload
        page.goto(f"{base}/console/board")
        run_async(publish(service["exchange"], f"{station}.CFX.ResourcePerformance.FaultOccurred",
                            fault_envelope(station)))
        card = page.locator(f'article[data-asset="{station}"]')
        expect(card).to_have_class("asset state usd", timeout=15_000)
        expect(card.locator(".fault")).to_contain_text("Nozzle vacuum lost")
        shot(page, "board")

        # the overview says a person is needed: the pager's delivery failed
        page.goto(f"{base}/")
        expect(page.locator(".attention")).to_contain_text("dead letter(s) failed", timeout=15_000)
        expect(page.locator(".attention")).to_contain_text(f"fault on {station}")

        # open the dead letter the fault caused
        page.goto(f"{base}/console/dead-letters")
        row = page.locator("tr.reason-failed", has_text="pager")
        expect(row).to_have_count(1)
        row.locator("a").click()
        expect(page.locator("#error")).to_have_text("RuntimeError: pager gateway unreachable")
        expect(page.locator("pre.traceback")).to_contain_text("pager gateway unreachable")
        shot(page, "dead-letter")

        # fix the handler, replay from the page, see it succeed
        (service["folder"] / "pager-fixed").write_text("yes")
        page.click("#replay")
        expect(page.locator("#message")).to_have_text("Replayed 1: 1 succeeded, 0 failed again.")
        assert (service["folder"] / "paged.txt").read_text()
        page.goto(f"{base}/console/dead-letters")
        expect(page.locator("tr.reason-failed")).to_have_count(0)
        shot(page, "dead-letters")

        # acknowledge the fault event
        page.goto(f"{base}/console/events?type=asset.fault&acknowledged=no")
        page.locator("tbody input[name=id]").first.check()
        page.click("button[value=ack]")
        expect(page.locator("#message")).to_have_text("Acknowledged 1 of 1 event(s).")
        page.goto(f"{base}/console/events?type=asset.fault&acknowledged=no")
        expect(page.locator("tbody input[name=id]")).to_have_count(0)
        page.goto(f"{base}/console/events")
        shot(page, "events")
        page.goto(f"{base}/console/breakers")
        expect(page.locator("td", has_text="pager").first).to_be_visible()
        shot(page, "breakers")

        # analytics: the station's state history as an E10 bar, its fault counted
        state = json.loads((REPO / "samples/cfx/CFX.ResourcePerformance.StationStateChanged__1.json").read_text())
        state["Source"], state["UniqueID"] = station, str(uuid.uuid4())
        state["TimeStamp"] = datetime.now(UTC).isoformat()
        run_async(publish(service["exchange"], f"{station}.CFX.ResourcePerformance.StationStateChanged",
                          json.dumps(state).encode()))
        row = page.locator(f'tr[data-asset="{station}"]')
        for _ in range(50):
            page.goto(f"{base}/console/analytics?window=day")
            if row.count() and row.locator("svg.bar rect").count():
                break
            time.sleep(0.2)
        expect(row.locator("svg.bar rect").first).to_be_visible()
        expect(row.locator("td").nth(6)).to_have_text("1")  # faults
        shot(page, "analytics")

        # log out; the read-only token sees the pages but is refused every action
        page.click("text=Log out")
        login(page, base, VIEWER)
        page.goto(f"{base}/console/events?type=asset.fault")
        expect(page.locator("button[value=ack]")).to_have_count(0)  # no admin buttons are offered
        page.locator("tbody input[name=id]").first.check()
        page.evaluate("document.querySelector('form[action=\"/console/events/ack\"]').submit()")
        expect(page.locator("h1")).to_have_text("Admin role needed")
        browser.close()


def cfx_sample(name: str, source: str, transaction: str) -> bytes:
    env = json.loads((REPO / f"samples/cfx/{name}__1.json").read_text())
    env["Source"], env["UniqueID"] = source, str(uuid.uuid4())
    env["TimeStamp"] = datetime.now(UTC).isoformat()
    env["MessageBody"]["TransactionID"] = transaction
    return json.dumps(env).encode()


def test_event_detail_correlation_filter_and_breaker_history(service: dict[str, Any]) -> None:
    """The event detail page (payload, headers, the event's dead letter), the correlation-id filter and
    the links between events of one transaction, and the breakers page's history after forcing a
    breaker open and closed with its buttons."""
    from playwright.sync_api import expect, sync_playwright

    base, exchange = service["base"], service["exchange"]
    station = f"SMT.Line{uuid.uuid4().hex[:4]}.Placer2"
    tx, other_tx = str(uuid.uuid4()), str(uuid.uuid4())
    run_async(publish(exchange, f"{station}.CFX.ResourcePerformance.FaultOccurred", fault_envelope(station)))
    for name, transaction in (("CFX.Production.WorkStarted", tx), ("CFX.Production.WorkCompleted", tx),
                              ("CFX.Production.WorkStarted", other_tx)):
        run_async(publish(exchange, f"{station}.{name}", cfx_sample(name, station, transaction)))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        login(page, base, ADMIN)

        # the fault event, opened from the events list: payload, headers, and the pager's dead letter
        rows = page.locator("tbody tr.sev-error", has_text="asset.fault")
        for _ in range(75):
            page.goto(f"{base}/console/events?type=asset.fault&source={station}")
            if rows.count() and page.locator("tbody", has_text="asset.fault").count():
                break
            time.sleep(0.2)
        page.goto(f"{base}/console/events?type=asset.fault&source={station}")
        page.locator("tbody a[data-event-link]").first.click()
        expect(page.locator("#ev-type")).to_have_text("asset.fault")
        expect(page.locator("#ev-payload")).to_contain_text("Nozzle vacuum lost")
        expect(page.locator("#ev-headers")).to_contain_text("FaultOccurred")
        dead = page.locator("#ev-dead-letters tbody tr", has_text="pager")
        expect(dead).to_have_count(1, timeout=15_000)
        expect(dead).to_contain_text("RuntimeError: pager gateway unreachable")
        shot(page, "event")
        dead.locator("a").click()  # to the dead letter itself
        expect(page.locator("#error")).to_have_text("RuntimeError: pager gateway unreachable")

        # the correlation filter: both events of the transaction, not the other transaction's
        page.goto(f"{base}/console/events")
        page.fill("input[name=correlation_id]", tx)
        page.click("form.filters button[type=submit]")
        listed = page.locator("tbody input[name=id]")
        expect(listed.first).to_be_visible()
        count = listed.count()
        assert count >= 2, count
        expect(page.locator("tbody")).not_to_contain_text(other_tx)
        expect(page.locator("tbody")).to_contain_text("production.work_started")
        expect(page.locator("tbody")).to_contain_text("production.work_completed")
        shot(page, "events-correlation")
        # from one of them, the same-correlation table links to the others
        page.locator("tbody a[data-event-link]").first.click()
        expect(page.locator("#ev-correlation")).to_have_text(tx)
        expect(page.locator("#ev-related tbody tr")).to_have_count(count - 1)
        page.locator("#ev-correlation a").click()
        expect(page.locator("tbody input[name=id]")).to_have_count(count)

        # breaker history: force the pager's breaker open and closed from the page
        page.goto(f"{base}/console/breakers")
        row = page.locator("tr", has=page.locator("td", has_text="pager")).first
        row.locator("button[value=open]").click()
        expect(page.locator("#message")).to_have_text("Circuit of pager forced open.")
        page.goto(f"{base}/console/breakers")
        page.locator("tr", has=page.locator("td", has_text="pager")).first.locator("button[value=closed]").click()
        page.goto(f"{base}/console/breakers")
        history = page.locator('table.history[data-handler="pager"] tbody tr')
        expect(history).to_have_count(2)
        expect(history.nth(0)).to_contain_text("open")
        expect(history.nth(0)).to_contain_text("forced closed by an operator")
        expect(history.nth(1)).to_contain_text("forced open by an operator")
        shot(page, "breakers")

        # the overview's rates over the last minute: a fault arrives now (and the pager, still down,
        # dead-letters it)
        run_async(publish(exchange, f"{station}.CFX.ResourcePerformance.FaultOccurred", fault_envelope(station)))
        page.goto(f"{base}/")
        nonzero = re.compile(r"^(0\.0?[1-9]|[1-9])[\d.,]*/s$")  # the rates update live (SSE)
        expect(page.locator("#rate-in")).to_have_text(nonzero, timeout=15_000)
        expect(page.locator("#rate-dead")).to_have_text(nonzero)
        shot(page, "overview")
        browser.close()
