"""A status DB per test: a SQLite file in the test's tmp folder, named by PYWATS_LAB_DB so the documents'
``StatusDBImplementation()`` (no arguments) opens it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats_lab.status_db import StatusDBImplementation


@pytest.fixture
def lab_db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    monkeypatch.setenv("PYWATS_LAB_DB", url)
    return url


@pytest.fixture
def db(lab_db_url: str) -> Iterator[StatusDBImplementation]:
    status_db = StatusDBImplementation()
    yield status_db
    status_db.close()
