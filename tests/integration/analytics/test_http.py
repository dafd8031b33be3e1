"""The analytics over real HTTP (uvicorn on loopback) with a SQLite store: the JSON routes equal the
brute-force computation, the history is served from memory and from its table, the gauges show in
``/metrics``, the routes are in the OpenAPI document, and bad requests get a problem naming the cause."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from pywats_events import Event, EventBus, MockTransport
from pywats_events.analytics import resolve_window
from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.analytics.testing import simulated_line
from pywats_events.http import HTTPSettings, Server
from pywats_events.sql_store import open_store
from tests.unit.analytics.brute_force import assert_matches, brute_force

LINE = simulated_line(stations=3, hours=8, seed=11)
END = LINE[0].timestamp.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=8)
TOKEN = "analytics-token"


@contextlib.asynccontextmanager
async def service(tmp: Path, *, analytics: bool = True, **http: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    bus = EventBus(open_store(f"sqlite:///{tmp}/events.db"), emit_system_events=False)
    mock = MockTransport()
    bus.add_transport(mock)
    bus.add_event_store()
    handler = AnalyticsHandler(flush_interval_s=0.05) if analytics else None
    if handler is not None:
        bus.register(handler)
    server = Server(bus, HTTPSettings(port=0, **http))
    async with bus:
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                yield client, (mock, handler)
        finally:
            await server.stop()


async def test_report_routes_equal_brute_force_and_history_reads_memory_and_table(tmp_path: Path) -> None:
    async with service(tmp_path) as (client, (mock, handler)):
        result = await mock.inject_many(LINE)
        assert result.dead_lettered == 0
        since = END - timedelta(hours=4)
        r = await client.get("/analytics/report", params={"since": since.isoformat(), "until": END.isoformat()})
        assert r.status_code == 200, r.text
        report = r.json()
        w = resolve_window(since=since, until=END, bucket_s=60)
        # The open last interval runs to the server's clock; the window's end caps it at END.
        assert_matches(report, brute_force(LINE, w.since_us, w.until_us, w.now_us))
        assert report["window"]["since"] == since.isoformat()
        station = "Line1.Station0"
        r = await client.get(f"/analytics/assets/{station}", params={"window": "day", "until": END.isoformat()})
        assert r.status_code == 200 and r.json()["asset"] == station
        assert r.json()["units_tested"] > 0
        r = await client.get("/analytics/history", params={"asset": station, "state": "USD"})
        items = r.json()["items"]
        assert items and all(i["category"] == "USD" and i["duration_s"] > 0 for i in items)
        for _ in range(100):  # written behind; the handler flushes every 50 ms
            if handler._pending == []:
                break
            await asyncio.sleep(0.05)
        await handler.flush()
        r = await client.get("/analytics/history", params={"asset": station, "state": "USD", "source": "store"})
        assert r.status_code == 200, r.text
        stored = r.json()["items"]
        assert [(i["start"], i["end"]) for i in stored] == [(i["start"], i["end"]) for i in items]
        r = await client.get("/analytics/estimate", params={"asset": station, "recipe": "PCB-A", "confidence": 0.5})
        est = r.json()["estimate_s"]
        assert est is not None and 60 < est < 120
        r = await client.get("/analytics/estimate", params={"asset": "nowhere"})
        assert r.json()["estimate_s"] is None


async def test_gauges_in_metrics_and_routes_in_openapi(tmp_path: Path) -> None:
    async with service(tmp_path) as (client, (mock, _)):
        now = datetime.now(UTC)
        await mock.inject(
            Event(
                type="asset.state_changed",
                source="oven",
                timestamp=now - timedelta(minutes=10),
                payload={"asset_id": "oven", "new_category": "USD"},
            ),
            Event(
                type="asset.state_changed",
                source="oven",
                timestamp=now - timedelta(minutes=5),
                payload={"asset_id": "oven", "new_category": "PRD"},
            ),
        )
        text = (await client.get("/metrics")).text
        lines = {
            ln.split(" ")[0]: float(ln.split(" ")[1]) for ln in text.splitlines() if ln.startswith("pywats_analytics")
        }
        usd = lines['pywats_analytics_time_in_state_seconds{asset="oven",category="USD"}']
        assert usd == pytest.approx(300, abs=1)
        assert lines['pywats_analytics_error_rate{asset="oven"}'] == pytest.approx(0.5, abs=0.01)
        assert not any(k.startswith('pywats_analytics_mtbf_seconds{asset="oven"') for k in lines)  # no fault: no MTBF
        doc = (await client.get("/openapi.json")).json()
        assert {"/analytics/report", "/analytics/assets/{asset}", "/analytics/history", "/analytics/estimate"} <= set(
            doc["paths"]
        )


async def test_bad_requests_and_missing_handler_get_problems(tmp_path: Path) -> None:
    async with service(tmp_path, routes={"status": {"tokens": [TOKEN]}}) as (client, _):
        assert (await client.get("/analytics/report")).status_code == 401
        auth = {"authorization": f"Bearer {TOKEN}"}
        r = await client.get("/analytics/report", params={"window": "week"}, headers=auth)
        assert r.status_code == 400 and "'week'" in r.json()["detail"]
        r = await client.get("/analytics/report", params={"since": "yesterday"}, headers=auth)
        assert r.status_code == 400 and "since" in r.json()["detail"]
        r = await client.get("/analytics/estimate", params={"asset": "x", "confidence": "2"}, headers=auth)
        assert r.status_code == 400 and "confidence" in r.json()["detail"]
        assert (await client.get("/analytics/assets/nope", headers=auth)).status_code == 404
    async with service(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, analytics=False) as (
        client,
        _,
    ):
        r = await client.get("/analytics/report")
        assert r.status_code == 404 and 'kind = "analytics"' in r.json()["detail"]
