"""Shared fixtures: the real dumps, a database loaded with them, and the sample fleet."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cpudb.store import db
from cpudb.store.ingest import ingest_paths

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Copies of ../shared/fixtures/lscpu (test_fixture_copies checks they are identical), so
# the suite runs on clones that do not have the shared folder.
FIXTURES = TESTS / "fixtures" / "lscpu"
DATA = TESTS / "data"
SAMPLE_FLEET = ROOT / "data" / "hosts"
SHARED = ROOT.parent / "shared"
REFERENCE = SHARED / "reference"

# Bare-metal fixtures (no hypervisor flag), the inputs most analyses use.
METAL = sorted(
    p.name
    for p in FIXTURES.glob("*.txt")
    if "-vm-" not in p.name
)


def fixture(name: str) -> Path:
    return FIXTURES / name


def requires_reference() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not REFERENCE.is_dir(), reason="../shared/reference is not present")


@pytest.fixture(scope="session")
def fixtures_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding every fixture dump as its own host (named after the file)."""
    path = tmp_path_factory.mktemp("fixtures") / "cpudb.duckdb"
    ingest_paths(path, [FIXTURES])
    return path


@pytest.fixture(scope="session")
def fleet_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the sample fleet shipped in data/hosts."""
    path = tmp_path_factory.mktemp("fleet") / "cpudb.duckdb"
    ingest_paths(path, [SAMPLE_FLEET])
    return path


@pytest.fixture
def fixtures_conn(fixtures_db: Path):
    conn = db.open_read(fixtures_db)
    yield conn
    conn.close()


@pytest.fixture
def fleet_conn(fleet_db: Path):
    conn = db.open_read(fleet_db)
    yield conn
    conn.close()


class DumpsDir:
    """A scratch folder of dump files; ``copy`` puts a fixture there under a host's name."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(exist_ok=True)

    def copy(self, name: str, as_name: str | None = None) -> Path:
        target = self.path / (as_name or name)
        shutil.copyfile(FIXTURES / name, target)
        return target

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)


@pytest.fixture
def dumps_dir(tmp_path: Path) -> DumpsDir:
    return DumpsDir(tmp_path / "dumps")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory):
    """Remembered answers go to a folder of the test run, never to the user's ~/.cache."""
    import os

    saved = os.environ.get("CPUDB_CACHE")
    os.environ["CPUDB_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if saved is None:
        os.environ.pop("CPUDB_CACHE", None)
    else:
        os.environ["CPUDB_CACHE"] = saved
