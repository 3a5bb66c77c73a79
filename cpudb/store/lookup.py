"""Questions about the catalog: what a flag is, what a model contains, which models exist."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cpudb.catalog.dictionary import release_number
from cpudb.errors import UnknownFlagError, UnknownModelError
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class FlagInfo:
    """Everything the dictionary knows about one entry matching a name."""

    entry_id: str
    kernel: str
    legacy: tuple[str, ...]
    qemu: str
    qemu_aliases: tuple[str, ...]
    libvirt: str
    location: str
    klass: str
    reason: str
    description: str
    kvm: str
    derivations: tuple[tuple[str, str], ...]  # (vendor group, QEMU feature) for kernel summary flags
    models: tuple[str, ...]  # model versions containing the QEMU feature, oldest first


@dataclass(frozen=True)
class ModelFeature:
    qemu: str
    libvirt: str
    kernel: str
    klass: str
    required_by: str


@dataclass(frozen=True)
class ModelInfo:
    model: str
    family_name: str
    version: int
    vendor: str
    family: int
    model_number: int
    stepping: int
    model_id: str
    qemu_first: str | None
    libvirt_first: str | None
    libvirt_first_range: str
    origin: str
    base: str | None
    note: str
    generic: bool
    aliases: tuple[tuple[str, str], ...]  # (alias, kind)
    features: tuple[ModelFeature, ...]

    @property
    def qemu_features(self) -> tuple[ModelFeature, ...]:
        return tuple(f for f in self.features if f.required_by == "qemu")


@dataclass(frozen=True)
class ModelRow:
    model: str
    vendor: str
    qemu_first: str | None
    libvirt_first: str | None
    aliases: str | None
    n_features: int


def flag_info(conn: duckdb.DuckDBPyConnection, name: str) -> list[FlagInfo]:
    """Every entry that has ``name`` as a kernel, legacy, QEMU or libvirt name."""
    rows = conn.execute(sql("lookup-flag"), {"name": name}).fetchall()
    if not rows:
        raise UnknownFlagError(f"{name!r} is not a kernel, QEMU or libvirt feature name the dictionary knows")
    found = []
    for row in rows:
        entry_id, kernel, legacy, qemu, aliases, libvirt, location, klass, reason, description, kvm = row
        derived = conn.execute(sql("flag-derivations"), {"name": kernel or name}).fetchall() if not qemu else []
        models = [m for (m,) in conn.execute(sql("feature-models"), {"feature": qemu}).fetchall()] if qemu else []
        found.append(
            FlagInfo(
                entry_id, kernel, tuple(legacy), qemu, tuple(aliases), libvirt, location, klass, reason,
                description, kvm, tuple((v, f) for v, f in derived if v != "any" or f != qemu), tuple(models),
            )
        )
    return found


def host_flags_by_class(conn: duckdb.DuckDBPyConnection, host: str) -> dict[str, list[tuple[str, str]]]:
    """A host's flags grouped by class, each with the reason of its class."""
    rows = conn.execute(sql("host-flag-classes"), {"host": host}).fetchall()
    if not rows:
        from cpudb.store.fleet import host_flags

        host_flags(conn, host)  # raises UnknownHostError naming the closest hosts
    grouped: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for flag, klass, reason in rows:
        grouped[klass].append((flag, reason))
    return dict(grouped)


def resolve_model(conn: duckdb.DuckDBPyConnection, name: str) -> str:
    """The versioned model a name stands for (versioned, variant, plain or libvirt 9.0 name)."""
    found = [row[0] for row in conn.execute(sql("resolve-model"), {"name": name}).fetchall()]
    if not found:
        import difflib

        known = [row[0] for row in conn.execute(sql("model-names")).fetchall()]
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise UnknownModelError(f"CPU model {name!r} is not in the catalog{hint}")
    return found[0]


def model_features(conn: duckdb.DuckDBPyConnection, model: str) -> dict[str, str]:
    """A versioned model's QEMU features, each with its class."""
    return dict(conn.execute(sql("model-qemu-features"), {"model": model}).fetchall())


def model_info(conn: duckdb.DuckDBPyConnection, name: str) -> ModelInfo:
    model = resolve_model(conn, name)
    details = conn.execute(sql("model-details"), {"model": model}).fetchone()
    aliases = tuple(conn.execute(sql("model-aliases"), {"model": model}).fetchall())
    features = tuple(ModelFeature(*row) for row in conn.execute(sql("model-feature-names"), {"model": model}).fetchall())
    return ModelInfo(*details, aliases=aliases, features=features)


def list_models(conn: duckdb.DuckDBPyConnection, vendor: str | None = None, qemu: str | None = None) -> list[ModelRow]:
    """Model versions, optionally of one vendor group and offered by a QEMU release."""
    rows = [ModelRow(*row) for row in conn.execute(sql("list-models"), {"vendor": vendor}).fetchall()]
    if qemu:
        limit = release_number(qemu)
        rows = [r for r in rows if r.qemu_first and release_number(r.qemu_first) <= limit]
    return rows
