"""Console pages added for issue 17 through the real app (httpx in-process ASGI), on the memory store and
on a SQLite store: the event detail page (payload, headers, correlation id, the event's dead letters,
events of the same correlation), the correlation-id filter, keyset paging of events and dead letters in
both directions, a malformed cursor refused with a message, breaker history, and the overview's rates."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path

import httpx
import pytest

from pywats_events import BreakerPolicy, Event, EventBus, MemoryStore, RetryPolicy
from pywats_events.http.app import create_app
from pywats_events.http.console import ConsoleSettings
from pywats_events.http.console.views import RateMeter
from pywats_events.http.settings import HTTPSettings
from pywats_events.sql_store import SQLStore
from pywats_events.store import DeadLetterEntry, Store

ADMIN = "admin-secret-1"
BASE = "http://console.test"
T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    yield MemoryStore() if request.param == "memory" else SQLStore(str(tmp_path / "console.db"))


def make_app(bus: EventBus, page_size: int = 5) -> object:
    settings = HTTPSettings(console=ConsoleSettings(enabled=True, admin_tokens=[ADMIN], page_size=page_size))  # type: ignore[list-item]
    return create_app(bus, settings)


@contextlib.asynccontextmanager
async def client_for(app: object) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:  # type: ignore[arg-type]
        r = await client.post("/console/login", data={"token": ADMIN, "next": "/"})
        assert r.status_code == 303
        yield client


def ids_on(html: str) -> list[str]:
    """Event ids of the listing's rows, in page order."""
    return re.findall(r'name="id" value="([^"]+)"', html)


def link(html: str, which: str) -> str | None:
    m = re.search(rf'href="([^"]*)"[^>]*data-pager="{which}"', html)
    return unescape(m.group(1)) if m else None


