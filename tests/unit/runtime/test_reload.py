"""Configuration reload (issue 18.4): ``Transport.reload``'s default and ``ConfigReloader`` on a built bus.
The end-to-end check with a real ``pywats-events run`` and SIGHUP is in
tests/integration/core/test_sighup_reload.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pywats_events.config import build_bus, load_settings
from pywats_events.reload import ConfigReloader
from pywats_events.transport import changed_option_keys
from pywats_events.transports.file import FileTransport

BASE = """
db = "sqlite:///{tmp}/reload.db"
log_level = "{level}"
[bus]
concurrency = {concurrency}
[bus.retry]
max_attempts = {attempts}
[bus.breaker]
failure_threshold = {threshold}
[[transports]]
kind = "file"
name = "inbox"
path = "inbox"
settle_seconds = {settle}
[[handlers]]
kind = "event-store"
name = "store"
timeout = {timeout}
[http]
enabled = false
port = {port}
"""
DEFAULTS = {"level": "INFO", "concurrency": 4, "attempts": 2, "threshold": 5, "settle": 0.1, "timeout": 5, "port": 8080}


def write(path: Path, **changes: object) -> Path:
    path.write_text(BASE.format(tmp=path.parent, **{**DEFAULTS, **changes}), encoding="utf-8")
    return path


def test_changed_option_keys_reports_added_removed_and_changed_only() -> None:
    old = {"url": "amqp://a", "prefetch": 10, "gone": 1, "same": [1, 2]}
    new = {"url": "amqp://b", "prefetch": 10, "added": True, "same": [1, 2]}
    assert changed_option_keys(old, new) == ["added", "gone", "url"]
    assert changed_option_keys(old, dict(old)) == []


async def test_transport_reload_default_needs_a_restart_for_every_changed_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = write(tmp_path / "svc.toml")
    bus = build_bus(load_settings(cfg))
    inbox = bus.transports["inbox"]
    assert isinstance(inbox, FileTransport)
    assert inbox.config_options == {"path": tmp_path / "inbox", "settle_seconds": 0.1}
    with caplog.at_level(logging.WARNING):
        assert await inbox.reload({"path": tmp_path / "inbox", "settle_seconds": 0.1}) == []
        assert not caplog.records  # unchanged keys are not reported
        keys = await inbox.reload({"path": tmp_path / "other", "settle_seconds": 0.1, "pattern": "*.xml"})
    assert keys == ["path", "pattern"]
    assert inbox.settings.settle_seconds == 0.1 and inbox.folder.name == "inbox"  # nothing applied
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "transport inbox (file): options path, pattern changed: needs a restart" in record.getMessage()


async def test_reload_applies_safe_changes_and_names_the_rest(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = write(tmp_path / "svc.toml")
    settings = load_settings(cfg)
    bus = build_bus(settings)
    reloader = ConfigReloader(bus, settings, cfg)
    store_breaker = bus.breakers["store"]
    store_breaker.record_failure()  # state and counts survive a policy change
    write(cfg, level="DEBUG", attempts=7, threshold=9, timeout=1.5, concurrency=8, settle=0.5, port=9090)
    root = logging.getLogger()
    level = root.level
    try:
        with caplog.at_level(logging.INFO):
            result = await reloader.reload()
            assert root.level == logging.DEBUG
    finally:
        root.setLevel(level)
    assert result.error is None
    assert sorted(result.applied) == [
        "bus.breaker.failure_threshold", "bus.retry.max_attempts", "handlers.store.timeout", "log_level",
    ]
    assert sorted(result.restart) == ["bus.concurrency", "http.port", "transports.inbox.settle_seconds"]
    assert bus.retry.max_attempts == 7
    assert bus.breakers["store"] is store_breaker and store_breaker.policy.failure_threshold == 9
    assert store_breaker.consecutive_failures == 1
    assert bus.registry.get("store").handler.timeout == 1.5  # type: ignore[union-attr]
    assert bus.concurrency == 4  # needs a restart: unchanged
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("bus.concurrency changed: needs a restart" in w for w in warnings), warnings
    assert any("http.port changed: needs a restart" in w for w in warnings), warnings
    assert any("option settle_seconds changed: needs a restart" in w for w in warnings), warnings

    # The same file again: what was applied is not reported again, what needs a restart still is.
    again = await reloader.reload()
    assert again.applied == [] and sorted(again.restart) == sorted(result.restart)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("log_level = 'LOUD'\n", "unknown log level 'LOUD'"),
        ("[bus\n", "invalid TOML"),
        ("[bus.retry]\nmax_attempts = 0\n", "max_attempts"),
    ],
)
async def test_a_bad_file_changes_nothing_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, says: str
) -> None:
    cfg = write(tmp_path / "svc.toml")
    settings = load_settings(cfg)
    bus = build_bus(settings)
    reloader = ConfigReloader(bus, settings, cfg)
    cfg.write_text(text + "\n[[handlers]]\nkind = 'event-store'\ntimeout = 0.1\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        result = await reloader.reload()
    assert result.error is not None and says in result.error
    assert result.applied == [] and result.restart == []
    assert bus.retry.max_attempts == 2 and bus.registry.get("store").handler.timeout == 5  # type: ignore[union-attr]
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "configuration reload failed, still running with the previous configuration" in record.getMessage()
    assert says in record.getMessage()


async def test_handlers_or_transports_added_need_a_restart(tmp_path: Path) -> None:
    cfg = write(tmp_path / "svc.toml")
    settings = load_settings(cfg)
    bus = build_bus(settings)
    reloader = ConfigReloader(bus, settings, cfg)
    cfg.write_text(
        cfg.read_text()
        + '\n[[handlers]]\nkind = "status-board"\n[[transports]]\nkind = "file"\nname = "b"\npath = "b"\n'
    )
    result = await reloader.reload()
    assert sorted(result.restart) == ["handlers", "transports.b"]
    assert result.applied == []
