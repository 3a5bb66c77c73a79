"""Drift: hosts whose flags changed between snapshots (a microcode update that removed TSX, a BIOS
setting that hid AVX-512, a kernel that renamed flags). Changes break live migration when a guest
started with a feature lands on a host that lost it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from cpudb.queries import sql


@dataclass(frozen=True)
class Change:
    """One host between two consecutive snapshots."""

    host: str
    before: datetime
    after: datetime
    microcode: tuple[str | None, str | None] | None  # (before, after) when it changed
    kernel: tuple[str | None, str | None] | None
    added: tuple[str, ...]
    removed: tuple[str, ...]
    lost: tuple[str, ...]  # removed guest-settable flags no added flag renames: guests can lose them
    renamed: tuple[tuple[str, str], ...]  # (old, new) spellings of one feature
    before_path: str
    after_path: str

    @property
    def alarming(self) -> bool:
        return bool(self.lost)


def changes(conn: duckdb.DuckDBPyConnection, since: datetime | None = None) -> list[Change]:
    """Every change between consecutive snapshots of the hosts in ``selected``."""
    rows = conn.execute(sql("drift"), {"since": since}).fetchall()
    involved = sorted({flag for row in rows for flag in (*row[7], *row[8])})
    features: dict[str, set[str]] = {}
    for flag, feature in conn.execute(sql("features-of-flags"), {"flags": involved}).fetchall():
        features.setdefault(flag, set()).add(feature)
    found = []
    for (host, before, after, old_mc, new_mc, old_kernel, new_kernel, added, removed, removed_guest,
         before_path, after_path) in rows:
        renamed = tuple(
            (old, new) for old in removed for new in added if features.get(old, set()) & features.get(new, set())
        )
        renamed_old = {old for old, _ in renamed}
        found.append(
            Change(
                host=host,
                before=before,
                after=after,
                microcode=(old_mc, new_mc) if old_mc != new_mc else None,
                kernel=(old_kernel, new_kernel) if old_kernel != new_kernel else None,
                added=tuple(added),
                removed=tuple(removed),
                lost=tuple(f for f in removed_guest if f not in renamed_old),
                renamed=renamed,
                before_path=before_path,
                after_path=after_path,
            )
        )
    return found


def hosts_with_history(conn: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(selected hosts with more than one snapshot, selected hosts)."""
    return conn.execute(sql("snapshot-counts")).fetchone()


# --- the report's "drift and outliers" section --------------------------------------------------

REPORT_CHANGES = 30  # the newest changes shown; `cpudb drift` lists them all


@dataclass(frozen=True)
class DriftView:
    changes: tuple[Change, ...]  # newest first, at most REPORT_CHANGES
    total_changes: int
    alarming: int
    hosts_with_history: int
    hosts: int
    outliers: tuple  # risks.Outliers


def report_view(conn: duckdb.DuckDBPyConnection) -> DriftView:
    """Drift and outliers of the hosts in ``selected``, bounded for a report of any fleet size."""
    from cpudb.analysis.risks import outliers

    found = changes(conn)
    with_history, hosts = hosts_with_history(conn)
    return DriftView(
        changes=tuple(sorted(found, key=lambda c: c.after, reverse=True)[:REPORT_CHANGES]),
        total_changes=len(found),
        alarming=sum(1 for c in found if c.alarming),
        hosts_with_history=with_history,
        hosts=hosts,
        outliers=tuple(outliers(conn)),
    )
