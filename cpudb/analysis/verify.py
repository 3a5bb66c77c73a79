"""Check a dump taken inside a guest against what its CPU model and extra flags should give it."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from cpudb.analysis.baseline import expected_guest_flags
from cpudb.errors import UnknownFlagError
from cpudb.inputs.parse import HostDump
from cpudb.queries import sql
from cpudb.store.lookup import flag_info, model_features, resolve_model

# Classes whose flags say what CPU the guest was given; the rest (synthetic, os-state, the
# hypervisor bit, MSR-only) describe the guest kernel or cannot differ.
COMPARED = ("guest", "unmigratable", "nested", "host-only")
# Set in every guest by QEMU itself, whatever the model: HTT follows the guest topology (-smp).
SET_BY_QEMU = frozenset({"ht"})


@dataclass(frozen=True)
class Verification:
    guest: str
    model: str
    extra_flags: tuple[str, ...]
    disabled_flags: tuple[str, ...]
    expected: tuple[str, ...]
    missing: tuple[str, ...]  # expected kernel flags the guest does not show
    unexpected: tuple[str, ...]  # flags the guest shows that the configuration does not give
    added_by_kvm: tuple[str, ...]  # shown although not requested: KVM or QEMU set them in every guest
    ignored: tuple[str, ...]  # synthetic, os-state, hypervisor bit, unknown
    verdict: str

    @property
    def ok(self) -> bool:
        return not self.missing


def feature_names(conn: duckdb.DuckDBPyConnection, names: list[str]) -> tuple[str, ...]:
    """QEMU names for flags given by any of their names (avx512_vnni, avx512vnni, pclmuldq...)."""
    resolved = []
    for name in names:
        entries = [e for e in flag_info(conn, name) if e.qemu]
        if not entries:
            raise UnknownFlagError(f"{name!r} has no QEMU feature: it cannot be an extra or disabled flag")
        resolved.append(entries[0].qemu)
    return tuple(resolved)


def verify(
    conn: duckdb.DuckDBPyConnection,
    guest: HostDump,
    model: str,
    extra_flags: tuple[str, ...] = (),
    disabled_flags: tuple[str, ...] = (),
) -> Verification:
    """Compare the guest dump with the kernel flags model + extras - disabled should show."""
    model = resolve_model(conn, model)
    own = model_features(conn, model)
    kvm_dropped = {feature for feature, klass in own.items() if klass == "host-only"}
    features = (set(own) | set(extra_flags)) - set(disabled_flags) - kvm_dropped
    expected = set(expected_guest_flags(conn, features))
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": sorted(guest.flags)}).fetchall())
    always = SET_BY_QEMU | {
        flag
        for flag, in conn.execute(sql("flags-kvm-always")).fetchall()
    }
    compared = {flag for flag in guest.flags if classes.get(flag) in COMPARED}
    missing = sorted(expected - guest.flags)
    surplus = compared - expected
    added_by_kvm = sorted(surplus & always)
    unexpected = sorted(surplus - always)
    ignored = sorted(flag for flag in guest.flags if flag not in compared)
    if missing:
        verdict = f"MISSING: the guest lacks {len(missing)} flag(s) its configuration should give it"
    elif unexpected:
        verdict = f"EXTRA: the guest shows {len(unexpected)} flag(s) beyond its configuration (migration risk)"
    else:
        verdict = "OK: the guest shows exactly the flags its configuration gives"
    return Verification(
        guest=guest.host,
        model=model,
        extra_flags=tuple(sorted(extra_flags)),
        disabled_flags=tuple(sorted(disabled_flags)),
        expected=tuple(sorted(expected)),
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        added_by_kvm=tuple(added_by_kvm),
        ignored=tuple(ignored),
        verdict=verdict,
    )
