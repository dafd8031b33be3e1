"""Fixtures for the store tests: a fresh PostgreSQL database, and the same store suite on every backend."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pywats_events.sql_store import open_store
from pywats_events.store import Store
from tests.pg import PostgresUnavailable, fresh_database, require_postgres


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """URL of a new empty PostgreSQL database, dropped after the test; skips if there is no server
    (fails instead with PYWATS_REQUIRE_SERVICES=1)."""
    try:
        cm = fresh_database()
        url = await cm.__aenter__()
    except PostgresUnavailable as exc:
        require_postgres(str(exc))
        return
    try:
        yield url
    finally:
        await cm.__aexit__(None, None, None)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An open, empty store of each kind (the PostgreSQL one in its own fresh database)."""
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "memory":
            url = "memory://"
        elif request.param == "sqlite":
            url = str(tmp_path / "events.db")
        else:
            try:
                url = await stack.enter_async_context(fresh_database())
            except PostgresUnavailable as exc:
                require_postgres(str(exc))
        s = open_store(url)
        await s.open()
        try:
            yield s
        finally:
            await s.close()


@pytest.fixture
def core_migrations_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store tests are about the core's schema: plug-in migration branches installed beside it (the
    analytics' ``analytics_0001``...) are left out, as in an installation without plug-ins."""
    from pywats_events import migrations

    core = migrations.version_locations()[0]
    monkeypatch.setattr(migrations, "_locations", lambda: (core,))
