"""The layout shows the architecture: the layers hold (no module imports upward), the core names no
plug-in, every public name is importable and documented, and old import paths keep working."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = str(ROOT / "pyproject.toml")

#: Packages whose ``__all__`` is public API.
PUBLIC_PACKAGES = (
    "pywats_events",
    "pywats_events.http",
    "pywats_events.analytics",
    "pywats_events.transport",
    "pywats_events.dead_letter",
    "pywats_cfx",
    "pywats_mqtt",
    "pywats_nats",
    "pywats_wats",
    "pywats_lab",
)


def lint_imports(config: str) -> subprocess.CompletedProcess[str]:
    """Run import-linter on ``config`` in a child process: its command line reconfigures logging
    (``dictConfig`` disables every logger that exists), which would silence later tests' ``caplog``."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(sys.argv[1], no_cache=True))"
    return subprocess.run([sys.executable, "-c", code, config], capture_output=True, text=True, cwd=ROOT)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # strings and lists of strings: JSON spells them as TOML does


def test_import_contracts_of_pyproject_are_kept() -> None:
    config = tomllib.loads(Path(PYPROJECT).read_text())["tool"]["importlinter"]
    assert {c["id"] for c in config["contracts"]} >= {"core-layers", "core-names-no-plugin", "plugins-independent"}
    out = lint_imports(PYPROJECT)
    # The linter's report names each offending import chain and its line.
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 3 kept, 0 broken." in out.stdout


def test_layers_contract_detects_an_upward_import(tmp_path: Path) -> None:
    # The same contract with the bus moved below the store: the bus imports the store, so it must break.
    config = tomllib.loads(Path(PYPROJECT).read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["id"] == "core-layers")
    layers = [layer for layer in contract["layers"] if layer != "bus"]
    layers.insert(layers.index("store") + 1, "bus")
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in config.items() if k != "contracts"]
    lines.append("[[tool.importlinter.contracts]]")
    lines += [f"{k} = {_toml_value(layers if k == 'layers' else v)}" for k, v in contract.items()]
    altered = tmp_path / "pyproject.toml"
    altered.write_text("\n".join(lines) + "\n")
    out = lint_imports(str(altered))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "pywats_events.bus is not allowed to import pywats_events.store" in out.stdout


def test_no_core_module_imports_the_package_root() -> None:
    # `pywats_events/__init__.py` imports every public module, so importing it from inside is upward.
    graph = grimp.build_graph("pywats_events", exclude_type_checking_imports=True)
    importers = {m for m in graph.find_modules_that_directly_import("pywats_events") if m != "pywats_events"}
    assert importers == set()


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_name_imports_and_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert len(names) == len(set(names)), f"{package}.__all__ lists a name twice"
    undocumented = []
    for name in names:
        obj = getattr(module, name)  # AttributeError names the missing one
        if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj):
            doc = inspect.getdoc(obj)
        else:  # a constant: documented by the ``#:`` comment or the module docstring; a type alias by itself
            continue
        if not doc or not doc.strip():
            undocumented.append(name)
    assert undocumented == [], f"{package}: public names without a docstring: {undocumented}"


def test_old_transport_paths_reexport_the_moved_objects_with_a_deprecation_warning() -> None:
    import pywats_events.http.webhook as webhook
    import pywats_events.transport as contract

    for old, new in (("pywats_events.transports.base", contract), ("pywats_events.transports.webhook", webhook)):
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shim = importlib.import_module(old)
        assert any(issubclass(w.category, DeprecationWarning) and new.__name__ in str(w.message) for w in caught)
        for name in shim.__all__:
            assert getattr(shim, name) is getattr(new, name), f"{old}.{name}"


def test_names_users_had_stay_where_they_were() -> None:
    import pywats_events
    import pywats_events.dead_letter as dead_letter
    import pywats_events.http as http
    import pywats_events.store as store
    import pywats_events.transport as contract
    import pywats_events.transports as transports

    assert store.DeadLetterEntry is dead_letter.DeadLetterEntry is pywats_events.DeadLetterEntry
    assert store.DeadLetterReason is dead_letter.DeadLetterReason is pywats_events.DeadLetterReason
    for name in ("InboundMessage", "IngestSink", "RawRecord", "SettleResult", "Transport", "TransportState"):
        assert getattr(transports, name) is getattr(contract, name) is getattr(pywats_events, name)
    assert pywats_events.WebhookTransport is http.WebhookTransport
    assert pywats_events.__version__ == importlib.import_module("pywats_events._version").__version__


def test_webhook_entry_point_names_the_http_wing() -> None:
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pywats_events.transports") if e.name == "webhook"]
    assert ep.module == "pywats_events.http.webhook"
    assert ep.load() is importlib.import_module("pywats_events.http.webhook").WebhookTransport
