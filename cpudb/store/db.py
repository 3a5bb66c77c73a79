"""The DuckDB flag database: where it lives, how it is opened, and how it is written safely.

Writers never modify the database file in place. They take an exclusive lock, work on a
copy, checkpoint it and rename it over the original. So a failed or killed write leaves
the previous database byte-for-byte intact, and readers (who open the file read-only)
keep working during a write: they see the old file until the rename, the new one after.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cpudb.catalog import version as catalog_version
from cpudb.errors import DatabaseBusyError, DatabaseError
from cpudb.queries import script, sql

if TYPE_CHECKING:
    import duckdb

DEFAULT_DB = "cpudb.duckdb"
SCHEMA_VERSION = "3"


def resolve_path(option: str | None) -> Path:
    """``--db`` wins, then ``$CPUDB_DB``, then ``cpudb.duckdb`` in the current folder."""
    return Path(option or os.environ.get("CPUDB_DB") or DEFAULT_DB)


def open_read(path: Path) -> duckdb.DuckDBPyConnection:
    """Open an existing database read-only. A read never writes: a database of another schema or
    catalog version is refused in one line that says how to upgrade it."""
    _must_exist(path)
    conn = _connect_read(path)
    stale = staleness(conn)
    if stale:
        conn.close()
        raise DatabaseError(f"{path}: {stale}; run 'cpudb db upgrade --db {path}' (or any ingest) to bring it up to date")
    return conn


def _must_exist(path: Path) -> None:
    if not path.exists():
        raise DatabaseError(f"{path}: no database here (run 'cpudb ingest DUMPS...' first, or pass --db)")


def staleness(conn: duckdb.DuckDBPyConnection) -> str | None:
    """Why this cpudb cannot read the database as it is, or None when it can."""
    version = _schema_version(conn)
    if version != SCHEMA_VERSION:
        return f"the database has schema {version or 'unknown'}, this cpudb reads schema {SCHEMA_VERSION}"
    if catalog_version.loaded_digest(conn) != catalog_version.current_digest():
        return "the database holds another version of the CPU catalog than this cpudb ships"
    return None


def upgrade(path: Path) -> str | None:
    """Bring the database at ``path`` to this cpudb's schema and catalog (a write, like an ingest);
    return what was out of date, or None when nothing was."""
    _must_exist(path)
    conn = _connect_read(path)
    try:
        stale = staleness(conn)
    finally:
        conn.close()
    if stale:
        with write(path):
            pass  # write() prepares the private copy: schema, host pointers, catalog
    return stale


def _schema_version(conn: duckdb.DuckDBPyConnection) -> str | None:
    row = conn.execute(sql("get-meta"), {"key": "schema_version"}).fetchone()
    return row[0] if row else None


def _connect_read(path: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    try:
        # Analyses run many small queries on profiles: one thread avoids scheduling overhead.
        conn = duckdb.connect(str(path), read_only=True, config={"threads": 1})
    except duckdb.Error as exc:
        raise DatabaseError(f"{path}: cannot open the database ({_first_line(exc)})") from None
    if catalog_version.loaded_digest(conn) is None:  # no meta table, or no catalog in it
        _check_cpudb(conn, path)
    return conn


def open_memory() -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database with the schema and the catalog, for --dumps runs."""
    import duckdb

    conn = duckdb.connect(":memory:")
    prepare(conn)
    return conn


def prepare(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the schema and load the current catalog where it is missing or outdated."""
    conn.execute(script("schema"))
    if _schema_version(conn) != SCHEMA_VERSION:
        # Older schemas lack the hosts' guest view: point every host again.
        hosts = [row[0] for row in conn.execute(sql("all-host-names")).fetchall()]
        if hosts:
            conn.execute(sql("refresh-hosts"), {"hosts": hosts})
        conn.execute(sql("set-meta"), {"key": "schema_version", "value": SCHEMA_VERSION})
    from cpudb.store import catalog_tables  # only writers load the catalog; reads compare its digest

    catalog_tables.ensure_loaded(conn)


@contextlib.contextmanager
def write(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a connection to a private copy of the database; commit by renaming it into place.

    If the body raises, or the process dies, the original file is untouched.
    """
    path = path.resolve() if path.exists() else path.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(path):
        temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        _remove(temp)
        conn = None
        import duckdb

        try:
            if path.exists():
                try:
                    import shutil

                    shutil.copyfile(path, temp)
                except OSError as exc:
                    if _out_of_space(exc):
                        raise DatabaseError(f"{path}: no room for the private copy a write works on ({exc.strerror}); "
                                            "the database was not changed") from None
                    raise
            try:
                conn = duckdb.connect(str(temp))
            except duckdb.Error as exc:
                raise DatabaseError(f"{path}: not a DuckDB database ({_first_line(exc)})") from None
            if path.exists():
                _check_cpudb(conn, path)
            prepare(conn)
            yield conn
            conn.execute("CHECKPOINT")
            conn.close()
            conn = None
            _fsync(temp)
            os.replace(temp, path)
            _fsync(path.parent)
        except (duckdb.Error, OSError) as exc:
            if _out_of_space(exc):
                raise DatabaseError(f"{path}: no room to write the database (No space left on device); "
                                    "the database was not changed") from None
            raise
        finally:
            if conn is not None:
                conn.close()
            _remove(temp)
            _remove(temp.with_name(temp.name + ".wal"))


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(f".{path.name}.lock")
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise DatabaseBusyError(
                f"{path}: database is in use: {holder} is writing to it; try again when it finishes"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"cpudb pid {os.getpid()}")
        lock.flush()
        _remove_stale_copies(path)
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_stale_copies(path: Path) -> None:
    """Copies left by writers that were killed: safe to delete while we hold the lock."""
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        _remove(stale)


def _check_cpudb(conn: duckdb.DuckDBPyConnection, path: Path) -> None:
    tables = {row[0] for row in conn.execute(sql("table-names")).fetchall()}
    if tables and not {"meta", "dumps"} <= tables:
        conn.close()
        raise DatabaseError(f"{path}: a DuckDB database, but not one cpudb wrote")


def _out_of_space(exc: BaseException) -> bool:
    """A full disk or quota: an OSError says so by its errno, DuckDB by the message of its own I/O
    error (which names the private copy's WAL)."""
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(exc)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
