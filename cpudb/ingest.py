"""Turn dump files into snapshots in the database, as one all-or-nothing write."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from cpudb import catalog, db
from cpudb.errors import CpudbError, DumpParseError, IngestError
from cpudb.parse import HostDump, parse_file
from cpudb.queries import sql

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 500
# Found in dump folders but never dumps; skipped when a folder is scanned (a file named directly is parsed).
DOC_SUFFIXES = (".md", ".tsv", ".rst", ".html", ".pdf")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestResult:
    """What one ingest run did."""

    files: int
    added: int
    unchanged: int
    hosts: int
    failures: tuple[DumpParseError, ...]
    notes: tuple[str, ...]


def find_dump_files(paths: Sequence[str | Path]) -> list[Path]:
    """Files named directly, and every file under folders named, recursively, in a stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(map(Path, sorted(_walk(path))))
        elif path.exists():
            found.append(path)
        else:
            raise CpudbError(f"{path}: no such file or folder")
    return found


def _walk(folder: Path) -> Iterator[str]:
    # os.walk reads file types from the directory entries: no stat per file (100,000 dumps: 0.2 s
    # instead of 1.3 s with Path.rglob and is_file).
    for parent, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not _skipped_name(name):
                yield os.path.join(parent, name)


def _skipped_name(name: str) -> bool:
    """Hidden files and the documentation that sits beside dumps (README.md, INDEX.tsv)."""
    return name.startswith(".") or os.path.splitext(name)[1].lower() in DOC_SUFFIXES


# One parsed dump as the database stores it: the dumps columns (ids and ingest time added when
# stored), its flag sets as digest + text, its extra lines and notes. Plain tuples pickle fast and
# small between worker processes, and 100,000 of them fit in memory where HostDumps would not.
Row = tuple
_ROW_FIELDS = (
    "host", "sha256", "source_path", "source_format", "collected_at", "kernel", "vendor", "model_name",
    "family", "model", "stepping", "microcode", "sockets", "cores_per_socket", "threads_per_core",
    "hypervisor_vendor", "is_guest", "flags", "guest_flags", "guest_source", "notes", "extra",
    "qemu_version", "libvirt_version", "nova_version",
)
_FLAGS, _GUEST_FLAGS, _NOTES, _EXTRA = (_ROW_FIELDS.index(n) for n in ("flags", "guest_flags", "notes", "extra"))
_HOST, _SHA256, _PATH, _FORMAT, _COLLECTED = (
    _ROW_FIELDS.index(n) for n in ("host", "sha256", "source_path", "source_format", "collected_at"))
STORE_BATCH = 10_000  # dumps inserted per statement: bounded memory, few round trips


def to_row(dump: HostDump) -> Row:
    return (
        dump.host, dump.sha256, dump.source_path, dump.source_format, dump.collected_at, dump.kernel,
        dump.vendor, dump.model_name, dump.family, dump.model, dump.stepping, dump.microcode, dump.sockets,
        dump.cores_per_socket, dump.threads_per_core, dump.hypervisor_vendor, dump.is_guest,
        _flag_text(dump.flags), _flag_text(dump.guest_features) if dump.guest_features is not None else None,
        dump.guest_source, "; ".join(dump.notes) or None,
        tuple((line.kind, line.name, line.value) for line in dump.extra),
        dump.qemu_version, dump.libvirt_version, dump.nova_version,
    )


def _flag_text(flags: Iterable[str]) -> str:
    """A flag set as one string, sorted: its own dedup key and compact to pass between processes."""
    return " ".join(sorted(flags))


def flagset_digest(flags: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(flags)).encode()).hexdigest()


