"""Rows into the database in bulk: new snapshots only, each distinct flag set and host profile
once, then every touched host pointed at its latest snapshot."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from cpudb.inputs.parse import HostDump
from cpudb.inputs.rows import _FLAGS, _GUEST_FLAGS, _ROW_FIELDS, Row, flagset_digest, to_row
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb

STORE_BATCH = 10_000  # dumps inserted per statement: bounded memory, few round trips


def store(conn: duckdb.DuckDBPyConnection, dumps: Sequence[HostDump], kind: str = "host") -> tuple[int, int, int]:
    """Insert snapshots in bulk; return (added, already known, hosts touched)."""
    writer = Writer(conn, kind)
    writer.add([to_row(dump) for dump in dumps])
    return writer.finish()


class Writer:
    """Stores rows in batches: new snapshots only, each distinct flag set once, then re-points hosts."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, kind: str = "host"):
        self.conn, self.kind = conn, kind
        self.seen = {(host, sha) for host, sha in conn.execute(sql("known-snapshots")).fetchall()}
        self.next_dump, self.next_flagset = conn.execute(sql("next-ids")).fetchone()
        self.flagset_ids: dict[str, int] = dict(conn.execute(sql("known-flagsets")).fetchall())
        self.pending: list[Row] = []
        self.touched: set[str] = set()
        self.added = self.unchanged = 0
        self.ingested_at = datetime.now(timezone.utc)

    def add(self, rows: Iterable[Row]) -> None:
        for row in rows:
            key = (row[0], row[1])
            if key in self.seen:
                self.unchanged += 1
                continue
            self.seen.add(key)
            self.pending.append(row)
            if len(self.pending) >= STORE_BATCH:
                self._flush()

    def finish(self) -> tuple[int, int, int]:
        self._flush()
        if self.touched:
            self.conn.execute(sql("refresh-hosts"), {"hosts": sorted(self.touched)})
        return self.added, self.unchanged, len(self.touched)

    def _flagset(self, text: str, new_sets: dict[str, tuple[int, list[str]]]) -> int:
        flags = text.split(" ") if text else []
        digest = flagset_digest(flags)
        if digest not in self.flagset_ids:
            self.flagset_ids[digest] = self.next_flagset
            new_sets[digest] = (self.next_flagset, flags)
            self.next_flagset += 1
        return self.flagset_ids[digest]

    def _flush(self) -> None:
        rows, self.pending = self.pending, []
        if not rows:
            return
        new_sets: dict[str, tuple[int, list[str]]] = {}
        by_text: dict[str, int] = {}
        # In the order the rows name them, so flag set ids do not depend on hashing.
        for text in dict.fromkeys(text for row in rows for text in (row[_FLAGS], row[_GUEST_FLAGS])):
            if text is not None:
                by_text[text] = self._flagset(text, new_sets)
        # Hosts of one CPU model share every column but their name, file and time: each distinct
        # profile is sent once (a tenth of the values to convert for a large fleet).
        profile_of: dict[tuple, int] = {}
        profiles = [profile_of.setdefault(_profile(row), len(profile_of)) for row in rows]
        distinct = dict(zip(_PROFILE_FIELDS, zip(*profile_of))) if profile_of else {}
        own = dict(zip(_ROW_FIELDS, zip(*rows)))
        dump_ids = list(range(self.next_dump, self.next_dump + len(rows)))
        params = {name: list(distinct[name]) for name in _PROFILE_COLUMNS}
        params["flagset_id"] = [by_text[text] for text in distinct["flags"]]
        params["guest_flagset_id"] = [None if text is None else by_text[text] for text in distinct["guest_flags"]]
        params.update({name: list(own[name]) for name in ("host", "sha256", "source_path", "collected_at")},
                      dump_id=dump_ids, profile=profiles, kind=self.kind, ingested_at=self.ingested_at)
        lines: dict[str, list] = {"line_profile": [], "kind": [], "name": [], "value": []}
        for number, extra in enumerate(distinct["extra"]):
            for kind, name, value in extra:
                lines["line_profile"].append(number)
                lines["kind"].append(kind)
                lines["name"].append(name)
                lines["value"].append(value)
        self.touched.update(own["host"])
        self.next_dump += len(rows)
        self.added += len(rows)
        if new_sets:
            self.conn.execute(
                sql("insert-flagsets"),
                {"ids": [i for i, _ in new_sets.values()], "digests": list(new_sets),
                 "sizes": [len(flags) for _, flags in new_sets.values()]},
            )
            self.conn.execute(
                sql("insert-flagset-flags"),
                {"ids": [i for i, flags in new_sets.values() for _ in flags],
                 "flags": [flag for _, flags in new_sets.values() for flag in flags]},
            )
        self.conn.execute(sql("insert-dumps"), params)
        if lines["kind"]:
            self.conn.execute(sql("insert-dump-lines"), {**lines, "dump_id": dump_ids, "profile": profiles})


# Every row field but those of one snapshot alone; the columns of dumps among them.
_PROFILE_FIELDS = tuple(name for name in _ROW_FIELDS if name not in ("host", "sha256", "source_path", "collected_at"))
_profile = operator.itemgetter(*(_ROW_FIELDS.index(name) for name in _PROFILE_FIELDS))
_PROFILE_COLUMNS = tuple(name for name in _PROFILE_FIELDS if name not in ("flags", "guest_flags", "extra"))
