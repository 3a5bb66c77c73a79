"""The flag dictionary and the QEMU CPU model catalog (data/), and their tables in the database."""

from __future__ import annotations

import duckdb


def ensure_loaded(conn: duckdb.DuckDBPyConnection) -> None:
    """Load the catalog tables when the database lacks them or holds an older catalog."""


def known_kernel_flags() -> frozenset[str]:
    """Every kernel flag name the dictionary knows (current and legacy spellings)."""
    return frozenset()
