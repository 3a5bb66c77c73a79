"""Which catalog a database holds, and which one cpudb ships: cheap enough for every command, so
a read command knows whether the database is current without loading the catalog itself."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import TYPE_CHECKING

from cpudb.queries import sql
from cpudb.resources import data_path

if TYPE_CHECKING:
    import duckdb

CATALOG_FILES = ("flags.json", "models.json", "reference_cpus/references.json", "kvm_given.yaml")
# Bumped whenever load() writes the catalog tables differently, so databases loaded by older code
# are reloaded even when the data files are the same.
LOADER_VERSION = "3"


@cache
def current_digest() -> str:
    """The digest of the shipped catalog and reference CPUs, without parsing them (cheap enough for
    every command): a database holding another digest is reloaded."""
    digest = hashlib.sha256(f"loader {LOADER_VERSION}\n".encode())
    for name in CATALOG_FILES:
        digest.update(data_path(name).read_bytes())
    return digest.hexdigest()


def loaded_digest(conn: duckdb.DuckDBPyConnection) -> str | None:
    import duckdb

    try:
        row = conn.execute(sql("catalog-version")).fetchone()
    except duckdb.CatalogException:  # an empty database: no meta table yet
        return None
    return row[0] if row else None
