"""Turn dump files into snapshots in the database, as one all-or-nothing write."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
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
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not _skipped_in_folder(p)))
        elif path.exists():
            found.append(path)
        else:
            raise CpudbError(f"{path}: no such file or folder")
    return found


def _skipped_in_folder(path: Path) -> bool:
    """Hidden files and the documentation that sits beside dumps (README.md, INDEX.tsv)."""
    return path.name.startswith(".") or path.suffix.lower() in DOC_SUFFIXES


def parse_many(files: Sequence[Path], progress: Progress | None = None) -> tuple[list[HostDump], list[DumpParseError]]:
    """Parse every file, in worker processes when there are many; keep every failure."""
    known = catalog.known_kernel_flags()
    dumps: list[HostDump] = []
    failures: list[DumpParseError] = []
    chunks = [files[i : i + PARSE_CHUNK] for i in range(0, len(files), PARSE_CHUNK)]
    workers = min(os.cpu_count() or 1, 8)
    done = 0
    if len(files) >= PARALLEL_THRESHOLD and workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(_parse_chunk, chunks, [known] * len(chunks))
            for chunk, (parsed, failed) in zip(chunks, results):
                dumps.extend(parsed)
                failures.extend(failed)
                done += len(chunk)
                if progress:
                    progress(done, len(files))
    else:
        for chunk in chunks:
            parsed, failed = _parse_chunk(chunk, known)
            dumps.extend(parsed)
            failures.extend(failed)
            done += len(chunk)
            if progress:
                progress(done, len(files))
    return dumps, failures


def _parse_chunk(files: Sequence[Path], known: frozenset[str]) -> tuple[list[HostDump], list[DumpParseError]]:
    parsed: list[HostDump] = []
    failed: list[DumpParseError] = []
    for path in files:
        try:
            parsed.append(parse_file(path, known_flags=known))
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

    All files are parsed before anything is written; if any fails and ``skip_bad`` is
    false, nothing is written and IngestError lists every failure.
    """
    files = find_dump_files(paths)
    dumps, failures = parse_many(files, progress)
    if failures and not skip_bad:
        raise IngestError(failures)
    with db.write(db_path) as conn:
        added, unchanged, hosts = store(conn, dumps)
    return IngestResult(len(files), added, unchanged, hosts, tuple(failures), _notes(dumps))


def ingest_into(conn: duckdb.DuckDBPyConnection, paths: Sequence[str | Path]) -> IngestResult:
    """Ingest into an open (in-memory) database, for commands run with --dumps."""
    files = find_dump_files(paths)
    dumps, failures = parse_many(files)
    if failures:
        raise IngestError(failures)
    added, unchanged, hosts = store(conn, dumps)
    return IngestResult(len(files), added, unchanged, hosts, (), _notes(dumps))


def _notes(dumps: Iterable[HostDump]) -> tuple[str, ...]:
    return tuple(f"{dump.source_path}: {note}" for dump in dumps for note in dump.notes)


def flagset_digest(flags: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(flags)).encode()).hexdigest()


def store(conn: duckdb.DuckDBPyConnection, dumps: Sequence[HostDump], kind: str = "host") -> tuple[int, int, int]:
    """Insert new snapshots in bulk; return (added, already known, hosts touched)."""
    seen = {(host, sha) for host, sha in conn.execute(sql("known-snapshots")).fetchall()}
    fresh: list[HostDump] = []
    for dump in dumps:
        key = (dump.host, dump.sha256)
        if key not in seen:
            seen.add(key)
            fresh.append(dump)
    if not fresh:
        return 0, len(dumps), 0
    next_dump, next_flagset = conn.execute(sql("next-ids")).fetchone()
    flagset_ids = dict(conn.execute(sql("known-flagsets")).fetchall())
    new_sets: dict[str, tuple[int, frozenset[str]]] = {}

    def flagset_id(flags: frozenset[str]) -> int:
        nonlocal next_flagset
        digest = flagset_digest(flags)
        if digest not in flagset_ids:
            flagset_ids[digest] = next_flagset
            new_sets[digest] = (next_flagset, flags)
            next_flagset += 1
        return flagset_ids[digest]

    columns: dict[str, list] = {name: [] for name in _DUMP_COLUMNS}
    lines: dict[str, list] = {"dump_id": [], "kind": [], "name": [], "value": []}
    for offset, dump in enumerate(fresh):
        dump_id = next_dump + offset
        row = {
            "dump_id": dump_id,
            "host": dump.host,
            "kind": kind,
            "sha256": dump.sha256,
            "source_path": dump.source_path,
            "source_format": dump.source_format,
            "collected_at": dump.collected_at,
            "kernel": dump.kernel,
            "vendor": dump.vendor,
            "model_name": dump.model_name,
            "family": dump.family,
            "model": dump.model,
            "stepping": dump.stepping,
            "microcode": dump.microcode,
            "sockets": dump.sockets,
            "cores_per_socket": dump.cores_per_socket,
            "threads_per_core": dump.threads_per_core,
            "hypervisor_vendor": dump.hypervisor_vendor,
            "is_guest": dump.is_guest,
            "flagset_id": flagset_id(dump.flags),
            "guest_flagset_id": flagset_id(dump.guest_features) if dump.guest_features is not None else None,
            "guest_source": dump.guest_source,
            "notes": "; ".join(dump.notes) or None,
        }
        for name in _DUMP_COLUMNS:
            columns[name].append(row[name])
        for line in dump.extra:
            lines["dump_id"].append(dump_id)
            lines["kind"].append(line.kind)
            lines["name"].append(line.name)
            lines["value"].append(line.value)
    if new_sets:
        ids = [fid for fid, _ in new_sets.values()]
        conn.execute(
            sql("insert-flagsets"),
            {"ids": ids, "digests": list(new_sets), "sizes": [len(flags) for _, flags in new_sets.values()]},
        )
        conn.execute(
            sql("insert-flagset-flags"),
            {
                "ids": [fid for fid, flags in new_sets.values() for _ in flags],
                "flags": [flag for _, flags in new_sets.values() for flag in sorted(flags)],
            },
        )
    conn.execute(sql("insert-dumps"), {**columns, "ingested_at": datetime.now(timezone.utc)})
    if lines["dump_id"]:
        conn.execute(sql("insert-dump-lines"), lines)
    touched = sorted({dump.host for dump in fresh})
    conn.execute(sql("refresh-hosts"), {"hosts": touched})
    return len(fresh), len(dumps) - len(fresh), len(touched)


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
)
