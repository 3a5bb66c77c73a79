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
