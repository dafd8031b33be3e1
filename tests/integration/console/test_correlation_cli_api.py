"""The correlation-id filter outside the console: ``pywats-events events list --correlation-id`` (a real
subprocess on a SQLite store) and ``GET /admin/events?correlation_id=`` of the admin API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from pywats_events import Event, EventBus
from pywats_events.http.app import create_app
from pywats_events.http.settings import HTTPSettings
from pywats_events.sql_store import SQLStore, open_store
from tests.integration.core.test_cli import DB, cli, cli_json

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def events() -> list[Event]:
    return [
        Event(id=f"ev-{n}", type="unit.tested", source="ict-1", timestamp=T0 + timedelta(seconds=n),
              correlation_id="tx-A" if n % 3 == 0 else f"tx-{n}")
        for n in range(9)
    ]


def test_events_list_filters_by_correlation_id(tmp_path: Path) -> None:
    async def fill() -> None:
        async with open_store(str(tmp_path / DB)) as store:
            await store.append_events(events())

    asyncio.run(fill())
    rows = cli_json("events", "list", "--correlation-id", "tx-A", cwd=tmp_path)
    assert [r["id"] for r in rows] == ["ev-6", "ev-3", "ev-0"]  # newest first
    assert {r["correlation_id"] for r in rows} == {"tx-A"}
    text = cli("events", "list", "--correlation-id", "tx-none", cwd=tmp_path)
    assert text.returncode == 0 and "ev-" not in text.stdout


async def test_admin_api_filters_by_correlation_id(tmp_path: Path) -> None:
    bus = EventBus(SQLStore(str(tmp_path / "api.db")))
    app = create_app(bus, HTTPSettings(admin_token="admin-token-123"))  # type: ignore[arg-type]
    async with bus, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        await bus.store.append_events(events())
        r = await client.get("/admin/events", params={"correlation_id": "tx-A"},
                             headers={"authorization": "Bearer admin-token-123"})
        assert r.status_code == 200, r.text
        assert [e["id"] for e in r.json()] == ["ev-0", "ev-3", "ev-6"]  # the API lists oldest first
