"""``pywats-events run`` as a real consumer process of a NATS stream, for the crash and scale-out tests.

The service runs from a configuration file the test writes: one ``nats`` transport, the event-store handler
and two recording handlers (``h1``, ``h2``) from a module written next to it. Each recording handler
appends ``<handler> <seq> <pid>`` to one file with a single ``os.write`` on an ``O_APPEND`` descriptor, so
a line is in the file the moment the handler returns (a ``kill -9`` loses none of them) and lines of
several processes never interleave.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

CLI = Path(sys.executable).parent / "pywats-events"

RECORDER = '''\
"""Records each event's payload seq per handler: one O_APPEND write per call."""
import os

_FD = os.open(os.environ["NATS_TEST_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


async def h1(event):
    os.write(_FD, f"h1 {event.payload['seq']} {os.getpid()}\\n".encode())


async def h2(event):
    os.write(_FD, f"h2 {event.payload['seq']} {os.getpid()}\\n".encode())
'''


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_service(folder: Path, db: str, transport: dict[str, Any]) -> Path:
    """Write ``service.toml`` and the recorder module into ``folder``; returns the configuration path.

    Args:
        folder: where the files go (the service's working directory).
        db: the store URL (``sqlite:///...`` or ``postgresql://...``).
        transport: the NATS transport's options (``servers``, ``stream``, ``rules``...).
    """
    (folder / "mods").mkdir(exist_ok=True)
    (folder / "mods" / "nats_recorder.py").write_text(RECORDER)
    lines = [f"db = {_toml(db)}", 'log_level = "WARNING"', "[[transports]]", 'kind = "nats"', 'name = "nats"']
    rules = transport.pop("rules")
    lines += [f"{k} = {_toml(v)}" for k, v in transport.items()]
    for rule in rules:
        lines.append("[[transports.rules]]")
        lines += [f"{k} = {_toml(v)}" for k, v in rule.items()]
    lines += ["[[handlers]]", 'kind = "event-store"']
    for name in ("h1", "h2"):
        lines += ["[[handlers]]", 'kind = "python"', f'name = "{name}"', f'target = "nats_recorder:{name}"']
        lines.append('event_types = ["test.*"]')
    lines += ["[http]", "enabled = false"]
    path = folder / "service.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def start_service(folder: Path, record: Path, log_name: str) -> subprocess.Popen[bytes]:
    """Start ``pywats-events run --config service.toml`` in ``folder``; output goes to ``log_name``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYWATS_EVENTS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder / "mods"), env.get("PYTHONPATH")]))
    env["NATS_TEST_RECORD"] = str(record)
    with (folder / log_name).open("wb") as log:
        return subprocess.Popen(
            [str(CLI), "run", "--config", "service.toml"], cwd=folder, env=env, stdout=log, stderr=log
        )


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no cleanup, no acks, no flush."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM (clean stop); returns the exit code (kills it if it does not stop in time)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the service did not stop within {timeout}s") from None


def read_records(path: Path) -> list[tuple[str, int, int]]:
    """``(handler, seq, pid)`` per complete line of the record file."""
    if not path.exists():
        return []
    lines = path.read_text().split("\n")[:-1]  # the last item is '' or a line still being written
    out = []
    for line in lines:
        h, seq, pid = line.split()
        out.append((h, int(seq), int(pid)))
    return out


def per_handler(records: list[tuple[str, int, int]], handler: str) -> Counter[int]:
    """How many times ``handler`` ran for each seq."""
    return Counter(seq for h, seq, _ in records if h == handler)
