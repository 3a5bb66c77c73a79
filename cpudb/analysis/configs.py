"""What every configuration emitter needs about the recommendation, in both spellings (QEMU's
and libvirt's), worked out from the database once: the plain data an output turns into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cpudb.analysis.baseline import Baseline, Recommendation
from cpudb.catalog.targets import Target
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class ConfigInput:
    """What every emitter needs, in both spellings."""

    model: str  # versioned QEMU name
    model_alias: str  # the name libvirt, Nova and KubeVirt get
    qemu_model: str  # the name QEMU's -cpu gets
    proxmox_model: str | None  # the reported-model Proxmox gets (None: Proxmox cannot name it)
    add: tuple[tuple[str, str], ...]  # (QEMU name, libvirt name) to turn on
    remove: tuple[tuple[str, str], ...]  # to turn off: missing on some host, or nested not everywhere
    kvm_dropped: tuple[tuple[str, str], ...]  # in the model but KVM cannot provide them
    pool: str  # the selection, for comments
    target: Target
    uses_kvm_features: tuple[str, ...] = ()  # extra flags KVM provides beyond some host's own CPU
    libvirt_first: str | None = None  # first libvirt with the versioned name
    proxmox_builtin: str | None = None  # a Proxmox built-in type that is exactly this CPU

    @property
    def disabled(self) -> tuple[tuple[str, str], ...]:
        return self.remove + self.kvm_dropped


def config_input(conn: duckdb.DuckDBPyConnection, result: Baseline):
    """The plain data the emitters need for the recommendation, or None without one."""
    rec = result.recommended
    if rec is None:
        return None
    names = sorted(set(rec.extra_flags) | set(rec.disabled_flags))
    spelling = dict(conn.execute(sql("feature-spellings"), {"features": names}).fetchall())
    removed = tuple(sorted(set(rec.missing) | set(rec.nested_disabled)))
    libvirt_first = conn.execute(sql("model-libvirt-first"), {"model": rec.model}).fetchone()
    return ConfigInput(
        model=rec.model,
        model_alias=rec.model_alias,
        qemu_model=rec.model,
        proxmox_model=rec.proxmox_model,
        add=tuple((f, spelling.get(f, f)) for f in rec.extra_flags),
        remove=tuple((f, spelling.get(f, f)) for f in removed),
        kvm_dropped=tuple((f, spelling.get(f, f)) for f in rec.kvm_disabled),
        pool=result.selection,
        target=rec.target,
        uses_kvm_features=_uses_kvm_features(conn, rec),
        libvirt_first=libvirt_first[0] if libvirt_first else None,
        proxmox_builtin=_proxmox_builtin(conn, rec),
    )


def _proxmox_builtin(conn: duckdb.DuckDBPyConnection, rec: Recommendation) -> str | None:
    """The Proxmox built-in type (x86-64-vN) that is exactly the recommended CPU, if one is."""
    from cpudb.store.lookup import model_features

    final = (set(model_features(conn, rec.model)) | set(rec.extra_flags)) - set(rec.disabled_flags)
    for builtin, base in conn.execute(sql("proxmox-builtins")).fetchall():
        if base == rec.model and set(model_features(conn, builtin)) == final:
            return builtin
    return None


def _uses_kvm_features(conn: duckdb.DuckDBPyConnection, rec: Recommendation) -> tuple[str, ...]:
    """Extra flags some host's own CPU does not show: KVM provides them (Nova 27 and later only)."""
    rows = conn.execute(sql("baseline-kvm-provided"), {"features": list(rec.extra_flags)}).fetchall()
    return tuple(f for (f,) in rows)
