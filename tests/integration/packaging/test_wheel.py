"""What the built distributions hold (issue 18.5): the wheel has every module and data file of the six
packages (console templates and static files, Alembic migrations, py.typed), its metadata says what CI
tests (Python 3.11 and 3.13), and an installed package finds its data files. ``.ci/run`` builds the wheel
and sdist and runs these against the wheel installed on Python 3.13 (``PYWATS_DIST``,
``PYWATS_INSTALLED_PACKAGE=1``, see ``.ci/wheel-tests``); without ``PYWATS_DIST`` the distributions are
built from the checkout first."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import zipfile
from importlib.resources import files
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
PACKAGES = ("pywats_events", "pywats_cfx", "pywats_mqtt", "pywats_nats", "pywats_wats", "pywats_lab")
#: Data files the code opens at run time (not modules): each must be in the wheel.
DATA_FILES = (
    "pywats_events/http/console/templates/base.html",
    "pywats_events/http/console/templates/events.html",
    "pywats_events/http/console/templates/dead_letters.html",
    "pywats_events/http/console/static/console.css",
    "pywats_events/http/console/static/console.js",
    "pywats_events/migrations/script.py.mako",
    "pywats_events/migrations/env.py",
    "pywats_events/migrations/versions/0001_baseline.py",
    *(f"{p}/py.typed" for p in PACKAGES),
)
#: Python versions CI runs the tests on (.ci/run): the classifiers must name exactly these.
TESTED_PYTHONS = ("3.11", "3.13")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("PYWATS_DIST")
    if given:
        return Path(given)
    if not (REPO / "pywats_events").is_dir():
        pytest.fail("no PYWATS_DIST given and no source tree here to build the distributions from")
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist}, found {found}"
    return found[0]


def wheel_names(dist: Path) -> set[str]:
    with zipfile.ZipFile(one(dist, "pywats_events-*.whl")) as whl:
        return set(whl.namelist())


def sdist_package_files(dist: Path) -> set[str]:
    """Files of the six packages in the sdist, as paths inside the package root (``pywats_events/bus.py``)."""
    with tarfile.open(one(dist, "pywats_events-*.tar.gz")) as sdist:
        names = {str(PurePosixPath(*PurePosixPath(m.name).parts[1:])) for m in sdist.getmembers() if m.isfile()}
    return {n for n in names if n.split("/", 1)[0] in PACKAGES}


def test_the_wheel_holds_every_module_and_data_file(dist: Path) -> None:
    names = wheel_names(dist)
    missing = [f for f in DATA_FILES if f not in names]
    assert not missing, f"wheel lacks data files: {missing}"
    assert {n.split("/", 1)[0] for n in names if "/" in n and not n.startswith("pywats_events-")} == set(PACKAGES)
    # Everything of the packages the sdist carries (the source tree) is in the wheel.
    sources = sdist_package_files(dist)
    assert "pywats_events/bus.py" in sources and "pywats_events/http/console/templates/base.html" in sources
    assert sorted(sources - names) == []
    # And the sdist carries every file of the packages in the checkout (when there is one).
    if (REPO / ".git").exists() and (REPO / "pywats_events").is_dir():
        tracked = subprocess.run(
            ["git", "ls-files", "--", *PACKAGES], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
        assert tracked and sorted(set(tracked) - sources) == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]


def test_the_metadata_says_what_ci_tests(dist: Path) -> None:
    with zipfile.ZipFile(one(dist, "pywats_events-*.whl")) as whl:
        info = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(whl.read(info))
        entry_points = whl.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert meta["Requires-Python"] == f">={TESTED_PYTHONS[0]}"
    python = "Programming Language :: Python :: 3."
    versions = sorted(c.rsplit(" :: ", 1)[1] for c in meta.get_all("Classifier") or [] if c.startswith(python))
    assert versions == list(TESTED_PYTHONS)
    assert "Typing :: Typed" in meta.get_all("Classifier")
    assert meta["License-Expression"] == "Apache-2.0"
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"all", "amqp", "mqtt", "nats", "postgres", "http", "test", "docs"} <= extras
    assert any(r.startswith("swagger-ui-bundle") for r in meta.get_all("Requires-Dist") or [])  # /docs assets
    assert "pywats-events = pywats_events.cli:main" in entry_points
    for group in ("pywats_events.transports", "pywats_events.handlers", "pywats_events.decoders", "pytest11"):
        assert f"[{group}]" in entry_points


def test_the_installed_package_finds_its_data_files() -> None:
    import pywats_events
    from pywats_events.migrations import script_directory

    for package in PACKAGES:
        assert files(package).joinpath("py.typed").is_file(), package
    console = files("pywats_events.http.console")
    assert console.joinpath("templates", "base.html").is_file()
    assert console.joinpath("static", "console.css").is_file()
    assert script_directory().get_heads(), "no Alembic revisions found"
    from pywats_events.http.docs import swagger_ui_dir

    assert (swagger_ui_dir() / "swagger-ui-bundle.js").is_file()
    if os.environ.get("PYWATS_INSTALLED_PACKAGE") == "1":
        where = Path(pywats_events.__file__).resolve()
        assert "site-packages" in where.parts and not where.is_relative_to(REPO), where
