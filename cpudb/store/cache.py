"""Remembered answers of read-only analyses, so a repeated `cpudb baseline` costs no query work.

An answer is a pure function of the database file, the catalog, the inventory (for @groups), the
code and the arguments. cpudb never modifies a database file in place: every write renames a new
file into place, so the file's identity (device, inode, size, modification time) names its
content. The key covers all of these; any change gives a new key, and a damaged or unreadable
entry is simply recomputed.

Entries live in ``$CPUDB_CACHE`` (``off`` disables the cache), else ``$XDG_CACHE_HOME/cpudb`` or
``~/.cache/cpudb``, in a folder only the user can read; the newest ``MAX_ENTRIES`` are kept.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from cpudb import __version__

MAX_ENTRIES = 200
FORMAT = "1"


def folder() -> Path | None:
    """The cache folder, or None when caching is off."""
    setting = os.environ.get("CPUDB_CACHE", "")
    if setting.lower() in ("off", "0", "no", "false"):
        return None
    if setting:
        return Path(setting)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cpudb"


@cache
def _code_identity() -> str:
    """What the answer's code is: the version, plus every module, query and catalog file's size and
    modification time (an edited checkout never reuses answers of the code before)."""
    from cpudb.resources import resource_dir

    digest = hashlib.sha256(f"{FORMAT} {__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    files = sorted(package.rglob("*.py")) + sorted(resource_dir("queries").glob("*.sql"))
    files += sorted(resource_dir("data").glob("*.json")) + sorted(resource_dir("data").glob("*/*.json"))
    files += sorted(resource_dir("data").glob("*.yaml"))
    for path in files:
        stat = path.stat()
        digest.update(f"{path.parent.name}/{path.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def key(db_path: Path, *parts: Any) -> str | None:
    """The key of an answer about the database at ``db_path``; None when it cannot be cached."""
    try:
        stat = db_path.stat()
    except OSError:
        return None
    identity = f"{stat.st_dev} {stat.st_ino} {stat.st_size} {stat.st_mtime_ns} {db_path.resolve()}"
    return hashlib.sha256(repr((_code_identity(), identity, parts)).encode()).hexdigest()


def file_identity(path: Path | None) -> str | None:
    """Size and modification time of an input file the answer depends on (the inventory)."""
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{path.resolve()} {stat.st_size} {stat.st_mtime_ns}"


def load(entry: str | None) -> Any | None:
    where = folder()
    if entry is None or where is None:
        return None
    try:
        # Only a folder of this user's that nobody else can write is trusted with pickles.
        info = where.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return None
        with open(where / entry, "rb") as handle:
            return pickle.load(handle)
    except Exception:  # noqa: BLE001 - missing, damaged or from older code: recompute
        return None


def store(entry: str | None, value: Any) -> None:
    """Keep an answer; never fails the command (a read-only home is fine)."""
    where = folder()
    if entry is None or where is None:
        return
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".", dir=where)
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, where / entry)
        _prune(where)
    except OSError:
        return


def _prune(where: Path) -> None:
    entries = [p for p in where.iterdir() if not p.name.startswith(".")]
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for path in entries[: len(entries) - MAX_ENTRIES]:
        path.unlink(missing_ok=True)
