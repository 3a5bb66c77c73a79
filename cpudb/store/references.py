"""Reference CPUs (data/reference_cpus/) in the database, as hosts of kind 'reference' named ref:<id>."""

from __future__ import annotations

import hashlib
import json

import duckdb

from cpudb.catalog.dictionary import Catalog
from cpudb.catalog.references import read_references
from cpudb.inputs.parse import HostDump
from cpudb.queries import sql
from cpudb.resources import data_path


def dumps() -> list[HostDump]:
    """Each reference CPU with evidence, as a dump: its flags, its generation's name as CPU name."""
    path = data_path("reference_cpus", "references.json")
    found = []
    for item in read_references(path):
        if item["missing"]:
            continue
        found.append(
            HostDump(
                host=f"ref:{item['id']}",
                source_path=f"reference CPU built from {', '.join(item['evidence'])}",
                source_format="reference",
                sha256=hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest(),
                flags=frozenset(item["flags"]),
                vendor=item["vendor"],
                model_name=item["name"],
                family=item["family"],
                model=item["model"],
                stepping=item["stepping"],
            )
        )
    return found


def load(conn: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Replace the reference CPUs stored in the database by the shipped ones."""
    from cpudb.store.writer import store

    conn.execute(sql("delete-references"))
    store(conn, dumps(), kind="reference")