def parse_stream(files: Sequence[Path], progress: Progress | None = None) -> Iterator[tuple[list[Row], list[DumpParseError]]]:
    """Parse every file, in worker processes when there are many, yielding (rows, failures) per chunk
    in file order."""
    known = catalog.known_kernel_flags()
    chunks = [files[i : i + PARSE_CHUNK] for i in range(0, len(files), PARSE_CHUNK)]
    workers = min(os.cpu_count() or 1, 8)
    done = 0
    if len(files) >= PARALLEL_THRESHOLD and workers > 1:
        # spawn, not fork: a forked worker would inherit the writer's lock and keep it after a kill.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                 initargs=(os.getpid(),)) as pool:
            results = pool.map(_parse_chunk, chunks, [known] * len(chunks))
            for chunk, result in zip(chunks, results):
                done += len(chunk)
                if progress:
                    progress(done, len(files))
                yield result
    else:
        for chunk in chunks:
            result = _parse_chunk(chunk, known)
            done += len(chunk)
            if progress:
                progress(done, len(files))
            yield result


def _start_worker(parent: int) -> None:
    """A parse worker dies with the cpudb process that started it (killed or not)."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Parsing makes many small objects that all live until the chunk is sent; the cyclic
    # collector would scan them again and again for nothing (a third of the parse time).
    gc.disable()


def _parse_chunk(files: Sequence[Path], known: frozenset[str]) -> tuple[list[Row], list[DumpParseError]]:
    parsed: list[Row] = []
    failed: list[DumpParseError] = []
    for path in files:
        try:
            parsed.append(to_row(parse_file(path, known_flags=known)))
        except DumpParseError as exc:
            failed.append(exc)
    return parsed, failed


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
    with db.write(db_path) as conn:
        result = _ingest(conn, files, progress, skip_bad)
    return result


def ingest_into(conn: duckdb.DuckDBPyConnection, paths: Sequence[str | Path]) -> IngestResult:
    """Ingest into an open (in-memory) database, for commands run with --dumps."""
    return _ingest(conn, find_dump_files(paths), None, skip_bad=False)


def _ingest(conn, files: Sequence[Path], progress: Progress | None, skip_bad: bool) -> IngestResult:
    writer = Writer(conn)
    failures: list[DumpParseError] = []
    notes: list[str] = []
    first_of: dict[str, Row] = {}
    with _gc_paused():
        for rows, failed in parse_stream(files, progress):
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
    return IngestResult(len(files), added, unchanged, hosts, tuple(failures), tuple(notes))


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
        columns: dict[str, list] = {name: [] for name in _DUMP_COLUMNS}
        lines: dict[str, list] = {"dump_id": [], "kind": [], "name": [], "value": []}
        for offset, row in enumerate(rows):
            dump_id = self.next_dump + offset
            values = dict(zip(_ROW_FIELDS, row))
            for key in ("flags", "guest_flags"):
                text = values[key]
                if text is not None and text not in by_text:
                    by_text[text] = self._flagset(text, new_sets)
            values.update(
                dump_id=dump_id,
                kind=self.kind,
                flagset_id=by_text[values["flags"]],
                guest_flagset_id=by_text[values["guest_flags"]] if values["guest_flags"] is not None else None,
            )
            for name in _DUMP_COLUMNS:
                columns[name].append(values[name])
            for kind, name, value in row[_EXTRA]:
                lines["dump_id"].append(dump_id)
                lines["kind"].append(kind)
                lines["name"].append(name)
                lines["value"].append(value)
            self.touched.add(row[0])
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
        self.conn.execute(sql("insert-dumps"), {**columns, "ingested_at": self.ingested_at})
        if lines["dump_id"]:
            self.conn.execute(sql("insert-dump-lines"), lines)


_DUMP_COLUMNS = (
    "dump_id",
    "host",
    "kind",
    "sha256",
    "source_path",
    "source_format",
    "collected_at",
    "kernel",
    "vendor",
    "model_name",
    "family",
    "model",
    "stepping",
    "microcode",
    "sockets",
    "cores_per_socket",
    "threads_per_core",
    "hypervisor_vendor",
    "is_guest",
    "flagset_id",
    "guest_flagset_id",
    "guest_source",
    "notes",
    "qemu_version",
    "libvirt_version",
    "nova_version",
)
