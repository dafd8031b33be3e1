"""``tracing.configure_from_environment`` with OpenTelemetry installed (the ``otel`` extra, as in the Docker
image): not configured, it imports nothing of OpenTelemetry (installed but not enabled costs nothing, at
start-up either); a provider set before start-up, or ``OTEL_TRACES_EXPORTER``, enables tracing. Each case
runs in a fresh interpreter, since what is imported is the point."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed")


def run(script: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_installed_but_not_configured_stays_off_and_imports_nothing_of_opentelemetry() -> None:
    out = run(
        """
        import sys
        from pywats_events import tracing
        print(tracing.configure_from_environment(), tracing.active,
              sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    # (only the namespace package, which finding ``opentelemetry.trace`` imports: no module of the API or SDK)
    assert out == "False False ['opentelemetry']"


def test_exporter_none_stays_off() -> None:
    out = run(
        "from pywats_events import tracing; print(tracing.configure_from_environment(), tracing.active)",
        OTEL_TRACES_EXPORTER="none",
    )
    assert out == "False False"


def test_a_provider_set_before_start_up_is_used() -> None:
    out = run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
        from pywats_events import tracing
        print(tracing.configure_from_environment(), tracing.active)
        """
    )
    assert out == "True True"


def test_the_console_exporter_is_set_up_from_the_environment() -> None:
    out = run(
        """
        from opentelemetry import trace
        from pywats_events import tracing
        ok = tracing.configure_from_environment()
        print(ok, tracing.active, type(trace.get_tracer_provider()).__module__)
        """,
        OTEL_TRACES_EXPORTER="console",
        OTEL_SERVICE_NAME="line1-bus",
    )
    assert out == "True True opentelemetry.sdk.trace"
