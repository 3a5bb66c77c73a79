"""The catalog in the database: its tables and the reference CPUs, loaded by writers when the
database holds another version of them (reads only compare the digest, catalog.version)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cpudb.catalog.dictionary import (
    VENDOR_GROUPS, Catalog, _range_end, _release_order, current, kvm_given, release_number,
)
from cpudb.catalog.version import current_digest, loaded_digest
from cpudb.queries import script, sql

if TYPE_CHECKING:
    import duckdb


def ensure_loaded(conn: duckdb.DuckDBPyConnection) -> None:
    """Load the catalog tables and reference CPUs when the database holds another version of them."""
    if loaded_digest(conn) == current_digest():
        return
    from cpudb.store import references

    load(conn, current())
    references.load(conn, current())
    conn.execute(sql("set-meta"), {"key": "catalog_digest", "value": current_digest()})


def load(conn: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    conn.execute(script("catalog_schema"))
    entries = catalog.entries
    conn.execute(
        sql("insert-flags"),
        {
            "entry_id": [e.id for e in entries],
            "kernel": [e.kernel for e in entries],
            "legacy": [list(e.legacy) for e in entries],
            "qemu": [e.qemu for e in entries],
            "qemu_aliases": [list(e.qemu_aliases) for e in entries],
            "libvirt": [e.libvirt for e in entries],
            "location": [e.location for e in entries],
            "class": [e.klass for e in entries],
            "reason": [e.reason for e in entries],
            "description": [e.description for e in entries],
            "kvm": [e.kvm for e in entries],
        },
    )
    _insert_columns(conn, "insert-flag-features", ("flag", "vendor", "feature", "current"), catalog.flag_features())
    _insert_columns(conn, "insert-flag-sources", ("flag", "feature"), catalog.flag_sources())
    _insert_columns(conn, "insert-flag-classes", ("flag", "class", "reason"), catalog.flag_classes())
    _insert_columns(
        conn,
        "insert-features",
        (
            "feature", "class", "reason", "libvirt", "kernel", "kvm", "native_vendor", "visible_intel",
            "visible_amd", "always", "in_qemu_7_2", "libvirt_since",
        ),
        catalog.feature_rows(),
    )
    _insert_columns(conn, "insert-vendors", ("vendor", "vendor_group"), sorted(VENDOR_GROUPS.items()))
    _insert_columns(conn, "insert-kvm-given", ("rule", "vendor", "flag", "feature", "kind"), kvm_given(catalog))
    models = catalog.models
    order = {m.name: i for i, m in enumerate(_release_order(models))}
    _insert_columns(
        conn,
        "insert-models",
        (
            "model", "family_name", "version", "vendor", "family", "model_number", "stepping", "model_id",
            "qemu_first", "libvirt_first", "libvirt_first_range", "qemu_first_num", "libvirt_first_num",
            "origin", "base", "note", "generic", "age", "has_lm",
        ),
        [
            (
                m.name, m.family_name, m.version, m.vendor, m.family, m.model, m.stepping, m.model_id,
                m.qemu_first, m.libvirt_first, m.libvirt_first_range, release_number(m.qemu_first),
                release_number(m.libvirt_first or _range_end(m.libvirt_first_range)), m.origin, m.base, m.note,
                m.generic, order[m.name], "lm" in m.features,
            )
            for m in models
        ],
    )
    aliases = []
    for m in models:
        aliases += [(alias, m.name, "qemu") for alias in m.aliases]
        if m.plain_alias:
            aliases.append((m.family_name, m.name, "plain"))
        aliases += [(alias, m.name, "libvirt-9.0") for alias in m.libvirt_9_0_names]
    _insert_columns(conn, "insert-model-aliases", ("alias", "model", "kind"), aliases)
    model_features = []
    for m in models:
        model_features += [(m.name, f, "qemu") for f in m.features]
        model_features += [(m.name, f, "libvirt") for f in m.libvirt_extra or ()]
        model_features += [(m.name, f, "libvirt-9.0") for f in m.libvirt_9_0_extra or ()]
    _insert_columns(conn, "insert-model-features", ("model", "feature", "required_by"), model_features)


def _insert_columns(conn: duckdb.DuckDBPyConnection, query: str, names: tuple[str, ...], rows: list[tuple]) -> None:
    columns = list(zip(*rows)) if rows else [() for _ in names]
    conn.execute(sql(query), {name: list(column) for name, column in zip(names, columns)})
