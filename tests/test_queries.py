"""Meta-tests: every named query is documented, parses, and runs against a real database."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from conftest import SAMPLE_FLEET
from cpudb.analysis.baseline import compute
from cpudb.queries import all_queries, parse_queries
from cpudb.store import db, fleet
from cpudb.store.ingest import ingest_into

QUERIES = all_queries()
# A value for each named parameter a query may take; bulk inserts get empty columns.
SCALARS = {
    "host": "cmp-rome-01",
    "hosts": ["cmp-rome-01"],
    "ingested_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
    "name": "avx2",
    "feature": "avx2",
    "model": "EPYC-Rome-v1",
    "vendor": "amd",
    "allow_unmigratable": False,
    "flags": ["avx2"],
    "features": ["avx2"],
    "key": "test_key",
    "qemu_7_2_only": True,
    "libvirt_names": None,
    "hypervisor": True,
    "qemu": 70200,
    "libvirt": 90000,
    "pmu": False,
    "pmu_features": ["pdcm"],
    "disable_missing": True,
    "value": "x",
}


def test_there_are_named_queries_and_each_has_a_comment():
    assert len(QUERIES) >= 10
    for query in QUERIES.values():
        assert query.doc and not query.doc.startswith("name:"), query.name


def test_query_files_reject_undocumented_blocks():
    with pytest.raises(ValueError, match="has no one-line comment"):
        parse_queries("-- name: x\nSELECT 1;\n", "x.sql")


@pytest.fixture(scope="module")
def scratch():
    conn = db.open_memory()
    ingest_into(conn, [SAMPLE_FLEET])
    yield conn
    conn.close()


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_every_query_runs(scratch, name):
    sql = QUERIES[name].sql
    bulk = name.startswith("insert-")  # bulk inserts take one list per column
    params = {
        p: (SCALARS[p] if p in SCALARS and not (bulk and p != "ingested_at") else [])
        for p in set(re.findall(r"\$([a-z0-9_]+)", sql))
    }
    fleet.select(scratch, "")
    compute(scratch, "")  # creates the bl_ temp tables the baseline queries read
    scratch.execute(sql, params).fetchall()
