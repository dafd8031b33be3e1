"""The sample explorer's command line: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pywats_cfx.explorer", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_list_shows_valid_and_invalid_samples() -> None:
    out = run("--list")
    assert out.returncode == 0, out.stderr
    assert "CFX.Heartbeat__1" in out.stdout and "invalid/CFX.Production.GetUnitInfoRequest__1" in out.stdout


def test_sample_prints_the_envelope() -> None:
    out = run("--sample", "Heartbeat__1")
    assert out.returncode == 0
    assert json.loads(out.stdout)["MessageName"] == "CFX.Heartbeat"


def test_convert_json_prints_one_event_per_line() -> None:
    out = run("--convert", "CFX.Production.TestAndInspection.UnitsTested__1", "--json")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [json.loads(line)["payload"]["unit_id"] for line in lines] == ["PANEL34543535"] * 2


def test_convert_human_readable_and_by_path(tmp_path: Path) -> None:
    out = run("--convert", str(REPO / "samples" / "cfx" / "CFX.ResourcePerformance.FaultOccurred__1.json"))
    assert out.returncode == 0 and "asset.fault  [error]" in out.stdout


def test_bad_file_exits_2_with_one_line_naming_file_and_reason() -> None:
    out = run("--convert", "invalid/CFX.Production.GetUnitInfoRequest__1")
    assert out.returncode == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert "CFX.Production.GetUnitInfoRequest__1.json" in line and "invalid JSON" in line


def test_missing_file_and_unknown_kind_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    for args in (("--convert", "no-such-sample"), ("--generate", "teapot"), ("--convert", str(empty))):
        out = run(*args)
        assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, args


def test_generate_prints_a_valid_envelope_and_counts() -> None:
    out = run("--generate", "units-tested", "--seq", "5", "--count", "3")
    assert out.returncode == 0
    envs = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["MessageBody"]["TestedUnits"][0]["UnitIdentifier"] for e in envs] == [
        "UNIT00000005",
        "UNIT00000006",
        "UNIT00000007",
    ]
    single = run("--generate", "state-changed")
    assert json.loads(single.stdout)["MessageName"] == "CFX.ResourcePerformance.StationStateChanged"
