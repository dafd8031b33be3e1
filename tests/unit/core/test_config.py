"""Configuration: TOML and YAML files, environment overrides, ``--db``, kinds, errors that name the key."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from pywats_events import EventStoreHandler
from pywats_events.config import Settings, build_bus, load_settings
from pywats_events.errors import ConfigError
from pywats_events.transports.file import FileTransport

TOML = """\
db = "sqlite:///from-file.db"
log_level = "WARNING"

[bus]
concurrency = 3
queue_size = 64

[bus.retry]
max_attempts = 7
initial_delay = 0.25

[[transports]]
kind = "file"
name = "line-3"
path = "./drop"
settle_seconds = 1.5

[[handlers]]
kind = "event-store"
event_types = ["test.*"]

[http]
enabled = false
"""

YAML = """\
db: sqlite:///from-file.db
log_level: WARNING
bus:
  concurrency: 3
  queue_size: 64
  retry:
    max_attempts: 7
    initial_delay: 0.25
transports:
  - kind: file
    name: line-3
    path: ./drop
    settle_seconds: 1.5
handlers:
  - kind: event-store
    event_types: ["test.*"]
http:
  enabled: false
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PYWATS_EVENTS_* variable from the caller's shell, and a scratch working directory."""
    for key in list(os.environ):
        if key.startswith("PYWATS_EVENTS_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def assert_file_values(s: Settings) -> None:
    assert s.db == "sqlite:///from-file.db"
    assert s.log_level == "WARNING"
    assert s.bus.concurrency == 3 and s.bus.queue_size == 64
    assert s.bus.retry.max_attempts == 7 and s.bus.retry.initial_delay == 0.25
    assert [(t.kind, t.name, t.options()) for t in s.transports] == [
        ("file", "line-3", {"path": "./drop", "settle_seconds": 1.5})
    ]
    assert [(h.kind, h.event_types) for h in s.handlers] == [("event-store", ["test.*"])]
    assert s.http == {"enabled": False}


@pytest.mark.parametrize(("name", "text"), [("svc.toml", TOML), ("svc.yaml", YAML), ("svc.yml", YAML)])
def test_toml_and_yaml_files_load_the_same_settings(tmp_path: Path, name: str, text: str) -> None:
    assert_file_values(load_settings(write(tmp_path, name, text)))


def test_loaded_file_builds_the_bus_it_describes(tmp_path: Path) -> None:
    bus = build_bus(load_settings(write(tmp_path, "svc.toml", TOML)))
    assert bus.concurrency == 3
    assert bus.retry.max_attempts == 7
    transport = bus.transports["line-3"]
    assert isinstance(transport, FileTransport)
    # a relative path is relative to the file's folder (issue 9, defect 5), not to the current directory
    assert transport.folder == (tmp_path / "drop").resolve() and transport.settings.settle_seconds == 1.5
    (sub,) = list(bus.registry)
    assert isinstance(sub.handler, EventStoreHandler)
    assert "from-file.db" in bus.store.url


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_EVENTS_DB", "sqlite:///from-env.db")
    monkeypatch.setenv("PYWATS_EVENTS_BUS__CONCURRENCY", "9")
    s = load_settings(write(tmp_path, "svc.toml", TOML))
    assert s.db == "sqlite:///from-env.db"
    assert s.bus.concurrency == 9
    # the rest of the file still applies, including the other keys of the overridden [bus] table
    assert s.bus.queue_size == 64 and s.bus.retry.max_attempts == 7
    assert s.transports[0].name == "line-3"


def test_environment_overrides_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_EVENTS_DB", "/data/line.db")
    monkeypatch.setenv("PYWATS_EVENTS_BUS__CONCURRENCY", "5")
    s = load_settings()
    assert (s.db, s.bus.concurrency) == ("/data/line.db", 5)


def test_db_option_beats_environment_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_EVENTS_DB", "sqlite:///from-env.db")
    s = load_settings(write(tmp_path, "svc.yaml", YAML), db="sqlite:///from-option.db")
    assert s.db == "sqlite:///from-option.db"
    assert load_settings(db="plain.db").db == "plain.db"


def test_embedded_default_is_the_inbox_the_event_store_sqlite_and_http(tmp_path: Path) -> None:
    s = load_settings()
    assert s.db == "./pywats-events.db"
    assert [(t.kind, t.options()) for t in s.transports] == [("file", {"path": "./inbox"})]
    assert [h.kind for h in s.handlers] == ["event-store"]
    assert s.http.get("enabled") is True
    bus = build_bus(s)
    (transport,) = bus.transports.values()
    assert isinstance(transport, FileTransport)
    assert transport.folder.resolve() == (tmp_path / "inbox").resolve()
    assert [type(sub.handler) for sub in bus.registry] == [EventStoreHandler]
    assert bus.store.url.startswith("sqlite") and bus.store.url.endswith("pywats-events.db")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("bogus = 1\n", "bogus"),
        ("[bus]\nconcurrenci = 3\n", "bus.concurrenci"),
        ("[bus.retry]\nmax_attempt = 3\n", "bus.retry.max_attempt"),
    ],
    ids=["top-level", "bus", "bus.retry"],
)
def test_unknown_key_is_a_config_error_naming_it(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert named in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[bus]\nconcurrency = 'many'\n", "bus.concurrency"),
        ("[bus]\nconcurrency = 0\n", "bus.concurrency"),
        ("[bus.retry]\ninitial_delay = -1\n", "bus.retry.initial_delay"),
        ("[bus.breaker]\nreset_timeout = 0\n", "bus.breaker.reset_timeout"),
    ],
    ids=["not-a-number", "zero-lanes", "negative-delay", "zero-timeout"],
)
def test_bad_value_is_a_config_error_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_settings(write(tmp_path, "bad.toml", text))


