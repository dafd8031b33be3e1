"""The deployment files hold what they promise. No container daemon runs here, so the Dockerfile and
compose file are parsed and checked; the systemd unit goes through the real ``systemd-analyze verify``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pywats_events.analytics.handler import AnalyticsHandler
from pywats_events.bus import STOP_GRACE
from tests.services import services_required

REPO = Path(__file__).resolve().parents[3]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_slim_installs_the_all_extra_and_runs_unprivileged() -> None:
    ins = dockerfile_instructions()
    assert ins[0][0] == "FROM" and re.fullmatch(r"python:3\.1[1-9]-slim", ins[0][1])
    runs = " ".join(rest for word, rest in ins if word == "RUN")
    (extras,) = re.findall(r'pip install "/tmp/src\[([a-z0-9,]+)\]"', runs)
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    # every transport and handler, and tracing that an OTLP collector can receive (off until configured)
    assert set(extras.split(",")) == {"all", "otlp"} and set(extras.split(",")) <= set(declared)
    assert any(r.startswith("opentelemetry-exporter-otlp-proto-http") for r in declared["otlp"])
    assert "pywats-events[otel]" in declared["otlp"]
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user_at = max(i for i, (word, _) in enumerate(ins) if word == "USER")
    assert all(word != "RUN" for word, _ in ins[last_user_at:]), "nothing runs as root after USER"
    assert ("ENTRYPOINT", '["pywats-events", "run"]') in ins
    assert any(word == "HEALTHCHECK" and "/healthz" in rest for word, rest in ins)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_compose_runs_the_brokers_the_store_and_the_service_with_secrets_from_the_environment() -> None:
    doc = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = doc["services"]
    assert {"rabbitmq", "mosquitto", "postgres", "pywats-events"} <= set(services)
    app = services["pywats-events"]
    assert {name: dep["condition"] for name, dep in app["depends_on"].items()} == {
        "rabbitmq": "service_healthy", "mosquitto": "service_healthy", "postgres": "service_healthy",
    }
    for name in ("rabbitmq", "mosquitto", "postgres"):
        assert "healthcheck" in services[name], name
    text = (REPO / "compose.yaml").read_text()
    for line in text.splitlines():
        if re.search(r"PASS(WORD)?:", line):
            assert "${" in line, f"a password written into compose.yaml: {line.strip()}"
    grace = int(str(app["stop_grace_period"]).removesuffix("s"))  # before docker stop sends SIGKILL
    assert grace > 10 + 3 * STOP_GRACE + AnalyticsHandler(persist=False).stop_timeout
    mounted = [v.split(":")[0] for v in app["volumes"]]
    for path in mounted + [v.split(":")[0] for v in services["mosquitto"]["volumes"]]:
        assert (REPO / path).exists(), path
    # tracing is off unless the environment asks for it (the image has the otlp extra)
    assert app["environment"]["OTEL_TRACES_EXPORTER"] == "${OTEL_TRACES_EXPORTER:-none}"
    cfg = tomllib.loads((REPO / "deploy/compose/pywats-events.toml").read_text())
    assert {t["kind"] for t in cfg["transports"]} == {"cfx", "mqtt"}


def test_compose_configuration_is_accepted_by_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from pywats_events.config import build_bus, load_settings

    monkeypatch.setenv("CFX_AMQP_PASSWORD", "from-the-compose-environment")

    settings = load_settings(REPO / "deploy/compose/pywats-events.toml")
    bus = build_bus(settings)  # builds every transport and handler the file names, without connecting
    assert {t.kind for t in bus.transports.values()} == {"cfx", "mqtt"}


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        # CI (PYWATS_REQUIRE_SERVICES=1, .ci/run installs systemd) must not pass this by skipping it
        if services_required():
            pytest.fail("systemd-analyze is not installed (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    unit = (REPO / "deploy/systemd/pywats-events@.service").read_text()
    assert "Restart=on-failure" in unit and "KillSignal=SIGTERM" in unit and "NoNewPrivileges=yes" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit  # systemctl reload: the configuration reload
    stop = int(re.search(r"TimeoutStopSec=(\d+)s", unit).group(1))  # type: ignore[union-attr]
    # the default drain timeout, the bus's grace (3 x STOP_GRACE) and the analytics handler's stop timeout
    worst = 10 + 3 * STOP_GRACE + AnalyticsHandler(persist=False).stop_timeout
    assert stop > worst, f"the stop timeout must exceed what a stop can take ({worst} s)"
    # verify needs the ExecStart binary to exist: point it at this venv's console script
    cli = Path(sys.executable).parent / "pywats-events"
    instance = tmp_path / "pywats-events@line1.service"
    instance.write_text(unit.replace("/opt/pywats-events/bin/pywats-events", str(cli)))
    proc = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True, text=True, check=False)
    problems = [ln for ln in (proc.stdout + proc.stderr).splitlines() if str(instance) in ln or "Unknown" in ln]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr
