"""Named SQL queries, kept in ``queries/*.sql``; ``*schema.sql`` files are whole scripts.

A file holds blocks that start with ``-- name: some-query`` followed by a one-line
``--`` comment saying what the query returns. Parameters are DuckDB named
parameters (``$hosts``); values are never formatted into SQL text.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from functools import cache

from cpudb.resources import resource_dir

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z0-9][a-z0-9-]*)\s*$")


class NamedQuery(NamedTuple):
    name: str
    doc: str
    sql: str
    source: str


def parse_queries(text: str, source: str) -> dict[str, NamedQuery]:
    """Split one .sql file into its named blocks."""
    queries: dict[str, NamedQuery] = {}
    name: str | None = None
    doc = ""
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        sql = "\n".join(body).strip()
        if not sql:
            raise ValueError(f"{source}: query {name!r} has no SQL")
        if not doc:
            raise ValueError(f"{source}: query {name!r} has no one-line comment under its name")
        queries[name] = NamedQuery(name, doc, sql, source)

    for line in text.splitlines():
        match = _NAME_LINE.match(line)
        if match:
            close()
            name, doc, body = match.group(1), "", []
            if name in queries:
                raise ValueError(f"{source}: query {name!r} defined twice")
        elif name is not None and not doc and not body and line.startswith("--"):
            doc = line.lstrip("-").strip()
        elif name is not None:
            body.append(line)
    close()
    return queries


@cache
def all_queries() -> dict[str, NamedQuery]:
    """Every named query of every ``queries/*.sql`` file except the schema script."""
    found: dict[str, NamedQuery] = {}
    for path in sorted(resource_dir("queries").glob("*.sql")):
        if path.name.endswith("schema.sql"):
            continue
        for name, query in parse_queries(path.read_text(encoding="utf-8"), path.name).items():
            if name in found:
                raise ValueError(f"{path.name}: query {name!r} also defined in {found[name].source}")
            found[name] = query
    return found


def sql(name: str) -> str:
    """The SQL text of the named query."""
    return all_queries()[name].sql


def script(name: str) -> str:
    """A whole SQL script (``schema`` or ``catalog_schema``), run as one."""
    return (resource_dir("queries") / f"{name}.sql").read_text(encoding="utf-8")
