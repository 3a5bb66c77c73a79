"""Dump files to rows, in worker processes when that pays: the parse half of an ingest.

Takes file paths, returns database rows (plain tuples) and parse errors, chunk by chunk in file
order. Imports only the parsers, so a worker process starts in a few tens of milliseconds.
"""

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
from itertools import repeat
from pathlib import Path

from cpudb.errors import CpudbError, DumpParseError
from cpudb.inputs.parse import HostDump, parse_file
from cpudb.inputs.records import Memo

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 2000
PARSE_CHUNK = 500
# Found in dump folders but never dumps; skipped when a folder is scanned (a file named directly is parsed).
DOC_SUFFIXES = (".md", ".tsv", ".rst", ".html", ".pdf")

Progress = Callable[[int, int], None]


def find_dump_files(paths: Sequence[str | Path]) -> list[str]:
    """Files named directly, and every file under folders named, recursively, in a stable order."""
    found: list[str] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            found.extend(sorted(_walk(path)))
        elif os.path.exists(path):
            found.append(path)
        else:
            raise CpudbError(f"{path}: no such file or folder")
    return found


def _walk(folder: str) -> Iterator[str]:
    # scandir reads file types from the directory entries and joins the paths in C: no stat per
    # file (100,000 dumps: 0.1 s instead of 1.3 s with Path.rglob and is_file).
    # Links to folders are not followed (a loop would never end), as os.walk does not.
    try:
        entries = os.scandir(folder)
    except OSError as exc:
        raise CpudbError(f"{folder}: cannot read the folder ({exc.strerror or exc})") from None
    folders = []
    with entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir():
                if not entry.is_symlink():
                    folders.append(entry.path)
            elif not name.lower().endswith(DOC_SUFFIXES):
                yield entry.path
    for sub in folders:
        yield from _walk(sub)


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


def to_row(dump: HostDump) -> Row:
    return (
        dump.host, dump.sha256, dump.source_path, dump.source_format, dump.collected_at, dump.kernel,
        dump.vendor, dump.model_name, dump.family, dump.model, dump.stepping, dump.microcode, dump.sockets,
        dump.cores_per_socket, dump.threads_per_core, dump.hypervisor_vendor, dump.is_guest,
        _flag_text(dump.flags), _flag_text(dump.guest_features) if dump.guest_features is not None else None,
        dump.guest_source, "; ".join(dump.notes) or None,
        tuple((line.kind, line.name, _same(line.value)) for line in dump.extra),
        dump.qemu_version, dump.libvirt_version, dump.nova_version,
    )


# One string object per distinct flag set and per distinct extra line in a process: sorting a set
# happens once, and pickle sends a string it has seen in the same chunk as a reference, so the
# rows of 100,000 hosts cross from the parse workers as a few hundred flag texts and small tuples.
_TEXTS = Memo(4_000_000)  # sorted text per flag set
_VALUES = Memo(8_000_000)  # one object per distinct extra line value


def _flag_text(flags: frozenset[str]) -> str:
    """A flag set as one string, sorted: its own dedup key and compact to pass between processes."""
    text = _TEXTS.get(flags)
    if text is None:
        text = _TEXTS.keep(flags, " ".join(sorted(flags)))
    return text


def _same(value: str) -> str:
    kept = _VALUES.get(value)
    if kept is None:
        kept = _VALUES.keep(value, value)
    return kept


def flagset_digest(flags: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(flags)).encode()).hexdigest()


@contextlib.contextmanager
def parsed_chunks(files: Sequence[str], known: frozenset[str], progress: Progress | None = None
                  ) -> Iterator[Iterator[tuple[list[Row], list[DumpParseError]]]]:
    """Start parsing every file (in worker processes when there are many) and yield an iterator of
    (rows, failures) per chunk, in file order. The workers start at once, so they parse while the
    caller prepares the database; leaving the block early stops them."""
    chunks = [files[i : i + PARSE_CHUNK] for i in range(0, len(files), PARSE_CHUNK)]
    workers = min(os.cpu_count() or 1, 8)
    if len(files) < PARALLEL_THRESHOLD or workers < 2:
        yield _counted(((chunk, parse_chunk(chunk, known)) for chunk in chunks), len(files), progress)
        return
    # spawn, not fork: a forked worker would inherit the writer's lock and keep it after a kill.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(os.getpid(),))
    try:
        results = pool.map(parse_chunk, chunks, repeat(known))  # submitted now, parsed meanwhile
        yield _counted(zip(chunks, results), len(files), progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _counted(results: Iterable[tuple[Sequence[str], tuple[list[Row], list[DumpParseError]]]], total: int,
             progress: Progress | None) -> Iterator[tuple[list[Row], list[DumpParseError]]]:
    done = 0
    for chunk, result in results:
        done += len(chunk)
        if progress:
            progress(done, total)
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


def parse_chunk(files: Sequence[str], known: frozenset[str]) -> tuple[list[Row], list[DumpParseError]]:
    parsed: list[Row] = []
    failed: list[DumpParseError] = []
    for path in files:
        try:
            parsed.append(to_row(parse_file(path, known_flags=known)))
        except DumpParseError as exc:
            failed.append(exc)
    return parsed, failed


