"""A third party's plug-in package, installed with pip and run through ``pywats-events run``.

``samples/plugin`` (distribution ``pywats-lines``) registers one transport (``lines``: TCP, one message per
line, answered ``ACK n``), one decoder (``result-csv``) and one handler (``jsonl-file``) by entry point,
exactly as the built-ins are registered. It is installed into a private folder (``pip install
--target``), put on ``PYTHONPATH`` of the subprocesses only, so the test venv stays as it was.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CLI = Path(sys.executable).parent / "pywats-events"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``samples/plugin`` installed by pip into a folder of its own; returns that folder."""
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(REPO / "samples/plugin"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"pip could not install the sample plug-in:\n{proc.stdout}\n{proc.stderr}"
    assert any(site.glob("pywats_lines-*.dist-info")), sorted(p.name for p in site.iterdir())
    return site


def env_with(site: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def cli(*args: str, cwd: Path, site: Path | None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, env=env_with(site), capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, port: int) -> Path:
    cfg = folder / "pywats-events.toml"
    cfg.write_text(
        f"""
db = "sqlite:///{folder / "events.db"}"

[[transports]]
kind = "lines"
name = "testers"
port = {port}

[[handlers]]
kind = "jsonl-file"
event_types = ["test.*"]
path = "{folder / "out" / "events.jsonl"}"

[http]
enabled = false
"""
    )
    return cfg


def send_lines(port: int, lines: list[bytes], timeout: float = 30.0) -> list[str]:
    """Send ``lines`` on one connection, half-close, and return the answers (one per non-empty line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(line + b"\n" for line in lines))
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode().splitlines()


def wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, f"run exited early: {proc.communicate()[1]}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert time.monotonic() < deadline, "the lines transport did not listen within 30 s"
            time.sleep(0.1)


def test_installed_plugin_is_listed_with_its_distribution(plugin_site: Path, tmp_path: Path) -> None:
    proc = cli("plugins", "--json", cwd=tmp_path, site=plugin_site)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout)
    by_name = {(group, row["name"]): row for group, rows in found.items() for row in rows}
    assert by_name[("transports", "lines")]["distribution"] == "pywats-lines"
    assert by_name[("transports", "lines")]["settings"] == ["decoder", "host", "max_line_bytes", "port"]
    assert by_name[("decoders", "result-csv")]["value"] == "pywats_lines.codec:decode_result_csv"
    assert by_name[("handlers", "jsonl-file")]["distribution"] == "pywats-lines"
    # the built-ins are found the same way, from this project's own distribution
    assert by_name[("transports", "file")]["distribution"] == "pywats-events"
    assert by_name[("decoders", "cfx")]["distribution"] == "pywats-events"


def test_run_without_the_plugin_names_the_unknown_kind_and_the_known_ones(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, free_port())
    proc = cli("run", "--config", str(cfg), cwd=tmp_path, site=None)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: handler 'jsonl-file': unknown handler kind 'jsonl-file'; known: ")
    assert "event-store" in proc.stderr and "status-board" in proc.stderr  # the known kinds are listed
    cfg.write_text(cfg.read_text().replace('kind = "jsonl-file"', 'kind = "event-store"').replace("path = ", "# "))
    proc = cli("run", "--config", str(cfg), cwd=tmp_path, site=None)
    assert proc.returncode == 2, proc.stderr
    assert "unknown transport kind 'lines'" in proc.stderr
    assert "file" in proc.stderr and "mqtt" in proc.stderr


def test_plugin_transport_decoder_and_handler_run_through_pywats_events_run(plugin_site: Path, tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port)
    out = tmp_path / "out" / "events.jsonl"
    proc = subprocess.Popen(
        [str(CLI), "run", "--config", str(cfg)],
        cwd=tmp_path,
        env=env_with(plugin_site),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, proc)
        answers = send_lines(port, [b"ict-1,SN1,pass", b"ict-1,SN2,fail", b"this is not a result", b"ict-2,SN3,pass"])
        # every line is settled, the bad one too (it is durably in the dead-letter queue); answers come in
        # settlement order, each naming its line
        assert sorted(answers) == ["ACK 1", "ACK 2", "ACK 3", "ACK 4"]
        events = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(e["source"], e["payload"]["serial_number"], e["payload"]["result"]) for e in events] == [
            ("ict-1", "SN1", "Passed"),
            ("ict-1", "SN2", "Failed"),
            ("ict-2", "SN3", "Passed"),
        ]
        # a line sent again (its ACK was lost, say) has the same event id: the handler does not run twice
        assert send_lines(port, [b"ict-1,SN1,pass"]) == ["ACK 1"]
        assert len(out.read_text().splitlines()) == 3
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr

    entries = json.loads(cli("dlq", "list", "--json", "--config", str(cfg), cwd=tmp_path, site=plugin_site).stdout)
    assert len(entries) == 1
    entry = entries[0]
    assert entry["error_type"] == "BadResultLineError"
    assert "expected 'station,serial,result'" in entry["error_message"]
    assert entry["origin"].endswith("#line 3")
    shown = json.loads(
        cli("dlq", "show", entry["id"], "--json", "--config", str(cfg), cwd=tmp_path, site=plugin_site).stdout
    )
    assert shown["headers"]["pywats-decoder"] == "result-csv"