def test_bad_value_from_the_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYWATS_EVENTS_BUS__CONCURRENCY", "lots")
    with pytest.raises(ConfigError, match=r"bus\.concurrency"):
        load_settings()


def test_bad_transport_option_is_a_config_error_naming_it(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "t.toml", '[[transports]]\nkind = "file"\npath = "x"\nsettle_secs = 1\n'))
    with pytest.raises(ConfigError, match="settle_secs"):
        build_bus(s)


def test_unknown_transport_kind_is_a_config_error_naming_it(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "t.toml", '[[transports]]\nkind = "carrier-pigeon"\n'))
    with pytest.raises(ConfigError) as info:
        build_bus(s)
    assert "carrier-pigeon" in str(info.value)
    assert "file" in str(info.value)  # and says which kinds exist


def test_unknown_handler_kind_is_a_config_error_naming_it(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "h.yaml", "handlers:\n  - kind: fax-machine\n"))
    with pytest.raises(ConfigError) as info:
        build_bus(s)
    assert "fax-machine" in str(info.value)
    assert "event-store" in str(info.value)


def test_python_handler_that_cannot_be_imported_is_a_config_error(tmp_path: Path) -> None:
    s = load_settings(
        write(tmp_path, "h.toml", '[[handlers]]\nkind = "python"\ntarget = "no_such_plant_module.pager:Pager"\n')
    )
    with pytest.raises(ConfigError, match="no_such_plant_module"):
        build_bus(s)


def test_python_handler_with_a_missing_attribute_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "plant_handlers_cfg.py").write_text("async def page(event):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    good = load_settings(
        write(tmp_path, "ok.toml", '[[handlers]]\nkind = "python"\ntarget = "plant_handlers_cfg:page"\n')
    )
    assert [sub.name for sub in build_bus(good).registry] == ["page"]
    bad = load_settings(
        write(tmp_path, "bad.toml", '[[handlers]]\nkind = "python"\ntarget = "plant_handlers_cfg:pager"\n')
    )
    with pytest.raises(ConfigError, match="pager"):
        build_bus(bad)


def test_python_handler_without_target_is_a_config_error(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, "h.toml", '[[handlers]]\nkind = "python"\n'))
    with pytest.raises(ConfigError, match="target"):
        build_bus(s)


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("broken.toml", "[bus\nconcurrency = 3\n", "TOML"),
        ("broken.yaml", "bus: [1, 2\n", "YAML"),
        ("list.yaml", "- 1\n- 2\n", "top level"),
        ("svc.ini", "[bus]\n", ".ini"),
    ],
)
def test_unreadable_configuration_is_a_config_error(tmp_path: Path, name: str, text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        load_settings(write(tmp_path, name, text))


def test_missing_configuration_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        load_settings(tmp_path / "nowhere.toml")


# -- issue 9, defects 5 and 14 -----------------------------------------------------------------------
def test_relative_drop_folder_is_relative_to_the_configuration_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "plant"
    conf_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = write(conf_dir, "svc.toml", '[[transports]]\nkind = "file"\nname = "inbox"\npath = "./inbox"\n')
    bus = build_bus(load_settings(cfg))
    transport = bus.transports["inbox"]
    assert isinstance(transport, FileTransport)
    assert transport.folder == (conf_dir / "inbox").resolve()


def test_no_configuration_drop_folder_is_the_current_directorys_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    bus = build_bus(load_settings(None, db="memory://"))
    transport = bus.transports["inbox"]
    assert isinstance(transport, FileTransport)
    assert transport.folder == (tmp_path / "inbox").resolve()
    assert transport.folder.is_absolute()


def test_python_handler_beside_the_configuration_file_imports_without_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "my_plant_pager.py").write_text("async def page(event):\n    pass\n")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(plant))])
    monkeypatch.delitem(sys.modules, "my_plant_pager", raising=False)
    monkeypatch.chdir(tmp_path)  # not the configuration's folder: only that folder on the path helps
    cfg = write(plant, "svc.toml", '[[handlers]]\nkind = "python"\ntarget = "my_plant_pager:page"\n')
    bus = build_bus(load_settings(cfg, db="memory://"))
    assert [sub.name for sub in bus.registry] == ["page"]
    assert sys.path[0] == str(plant.resolve())


@pytest.mark.parametrize("level", ["LOUD", "verbose", ""])
def test_unknown_log_level_is_a_config_error_naming_the_key(tmp_path: Path, level: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "svc.toml", f'log_level = "{level}"\n'))
    assert "log_level" in str(info.value)
    assert "WARNING" in str(info.value)


def test_log_level_is_accepted_in_any_case(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "svc.toml", 'log_level = "debug"\n')).log_level == "DEBUG"
