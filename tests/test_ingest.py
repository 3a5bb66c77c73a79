"""Ingest: idempotent, snapshots and history, all-or-nothing, database untouched on failure."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from conftest import DATA, FIXTURES, fixture
from cpudb.errors import DatabaseError, IngestError
from cpudb.store import db
from cpudb.store.ingest import ingest_paths


def _count(path, query):
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def test_ingest_every_fixture(tmp_path):
    path = tmp_path / "c.duckdb"
    result = ingest_paths(path, [FIXTURES])
    assert (result.files, result.added, result.unchanged, result.hosts) == (23, 23, 0, 23)
    assert _count(path, "SELECT count(*) FROM hosts WHERE kind = 'host'") == [(23,)]
    assert _count(path, "SELECT count(*) FROM host_flags WHERE host = 'intel-gold6230-1'") == [(136,)]


def test_ingesting_the_same_files_twice_changes_nothing(tmp_path):
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [FIXTURES])
    before = _count(path, "SELECT * FROM dumps WHERE kind = 'host' ORDER BY dump_id")
    again = ingest_paths(path, [FIXTURES])
    assert (again.added, again.unchanged) == (0, 23)
    assert _count(path, "SELECT * FROM dumps WHERE kind = 'host' ORDER BY dump_id") == before


def test_a_newer_dump_of_a_host_becomes_its_latest_snapshot(dumps_dir, tmp_path):
    path = tmp_path / "c.duckdb"
    dumps_dir.copy("intel-gold6230-1.txt", "cmp-clx-07.cpuinfo")
    ingest_paths(path, [dumps_dir])
    (dumps_dir / "cmp-clx-07.cpuinfo").unlink()
    dumps_dir.copy("intel-gold6230-2.txt", "cmp-clx-07.cpuinfo")
    result = ingest_paths(path, [dumps_dir])
    assert (result.added, result.hosts) == (1, 1)
    assert _count(path, "SELECT count(*) FROM dumps WHERE host = 'cmp-clx-07'") == [(2,)]
    assert _count(path, "SELECT microcode FROM hosts JOIN dumps USING (dump_id) WHERE hosts.kind = 'host'") == [("0x5002f01",)]
    assert _count(path, "SELECT count(*) FROM host_flags WHERE flag IN ('hle', 'rtm') AND host NOT LIKE 'ref:%'") == [(0,)]


def test_collection_time_decides_the_latest_snapshot_not_ingest_order(tmp_path):
    older = tmp_path / "in" / "old.lscpu"
    newer = tmp_path / "in2" / "new.lscpu"
    older.parent.mkdir()
    newer.parent.mkdir()
    body = fixture("amd-epyc7742-1.txt").read_text()
    newer.write_text("hostname: h1\ncollected: 2026-05-01T00:00:00Z\n" + body)
    older.write_text("hostname: h1\ncollected: 2025-05-01T00:00:00Z\n" + body.replace(" avx2", ""))
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [newer.parent])
    ingest_paths(path, [older.parent])
    assert _count(path, "SELECT count(*) FROM dumps WHERE kind = 'host'") == [(2,)]
    assert _count(path, "SELECT count(*) FROM host_flags WHERE flag = 'avx2' AND host NOT LIKE 'ref:%'") == [(1,)]


def test_identical_flag_sets_are_stored_once(tmp_path, dumps_dir):
    for n in range(5):
        dumps_dir.copy("amd-epyc7742-1.txt", f"cmp-rome-{n:02}.lscpu")
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [dumps_dir])
    assert _count(path, "SELECT count(*) FROM hosts WHERE kind = 'host'") == [(5,)]
    assert _count(path, "SELECT count(DISTINCT flagset_id) FROM dumps WHERE kind = 'host'") == [(1,)]


def test_a_failed_ingest_reports_every_bad_file_and_leaves_the_database_byte_for_byte(tmp_path, dumps_dir):
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [FIXTURES])
    before = path.read_bytes()
    dumps_dir.copy("amd-epyc7742-1.txt", "good.lscpu")
    shutil.copyfile(DATA / "bad" / "empty.lscpu", dumps_dir / "empty.lscpu")
    shutil.copyfile(DATA / "bad" / "aarch64.lscpu", dumps_dir / "arm.lscpu")
    with pytest.raises(IngestError) as caught:
        ingest_paths(path, [dumps_dir])
    lines = str(caught.value).splitlines()
    assert lines[0].endswith("arm.lscpu: aarch64 dump: cpudb analyses x86-64 hosts only")
    assert lines[1].endswith("empty.lscpu: empty file")
    assert lines[2].startswith("2 dump(s) failed to parse, nothing was ingested")
    assert path.read_bytes() == before


def test_a_failed_first_ingest_creates_no_database(tmp_path):
    path = tmp_path / "c.duckdb"
    with pytest.raises(IngestError):
        ingest_paths(path, [DATA / "bad" / "empty.lscpu"])
    assert not path.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_skip_bad_stores_the_good_files_and_lists_the_bad(tmp_path, dumps_dir):
    dumps_dir.copy("amd-epyc7742-1.txt", "good.lscpu")
    shutil.copyfile(DATA / "bad" / "binary.lscpu", dumps_dir / "junk.lscpu")
    path = tmp_path / "c.duckdb"
    result = ingest_paths(path, [dumps_dir], skip_bad=True)
    assert result.added == 1
    assert [f.source.rsplit("/", 1)[1] for f in result.failures] == ["junk.lscpu"]
    assert _count(path, "SELECT host FROM hosts WHERE kind = 'host'") == [("good",)]


def test_a_file_that_is_not_a_cpudb_database_is_refused(tmp_path):
    path = tmp_path / "other.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE something (x INTEGER)")
    conn.close()
    with pytest.raises(DatabaseError, match="not one cpudb wrote"):
        ingest_paths(path, [fixture("amd-epyc7742-1.txt")])
    with pytest.raises(DatabaseError, match="not one cpudb wrote"):
        db.open_read(path)


def test_reading_a_missing_database_says_what_to_do(tmp_path):
    with pytest.raises(DatabaseError, match=r"no database here \(run 'cpudb ingest DUMPS\.\.\.' first"):
        db.open_read(tmp_path / "absent.duckdb")


def test_readers_keep_working_while_a_write_is_open(tmp_path):
    path = tmp_path / "c.duckdb"
    ingest_paths(path, [fixture("amd-epyc7742-1.txt")])
    with db.write(path) as writer:
        writer.execute("DELETE FROM hosts")
        reader = db.open_read(path)
        assert reader.execute("SELECT count(*) FROM hosts WHERE kind = 'host'").fetchone() == (1,)
        reader.close()
    reader = db.open_read(path)
    assert reader.execute("SELECT count(*) FROM hosts").fetchone() == (0,)
    reader.close()


def test_a_schema_1_database_is_refused_by_reads_and_upgraded_by_db_upgrade(tmp_path):
    # Reads never write (issue 15): a read of an old database says so in one line and leaves it
    # as it is; `cpudb db upgrade` (or any ingest) brings it up to date.
    import subprocess
    import sys

    import duckdb

    from conftest import ROOT

    path = tmp_path / "c.duckdb"
    ingest_paths(path, [fixture("amd-epyc7742-1.txt")])
    old = duckdb.connect(str(path))  # as cpudb 0.1 with schema 1 left it
    old.execute("ALTER TABLE hosts DROP COLUMN guest_dump_id")
    old.execute("ALTER TABLE dumps DROP COLUMN guest_source")
    old.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    old.close()
    before = path.read_bytes()
    read = subprocess.run([sys.executable, "-m", "cpudb", "hosts", "--db", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert read.returncode == 2
    assert read.stderr.splitlines() == [
        f"cpudb: error: {path}: the database has schema 1, this cpudb reads schema {db.SCHEMA_VERSION}; "
        f"run 'cpudb db upgrade --db {path}' (or any ingest) to bring it up to date"]
    assert path.read_bytes() == before
    up = subprocess.run([sys.executable, "-m", "cpudb", "db", "upgrade", "--db", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert up.returncode == 0 and up.stdout.startswith(f"{path}: upgraded (the database has schema 1"), up.stderr
    conn = db.open_read(path)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (db.SCHEMA_VERSION,)
    assert conn.execute("SELECT host, guest_dump_id FROM hosts WHERE kind = 'host'").fetchall() == [("amd-epyc7742-1", None)]
    conn.close()
    again = subprocess.run([sys.executable, "-m", "cpudb", "db", "upgrade", "--db", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert again.stdout == f"{path}: already current\n"