async def test_events_pages_follow_keyset_cursors_both_ways(store: Store) -> None:
    bus = EventBus(store)
    async with bus:
        evs = [Event(id=f"ev-{i:02d}", type="unit.tested", source="ict-1", timestamp=T0 + timedelta(seconds=i // 2))
               for i in range(12)]  # pairs share a timestamp: the id breaks the tie
        await store.append_events(evs)
        async with client_for(make_app(bus)) as client:
            first = (await client.get("/console/events")).text
            assert ids_on(first) == ["ev-11", "ev-10", "ev-09", "ev-08", "ev-07"]
            assert link(first, "newer") is None
            second = (await client.get("/console/events" + link(first, "older"))).text  # type: ignore[operator]
            assert ids_on(second) == ["ev-06", "ev-05", "ev-04", "ev-03", "ev-02"]
            assert "page 2" in second
            third = (await client.get("/console/events" + link(second, "older"))).text  # type: ignore[operator]
            assert ids_on(third) == ["ev-01", "ev-00"] and link(third, "older") is None
            back = (await client.get("/console/events" + link(third, "newer"))).text  # type: ignore[operator]
            assert ids_on(back) == ids_on(second)
            top = (await client.get("/console/events" + link(back, "newer"))).text  # type: ignore[operator]
            assert ids_on(top) == ids_on(first) and link(top, "newer") is None
            bad = await client.get("/console/events?before=yesterday")
            assert bad.status_code == 200 and "before: &#39;yesterday&#39; is not a page cursor" in bad.text


async def test_correlation_filter_and_event_detail_with_its_dead_letters(store: Store) -> None:
    bus = EventBus(store)

    @bus.subscribe("unit.*", name="mes", retry=RetryPolicy(max_attempts=1), breaker=BreakerPolicy(enabled=False))
    async def mes(event: Event) -> None:
        if event.payload.get("bad"):
            raise RuntimeError("MES refused serial")

    bus.add_event_store()
    async with bus:
        tx = [Event(type="unit.tested", source="ict-1", correlation_id="tx-42", payload={"serial": "SN1", "bad": True},
                    headers={"routing_key": "ict-1.UnitsTested"}, timestamp=T0),
              Event(type="unit.packed", source="pack-1", correlation_id="tx-42", timestamp=T0 + timedelta(seconds=1))]
        other = Event(type="unit.tested", source="ict-1", correlation_id="tx-7", timestamp=T0 + timedelta(seconds=2))
        for ev in (*tx, other):
            await bus.publish(ev)
        async with client_for(make_app(bus)) as client:
            page = (await client.get("/console/events", params={"correlation_id": "tx-42", "type": "unit.*"})).text
            assert ids_on(page) == [tx[1].id, tx[0].id]
            # The bus's system.dead_letter notice carries the correlation id too.
            everything = (await client.get("/console/events", params={"correlation_id": "tx-42"})).text
            assert len(ids_on(everything)) == 3 and other.id not in ids_on(everything)
            assert f'href="/console/events/{tx[0].id}"' in page  # the list links to the detail page
            detail = await client.get(f"/console/events/{tx[0].id}")
            assert detail.status_code == 200
            html = unescape(detail.text)
            assert '"serial": "SN1"' in html and '"routing_key": "ict-1.UnitsTested"' in html
            assert 'href="/console/events?correlation_id=tx-42"' in html
            dead = re.search(r'<table class="rows" id="ev-dead-letters">(.*?)</table>', html, re.S)
            assert dead and "RuntimeError: MES refused serial" in dead.group(1) and "mes" in dead.group(1)
            related = re.search(r'id="ev-related">(.*?)</table>', html, re.S)
            assert related and tx[1].id in related.group(1) and other.id not in related.group(1)
            clean = unescape((await client.get(f"/console/events/{tx[1].id}")).text)
            assert "none: every handler took it" in clean
            missing = await client.get("/console/events/no-such-event")
            assert missing.status_code == 404 and "No stored event" in missing.text


async def test_dead_letter_pages_are_keyset_paged_newest_first(store: Store) -> None:
    bus = EventBus(store)
    async with bus:
        entries = [DeadLetterEntry(id=f"dl-{i:02d}", reason="failed" if i % 3 else "circuit_open", handler="wats",
                                   event=Event(type="unit.tested", source="s"), error_type="E", error_message=str(i),
                                   first_failure_at=T0 + timedelta(seconds=i),
                                   last_failure_at=T0 + timedelta(seconds=i))
                   for i in range(14)]
        await store.add_dead_letters(entries)
        failed = [e.id for e in reversed(entries) if e.reason == "failed"]  # 9, newest first
        async with client_for(make_app(bus)) as client:
            first = (await client.get("/console/dead-letters")).text
            assert ids_on(first) == failed[:5] and "9 in all" in first
            second = (await client.get("/console/dead-letters" + link(first, "older"))).text  # type: ignore[operator]
            assert ids_on(second) == failed[5:] and link(second, "older") is None
            parked = (await client.get("/console/dead-letters?view=parked")).text
            assert ids_on(parked) == [e.id for e in reversed(entries) if e.reason == "circuit_open"]


async def test_breaker_history_on_the_breakers_page() -> None:
    bus = EventBus(MemoryStore())

    @bus.subscribe("unit.*", name="wats", retry=RetryPolicy(max_attempts=1),
                   breaker=BreakerPolicy(failure_threshold=2, reset_timeout=60))
    async def wats(event: Event) -> None:
        raise ConnectionError("WATS down")

    async with bus:
        for _ in range(2):
            await bus.publish(Event(type="unit.tested", source="s"))
        bus.force_breaker("wats", "closed")
        history = [t.to_json_dict() for t in bus.breakers["wats"].history]
        assert [(t["from"], t["to"]) for t in history] == [("closed", "open"), ("open", "closed")]
        assert history[0]["reason"] == "2 consecutive failures (threshold 2)"
        assert history[0]["consecutive_failures"] == 2
        async with client_for(make_app(bus)) as client:
            html = (await client.get("/console/breakers")).text
        table = re.search(r'data-handler="wats">(.*?)</table>', html, re.S)
        assert table
        rows = re.findall(r"<tr class[^>]*><td>[^<]+</td><td>(\w+)</td><td>(\w+)</td><td>([^<]+)</td>", table.group(1))
        assert rows == [("open", "closed", "forced closed by an operator"),
                        ("closed", "open", "2 consecutive failures (threshold 2)")]


def test_breaker_history_is_a_bounded_ring() -> None:
    from pywats_events.breaker import CircuitBreaker

    b = CircuitBreaker("h", BreakerPolicy(failure_threshold=1), history_size=3)
    for _ in range(4):
        b.record_failure()
        b.force_close()
    assert len(b.history) == 3
    assert [t.new.value for t in b.history] == ["closed", "open", "closed"]


async def test_rates_over_the_last_minute() -> None:
    now = [0.0]
    meter = RateMeter(window=60, every=1, clock=lambda: now[0])
    bus = EventBus(MemoryStore())
    m = bus.metrics
    assert meter.sample(m)["in_per_s"] is None  # one sample: no rate yet
    for second in range(1, 91):
        now[0] = float(second)
        m.count_received("mock", "unit.tested")
        m.count_received("mock", "unit.tested")
        m.observe_handled("wats", 0.001)
        if second > 80:
            m.count_dead_letter("wats", "failed")
        rates = meter.sample(m)
    assert rates["in_per_s"] == pytest.approx(2.0)
    assert rates["handled_per_s"] == pytest.approx(1.0)
    assert rates["dead_lettered_per_s"] == pytest.approx(10 / 60, rel=0.05)  # 10 in the last minute
    assert 59 <= rates["window_s"] <= 61


async def test_the_overview_shows_rates_sampled_in_the_background() -> None:
    bus = EventBus(MemoryStore())
    bus.add_event_store()
    app = make_app(bus)  # in a running loop: the sampler starts with the app, before any console request
    async with bus:
        await asyncio.sleep(1.2)  # a sample with nothing counted yet
        for _ in range(20):
            await bus.publish(Event(type="unit.tested", source="s"))
        await asyncio.sleep(1.2)
        async with client_for(app) as client:
            html = (await client.get("/")).text
    rate = re.search(r'id="rate-in">([\d.,]+)/s<', html)
    handled = re.search(r'id="rate-handled">([\d.,]+)/s<', html)
    assert rate and float(rate.group(1)) > 1.0, html  # 20 events over about 2.4 s
    assert handled and float(handled.group(1)) > 1.0


def test_a_bus_started_within_the_minute_has_rates_on_the_first_sample() -> None:
    bus = EventBus(MemoryStore())
    for _ in range(60):
        bus.metrics.count_received("mock", "unit.tested")
    meter = RateMeter()
    meter.seed(datetime.now(UTC) - timedelta(seconds=30))
    assert meter.sample(bus.metrics)["in_per_s"] == pytest.approx(2.0, rel=0.05)  # 60 events in 30 s
    late = RateMeter()
    late.seed((datetime.now(UTC) - timedelta(minutes=5)).isoformat())  # too long ago: counts span more
    assert late.sample(bus.metrics)["in_per_s"] is None


async def test_a_rare_filter_scans_a_bounded_part_and_older_searches_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pywats_events.http.console import views

    monkeypatch.setattr(views, "SCAN_ROWS", 10)
    bus = EventBus(store)
    async with bus:
        evs = [Event(id=f"ev-{i:02d}", type="unit.tested", source="rare" if i in (3, 25) else "ict-1",
                     timestamp=T0 + timedelta(seconds=i)) for i in range(30)]
        await store.append_events(evs)
        async with client_for(make_app(bus)) as client:
            first = (await client.get("/console/events", params={"source": "rare"})).text
            assert ids_on(first) == ["ev-25"]  # within the newest 10 (ev-29 .. ev-20)
            assert "Searched 10 events (back to 2026-03-01T06:00:20+00:00)" in first
            second = (await client.get("/console/events" + link(first, "older"))).text  # type: ignore[operator]
            assert ids_on(second) == []  # ev-19 .. ev-10
            third = (await client.get("/console/events" + link(second, "older"))).text  # type: ignore[operator]
            assert ids_on(third) == ["ev-03"]
            assert link(third, "older") is None  # nothing older than what was searched
            # the store's bound itself, on both stores
            from pywats_events.store import EventQuery

            found = await store.query_events(EventQuery(source="rare", newest_first=True, scan_limit=4))
            assert found == []
            found = await store.query_events(EventQuery(source="rare", newest_first=True, scan_limit=5,
                                                        after=(T0 + timedelta(seconds=26), "")))
            assert [s.event.id for s in found] == ["ev-25"]
            found = await store.query_events(EventQuery(source="rare", scan_limit=5))  # oldest first
            assert [s.event.id for s in found] == ["ev-03"]
            found = await store.query_events(EventQuery(source="rare", newest_first=True, scan_limit=1000))
            assert [s.event.id for s in found] == ["ev-25", "ev-03"]  # fewer rows than the bound: all
