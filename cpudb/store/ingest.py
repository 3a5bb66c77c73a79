"""Turn dump files into snapshots in the database, as one all-or-nothing write."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cpudb.catalog import dictionary as catalog
from cpudb.errors import DumpParseError, IngestError
from cpudb.inputs.rows import (  # noqa: F401 - PARALLEL_THRESHOLD and find_dump_files are part of this module's face
    _COLLECTED, _FORMAT, _HOST, _NOTES, _PATH, _SHA256, PARALLEL_THRESHOLD, Progress, Row, find_dump_files,
    parsed_chunks,
)
from cpudb.store import db
from cpudb.store.writer import Writer, store  # noqa: F401 - store is part of this module's face


@dataclass(frozen=True)
class IngestResult:
    """What one ingest run did."""

    files: int
    added: int
    unchanged: int
    hosts: int
    failures: tuple[DumpParseError, ...]
    notes: tuple[str, ...]


def ingest_paths(
    db_path: Path,
    paths: Sequence[str | Path],
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> IngestResult:
    """Parse the dumps under ``paths`` and store them in the database at ``db_path``.

    Dumps are stored while later files are parsed, into the private copy db.write works on; if
    any file fails and ``skip_bad`` is false, every failure is reported and the copy is thrown
    away: the database is not changed.
    """
    files = find_dump_files(paths)
    # Parsing starts first: the workers read files while the database is copied and prepared.
    with parsed_chunks(files, catalog.known_kernel_flags(), progress) as chunks, db.write(db_path) as conn:
        return _ingest(conn, len(files), chunks, skip_bad)


def ingest_into(conn: duckdb.DuckDBPyConnection, paths: Sequence[str | Path]) -> IngestResult:
    """Ingest into an open (in-memory) database, for commands run with --dumps."""
    files = find_dump_files(paths)
    with parsed_chunks(files, catalog.known_kernel_flags()) as chunks:
        return _ingest(conn, len(files), chunks, skip_bad=False)


def _ingest(conn: duckdb.DuckDBPyConnection, files: int, chunks: Iterable[tuple[list[Row], list[DumpParseError]]],
            skip_bad: bool) -> IngestResult:
    writer = Writer(conn)
    failures: list[DumpParseError] = []
    notes: list[str] = []
    first_of: dict[str, Row] = {}
    with _gc_paused():
        for rows, failed in chunks:
            failed = list(failed)
            rows = [row for row in rows if not _same_host_twice(row, first_of, failed)]
            failures.extend(failed)
            if failures and not skip_bad:
                continue  # parse on, to report every bad file at once
            writer.add(rows)
            notes += [f"{row[2]}: {note}" for row in rows if row[_NOTES] for note in row[_NOTES].split("; ")]
    if failures and not skip_bad:
        raise IngestError(failures)
    added, unchanged, hosts = writer.finish()
    return IngestResult(files, added, unchanged, hosts, tuple(failures), tuple(notes))


def _same_host_twice(row: Row, first_of: dict[str, Row], failed: list[DumpParseError]) -> bool:
    """A second dump of one host in one ingest, when nothing says which is newer (no ``collected:``
    times that differ): which one is "latest" would depend on argument order. A domcapabilities
    file beside the host's lscpu dump is its guest view, not a second dump."""
    if row[_FORMAT] == "virsh-domcapabilities":
        return False
    first = first_of.setdefault(row[_HOST], row)
    if first is row or first[_SHA256] == row[_SHA256]:
        return False
    if first[_COLLECTED] is not None and row[_COLLECTED] is not None and first[_COLLECTED] != row[_COLLECTED]:
        return False
    failed.append(DumpParseError(row[_PATH], f"host {row[_HOST]} is also the host of {first[_PATH]}, and no "
                                 "'collected:' times say which is newer (rename one, or ingest them one at a time)"))
    return True


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
