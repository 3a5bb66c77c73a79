"""The hosts in the database: selecting them, listing them, their common and differing flags."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cpudb.errors import UnknownHostError
from cpudb.queries import sql
from cpudb.resources import data_path
from cpudb.store import selection as selection_mod
from cpudb.store.selection import Selection

if TYPE_CHECKING:
    import duckdb


class HostRow(NamedTuple):
    """One selected host and its latest snapshot."""

    host: str
    weight: int
    kind: str
    vendor: str | None
    model_name: str | None
    family: int | None
    model: int | None
    stepping: int | None
    microcode: str | None
    n_flags: int
    snapshot_at: datetime
    is_guest: bool
    hypervisor_vendor: str | None
    source_format: str
    kernel: str | None
    sha256: str
    source_path: str
    flagset_id: int
    notes: str | None
    snapshots: int
    guest_source: str | None  # where the baseline's guest view of this host came from, if any
    guest_path: str | None
    collected_at: datetime | None  # when the dump says it was taken (cpudb collect's header)

    @property
    def guest_view(self) -> str:
        """Where this host's guest-settable features are read from, for people."""
        return self.guest_source or "kernel flags"


class FlagCount(NamedTuple):
    flag: str
    hosts: int


class CommonFlags(NamedTuple):
    """The flags every selected host has, and those only some have."""

    total_hosts: int
    common: tuple[str, ...]
    partial: tuple[FlagCount, ...]


class HostDiff(NamedTuple):
    host_a: str
    host_b: str
    only_a: tuple[str, ...]
    only_b: tuple[str, ...]
    common: int


def inventory_path(option: str | None = None) -> Path:
    """``--inventory`` wins, then ``$CPUDB_INVENTORY``, then the shipped ``data/inventory.yaml``."""
    return Path(option or os.environ.get("CPUDB_INVENTORY") or data_path("inventory.yaml"))


def select(conn: duckdb.DuckDBPyConnection, text: str = "", inventory: Path | None = None) -> Selection:
    """Resolve a selection and make it the temp table ``selected`` that analysis queries read."""
    known = [row[0] for row in conn.execute(sql("host-names")).fetchall()]
    references = [row[0] for row in conn.execute(sql("reference-names")).fetchall()]
    groups = selection_mod.load_inventory(inventory or inventory_path()) if "@" in text else {}
    chosen = selection_mod.resolve(text, known, groups, references)
    if not selection_mod.split_items(text):
        conn.execute(sql("select-all-hosts"))
    else:
        conn.execute(sql("select-hosts"), {"hosts": list(chosen.hosts)})
    if chosen.references:
        conn.execute(
            sql("select-references"),
            {"refs": [name for name, _ in chosen.references], "weights": [n for _, n in chosen.references]},
        )
    return chosen


def selected_hosts(conn: duckdb.DuckDBPyConnection) -> list[HostRow]:
    cursor = conn.execute(sql("selected-hosts"))
    return [HostRow(*row) for row in cursor.fetchall()]


def common_flags(conn: duckdb.DuckDBPyConnection) -> CommonFlags:
    rows = conn.execute(sql("selection-flag-counts")).fetchall()
    if not rows:
        return CommonFlags(0, (), ())
    total = rows[0][2]
    common = tuple(flag for flag, hosts, _ in rows if hosts == total)
    partial = tuple(FlagCount(flag, hosts) for flag, hosts, _ in rows if hosts < total)
    return CommonFlags(total, common, tuple(sorted(partial, key=lambda f: (-f.hosts, f.flag))))


def host_flags(conn: duckdb.DuckDBPyConnection, host: str) -> frozenset[str]:
    flags = frozenset(row[0] for row in conn.execute(sql("host-flags"), {"host": host}).fetchall())
    if not flags:
        known = [row[0] for row in conn.execute(sql("host-names")).fetchall()]
        raise UnknownHostError(selection_mod.unknown_message("host", host, known))
    return flags


def diff(conn: duckdb.DuckDBPyConnection, host_a: str, host_b: str) -> HostDiff:
    flags_a, flags_b = host_flags(conn, host_a), host_flags(conn, host_b)
    return HostDiff(host_a, host_b, tuple(sorted(flags_a - flags_b)), tuple(sorted(flags_b - flags_a)), len(flags_a & flags_b))
