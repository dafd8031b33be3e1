"""samples/wats/pywats-events.toml as a user runs it: ``pywats-events ingest samples/cfx`` posts every
UnitsTested / UnitsInspected result to the strict fake WATS, and the asset and unit calls follow; the
``python -m pywats_wats`` commands preview and check with the same file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywats_wats.testing import FakeWats, validate_report
from tests.cfx_samples import INVALID, SAMPLES, VALID
from tests.unit.wats.conftest import RESULT_TYPES, sample_events

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[3] / "samples" / "wats" / "pywats-events.toml"
CLI = Path(sys.executable).parent / "pywats-events"
TOKEN = "fake-wats-token"


@pytest.fixture
def served() -> Iterator[tuple[FakeWats, str]]:
    fake = FakeWats(TOKEN, strict=True)
    with fake.serve() as url:
        yield fake, url


def config_for(url: str, tmp_path: Path) -> Path:
    """The sample file, pointed at the fake's port and a scratch store."""
    text = SAMPLE.read_text().replace("http://127.0.0.1:8085", url)
    text = text.replace('db = "sqlite:///pywats-events-wats.db"', f'db = "sqlite:///{tmp_path / "events.db"}"')
    path = tmp_path / "pywats-events.toml"
    path.write_text(text)
    return path


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}, "WATS_TOKEN": TOKEN}


def test_ingest_of_the_cfx_samples_reaches_the_strict_fake(served: tuple[FakeWats, str], tmp_path: Path) -> None:
    fake, url = served
    proc = subprocess.run(
        [str(CLI), "ingest", str(SAMPLES), "--config", str(config_for(url, tmp_path)), "--json"],
        env=env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = {e.id for _, e in sample_events(*RESULT_TYPES)}
    assert set(fake.reports) == expected
    assert [r.status for r in fake.calls("POST", "/api/Report/WSJF")] == [200] * len(expected)
    by_recipe = [r for r in fake.reports.values() if r["pn"] == "PCBA-2000"]
    assert by_recipe and all(r["rev"] == "C" for r in by_recipe)
    assert fake.calls("POST", "/api/Asset/Message") and fake.calls("PUT", "/api/Asset/State")
    assert {c.body["assetId"] for c in fake.calls("POST", "/api/Asset/Message")} == {"SMT-PLACER-01"}
    assert fake.calls("PUT", "/api/Production/Units") and fake.calls("PUT", "/api/Production/SetUnitPhase")
    assert {r.status for r in fake.requests} == {200}


def test_preview_prints_one_valid_report_per_result_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pywats_wats", "preview", *map(str, VALID), "--config", str(SAMPLE), "--json"],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {r["id"] for r in reports} == {e.id for _, e in sample_events(*RESULT_TYPES)}
    assert all(validate_report(r, {10, 20, 30, 40}, strict=True) == [] for r in reports)


def test_preview_names_inputs_it_cannot_read_and_fails() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pywats_wats", "preview", str(INVALID[0]), str(VALID[0])],
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert f"no report: {INVALID[0]}: invalid JSON" in proc.stderr


def test_check_says_what_answers_and_what_is_missing(served: tuple[FakeWats, str], tmp_path: Path) -> None:
    fake, url = served
    config = config_for(url, tmp_path)

    def check(token: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pywats_wats", "check", "--config", str(config)],
            env={**env(), "WATS_TOKEN": token},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    good = check(TOKEN)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok   wats-report: process 30: defined" in good.stdout
    fake.processes.pop(40)
    missing = check(TOKEN)
    assert missing.returncode == 1 and "FAIL wats-report: process 40: not on the server" in missing.stdout
    bad = check("stale")
    assert bad.returncode == 1 and "FAIL wats-report: token" in bad.stdout and "stale" not in bad.stdout
