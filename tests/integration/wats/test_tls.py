"""TLS to WATS: a server whose certificate is not trusted holds the deliveries (parked, readiness says
why); with ``verify`` pointing at its CA the same reports go through."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pywats_cfx.decoder import decode_cfx
from pywats_events.bus import EventBus
from pywats_events.codec import DecodeContext
from pywats_events.config import HandlerConfig, build_handler
from pywats_events.sql_store import open_store
from pywats_events.store import DeadLetterReason
from pywats_wats.testing import FakeWats
from tests.cfx_samples import SAMPLES
from tests.integration.wats.conftest import wats_options


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "wats.key", tmp_path / "wats.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_untrusted_certificate_holds_deliveries_and_a_trusted_ca_lets_them_through(
    tmp_path: Path, fake: FakeWats
) -> None:
    cert, key = certificate(tmp_path)
    events = decode_cfx(
        (SAMPLES / "CFX.Production.TestAndInspection.UnitsTested__1.json").read_bytes(), DecodeContext()
    )
    with fake.serve(ssl_certfile=str(cert), ssl_keyfile=str(key)) as url:
        assert url.startswith("https://")
        for verify, db in ((True, "untrusted.db"), (str(cert), "trusted.db")):
            options = wats_options(url, verify=verify)
            bus = EventBus(open_store(f"sqlite:///{tmp_path / db}"), emit_system_events=False)
            bus.register(build_handler(HandlerConfig(kind="wats-report", **options)))  # type: ignore[arg-type]
            async with bus:
                result = await bus.publish(*events)
                if verify is True:
                    assert result.dead_lettered == 2
                    entries = await bus.store.list_dead_letters()
                    assert {e.reason for e in entries} == {DeadLetterReason.CIRCUIT_OPEN}
                    ready, details = bus.readiness()
                    assert not ready and any("TLS" in r for r in details["not_ready"]), details["not_ready"]
                    assert fake.reports == {}
                else:
                    assert result.handled == 2 and set(fake.reports) == {e.id for e in events}


def test_unreadable_tls_files_are_a_configuration_error(tmp_path: Path) -> None:
    from pywats_events.errors import ConfigError

    with pytest.raises(ConfigError, match="TLS files"):
        build_handler(HandlerConfig(kind="wats-report", **wats_options("https://w", verify=str(tmp_path / "none.pem"))))  # type: ignore[arg-type]
