"""Write output files atomically: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

from cpudb.errors import OutputError


@cache
def _umask() -> int:
    # Read once: os.umask can only be read by setting it, which would race with other threads
    # (cpudb collect writes from several) creating files meanwhile.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp creates 0600; a report is a normal file
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def replace_together(outputs: dict[Path, bytes | dict[str, bytes]]) -> None:
    """Write every output (a file's bytes, or a folder's files) beside its place, then move them all
    into place: a failure while writing (a full disk, a parent that is a file) leaves every earlier
    output as it was, and the new ones appear together."""
    import shutil

    staged: list[tuple[Path, Path]] = []
    path = Path(next(iter(outputs)))
    try:
        for path, data in outputs.items():
            path = Path(path)
            _parent(path)
            if isinstance(data, dict):
                temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
                staged.append((temp, path))
                os.chmod(temp, 0o777 & ~_umask())
                for name, content in data.items():
                    _write_file(temp / name, content)
            else:
                fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
                os.close(fd)
                staged.append((Path(name), path))
                _write_file(Path(name), data)
    except OSError as exc:
        for temp, _ in staged:
            shutil.rmtree(temp, ignore_errors=True) if temp.is_dir() else temp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc}); no output of this run was replaced") from None
    except BaseException:
        for temp, _ in staged:
            shutil.rmtree(temp, ignore_errors=True) if temp.is_dir() else temp.unlink(missing_ok=True)
        raise
    for temp, path in staged:
        if temp.is_dir():
            old = None
            if path.is_dir():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
                os.rmdir(old)
                os.replace(path, old)
            os.replace(temp, path)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, path)


def _parent(path: Path) -> None:
    """Make the folder a report goes to, or say in words what stands in its way."""
    parent = path.parent
    for ancestor in [parent, *parent.parents]:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise OutputError(f"{path}: cannot write: {ancestor} is a file, not a folder")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create the folder {parent} ({exc.strerror or exc})") from None
    if path.exists() and path.is_dir() != (path.suffix == ""):
        kind = "a folder" if path.is_dir() else "a file"
        raise OutputError(f"{path}: cannot write: {kind} of that name is in the way")


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o666 & ~_umask())
