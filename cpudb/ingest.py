"""Turn dump files into snapshots in the database, as one all-or-nothing write."""

from __future__ import annotations

import contextlib
import gc
import operator
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from cpudb import catalog, db
from cpudb.errors import DumpParseError, IngestError
from cpudb.parse import HostDump
from cpudb.parse_rows import (  # noqa: F401 - PARALLEL_THRESHOLD and find_dump_files are part of this module's face
    _COLLECTED, _EXTRA, _FLAGS, _FORMAT, _GUEST_FLAGS, _HOST, _NOTES, _PATH, _ROW_FIELDS, _SHA256,
    PARALLEL_THRESHOLD, Progress, Row, find_dump_files, flagset_digest, parsed_chunks, to_row,
)
from cpudb.queries import sql

STORE_BATCH = 10_000  # dumps inserted per statement: bounded memory, few round trips


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


def store(conn: duckdb.DuckDBPyConnection, dumps: Sequence[HostDump], kind: str = "host") -> tuple[int, int, int]:
    """Insert snapshots in bulk; return (added, already known, hosts touched)."""
    writer = Writer(conn, kind)
    writer.add([to_row(dump) for dump in dumps])
    return writer.finish()


class Writer:
    """Stores rows in batches: new snapshots only, each distinct flag set once, then re-points hosts."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, kind: str = "host"):
        self.conn, self.kind = conn, kind
        self.seen = {(host, sha) for host, sha in conn.execute(sql("known-snapshots")).fetchall()}
        self.next_dump, self.next_flagset = conn.execute(sql("next-ids")).fetchone()
        self.flagset_ids: dict[str, int] = dict(conn.execute(sql("known-flagsets")).fetchall())
        self.pending: list[Row] = []
        self.touched: set[str] = set()
        self.added = self.unchanged = 0
        self.ingested_at = datetime.now(timezone.utc)

    def add(self, rows: Iterable[Row]) -> None:
        for row in rows:
            key = (row[0], row[1])
            if key in self.seen:
                self.unchanged += 1
                continue
            self.seen.add(key)
            self.pending.append(row)
            if len(self.pending) >= STORE_BATCH:
                self._flush()

    def finish(self) -> tuple[int, int, int]:
        self._flush()
        if self.touched:
            self.conn.execute(sql("refresh-hosts"), {"hosts": sorted(self.touched)})
        return self.added, self.unchanged, len(self.touched)

    def _flagset(self, text: str, new_sets: dict[str, tuple[int, list[str]]]) -> int:
        flags = text.split(" ") if text else []
        digest = flagset_digest(flags)
        if digest not in self.flagset_ids:
            self.flagset_ids[digest] = self.next_flagset
            new_sets[digest] = (self.next_flagset, flags)
            self.next_flagset += 1
        return self.flagset_ids[digest]

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        new_sets: dict[str, tuple[int, list[str]]] = {}
        by_text: dict[str, int] = {}
        # In the order the rows name them, so flag set ids do not depend on hashing.
        for text in dict.fromkeys(text for row in rows for text in (row[_FLAGS], row[_GUEST_FLAGS])):
            if text is not None:
                by_text[text] = self._flagset(text, new_sets)
        # Hosts of one CPU model share every column but their name, file and time: each distinct
        # profile is sent once (a tenth of the values to convert for a large fleet).
        profile_of: dict[tuple, int] = {}
        profiles = [profile_of.setdefault(_profile(row), len(profile_of)) for row in rows]
        distinct = dict(zip(_PROFILE_FIELDS, zip(*profile_of))) if profile_of else {}
        own = dict(zip(_ROW_FIELDS, zip(*rows)))
        dump_ids = list(range(self.next_dump, self.next_dump + len(rows)))
        params = {name: list(distinct[name]) for name in _PROFILE_COLUMNS}
        params["flagset_id"] = [by_text[text] for text in distinct["flags"]]
        params["guest_flagset_id"] = [None if text is None else by_text[text] for text in distinct["guest_flags"]]
        params.update({name: list(own[name]) for name in ("host", "sha256", "source_path", "collected_at")},
                      dump_id=dump_ids, profile=profiles, kind=self.kind, ingested_at=self.ingested_at)
        lines: dict[str, list] = {"line_profile": [], "kind": [], "name": [], "value": []}
        for number, extra in enumerate(distinct["extra"]):
            for kind, name, value in extra:
                lines["line_profile"].append(number)
                lines["kind"].append(kind)
                lines["name"].append(name)
                lines["value"].append(value)
        self.touched.update(own["host"])
        self.next_dump += len(rows)
        self.added += len(rows)
        if new_sets:
            self.conn.execute(
                sql("insert-flagsets"),
                {"ids": [i for i, _ in new_sets.values()], "digests": list(new_sets),
                 "sizes": [len(flags) for _, flags in new_sets.values()]},
            )
            self.conn.execute(
                sql("insert-flagset-flags"),
                {"ids": [i for i, flags in new_sets.values() for _ in flags],
                 "flags": [flag for _, flags in new_sets.values() for flag in flags]},
            )
        self.conn.execute(sql("insert-dumps"), params)
        if lines["kind"]:
            self.conn.execute(sql("insert-dump-lines"), {**lines, "dump_id": dump_ids, "profile": profiles})


# Every row field but those of one snapshot alone; the columns of dumps among them.
_PROFILE_FIELDS = tuple(name for name in _ROW_FIELDS if name not in ("host", "sha256", "source_path", "collected_at"))
_profile = operator.itemgetter(*(_ROW_FIELDS.index(name) for name in _PROFILE_FIELDS))
_PROFILE_COLUMNS = tuple(name for name in _PROFILE_FIELDS if name not in ("flags", "guest_flags", "extra"))
