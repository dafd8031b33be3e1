"""A fresh, private PostgreSQL database per test: for store tests and scale-out tests that share a server.

Each ``fresh_database()`` creates ``pywats_<random hex>`` through an AUTOCOMMIT connection to the
maintenance database (``test`` by default) and drops it afterwards, so tests that run at the same time
on the same server never see each other's tables.

Environment:
    PYWATS_PG_ADMIN_URL: URL of the maintenance database (default
        ``postgresql://postgres@127.0.0.1:5432/test``; trust auth).
    PYWATS_REQUIRE_SERVICES: ``1`` turns "PostgreSQL is not reachable" from a skip into a failure.

Usage::

    from tests.pg import fresh_database

    async with fresh_database() as url:   # url: postgresql://postgres@127.0.0.1:5432/pywats_1a2b...
        store = open_store(url)
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import pytest

__all__ = ["ADMIN_URL", "PostgresUnavailable", "fresh_database", "pg_available", "require_postgres"]

ADMIN_URL = os.environ.get("PYWATS_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server (``ADMIN_URL``) cannot be reached."""


def _asyncpg_dsn(url: str) -> str:
    _scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep else url


def _with_database(url: str, name: str) -> str:
    base, _, tail = url.rpartition("/")
    query = tail.partition("?")[2]
    return f"{base}/{name}" + (f"?{query}" if query else "")


async def pg_available(connect_timeout: float = 3.0) -> str | None:
    """``None`` when the server answers, else the reason it does not."""
    import asyncpg

    try:
        conn = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=connect_timeout)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def require_postgres(reason: str) -> None:
    """Skip the current test because PostgreSQL is unreachable, or fail it with PYWATS_REQUIRE_SERVICES=1."""
    message = f"PostgreSQL at {ADMIN_URL} is not reachable: {reason}"
    if os.environ.get("PYWATS_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@contextlib.asynccontextmanager
async def fresh_database(prefix: str = "pywats_") -> AsyncIterator[str]:
    """Create an empty database, yield its URL (``postgresql://...``), drop it on exit (even with open
    connections left over: ``DROP DATABASE ... WITH (FORCE)``, PostgreSQL 13+).

    Raises:
        PostgresUnavailable: the server cannot be reached (callers in tests use ``require_postgres``).
    """
    import asyncpg

    name = f"{prefix}{secrets.token_hex(8)}"
    try:
        admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=5)
    except Exception as exc:
        raise PostgresUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # asyncpg runs outside a transaction: AUTOCOMMIT
    finally:
        await admin.close()
    try:
        yield _with_database(ADMIN_URL, name)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL), timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
