"""What can still go wrong with a pool: the warnings a baseline and its report carry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from cpudb.lookup import model_features
from cpudb.queries import sql

# Spellings only kernels of the RHEL 7 era print: a host showing them runs a kernel that may not
# name flags its CPU has (no pku on Skylake-SP, no wbnoinvd on Rome).
OLD_KERNEL_FLAGS = frozenset({"eagerfpu", "spec_ctrl", "intel_stibp", "retpoline_amd", "perfctr_l2"})
TSX_FLAGS = ("hle", "rtm")


@dataclass(frozen=True)
class Finding:
    """A warning with its weight: a 'risk' makes a pool 'ready with warnings', a 'note' informs."""

    severity: str  # 'risk' or 'note'
    text: str


@dataclass(frozen=True)
class Outlier:
    """A host whose flags differ from others with the same CPU model name and stepping."""

    host: str
    cpu: str
    peers: int  # hosts with the same CPU in the selection
    missing: tuple[str, ...]  # flags most of its peers have and it lacks
    extra: tuple[str, ...]  # flags it has and most of its peers lack


def outliers(conn: duckdb.DuckDBPyConnection) -> list[Outlier]:
    """Bare-metal hosts of `selected` that differ from the majority with the same CPU (model name, stepping).

    Works on flag sets: hosts with the same CPU and the same flags are judged once.
    """
    groups: dict[tuple, list[tuple[tuple[str, ...], frozenset[str]]]] = defaultdict(list)
    for cpu, stepping, hosts, flags in conn.execute(sql("selected-cpu-flagsets")).fetchall():
        groups[(cpu, stepping)].append((tuple(hosts), frozenset(flags)))
    found = []
    for (cpu, stepping), members in groups.items():
        size = sum(len(hosts) for hosts, _ in members)
        if size < 2 or len(members) < 2:
            continue
        counts: dict[str, int] = defaultdict(int)
        for hosts, flags in members:
            for flag in flags:
                counts[flag] += len(hosts)
        # A flag at least half the group has is expected, one at most half has is a minority
        # flag: in an even split (one host with TSX, one without) both sides are outliers.
        expected = {flag for flag, n in counts.items() if n * 2 >= size}
        minority = {flag for flag, n in counts.items() if n * 2 <= size}
        label = f"{cpu} stepping {stepping}" if stepping is not None else cpu
        for hosts, flags in members:
            missing, extra = expected - flags, flags & minority
            if missing or extra:
                found += [Outlier(h, label, size, tuple(sorted(missing)), tuple(sorted(extra))) for h in hosts]
    return sorted(found, key=lambda o: (o.cpu, o.host))


def _names(hosts: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(hosts[:limit])
    return shown + (f" and {len(hosts) - limit} more" if len(hosts) > limit else "")


def pool_warnings(conn, host_rows, recommended, ranking, options) -> list[Finding]:
    """Everything an operator should read before trusting the recommendation."""
    warnings: list[Finding] = []

    def risk(text: str) -> None:
        warnings.append(Finding("risk", text))

    def note(text: str) -> None:
        warnings.append(Finding("note", text))

    vendors = sorted({r.vendor or "unknown" for r in host_rows})
    if len({v for v in vendors if v in ("GenuineIntel", "CentaurHauls")}) and len(
        {v for v in vendors if v in ("AuthenticAMD", "HygonGenuine")}
    ):
        risk(
            "Intel and AMD hosts in one pool: a migrated guest sees the CPU vendor string change, and with it "
            "SYSCALL/SYSENTER behaviour in 32-bit compatibility mode and the CPUID cache and topology leaves; "
            "libvirt's own baseline refuses such pools. Test each guest OS with migrations in both directions."
        )
    if "unknown" in vendors:
        unknown = [r.host for r in host_rows if not r.vendor]
        risk(f"vendor unknown for {_names(unknown)} (a flag list without vendor-specific flags)")
    guests = [r.host for r in host_rows if r.is_guest]
    if guests and len(guests) < len(host_rows):
        risk(
            f"{len(guests)} dump(s) were taken inside virtual machines ({_names(guests)}): their flags are "
            "what their hypervisor exposes, not what the hardware has; mixed with bare-metal dumps."
        )
    elif guests:
        risk(f"every dump was taken inside a virtual machine ({_names(guests)}), not on a hypervisor")
    warnings += [Finding("risk", t) for t in _tsx_and_outliers(conn)]
    warnings += [Finding("risk", t) for t in _old_kernels(conn)]
    warnings += [Finding("risk", t) for t in _unknown_flags(conn)]
    for host, parser_note in conn.execute(sql("selected-notes")).fetchall():
        note(f"{host}: {parser_note}")
    if recommended is None:
        near = [m for m in ranking if m.near_miss][:3]
        hint = "; closest: " + "; ".join(f"{m.model} without {', '.join(m.missing)}" for m in near) if near else ""
        risk(f"no CPU model is compatible with every selected host{hint}")
        return warnings
    if recommended.nested_disabled:
        note(
            f"{recommended.model} contains nested-virtualization features that not every host offers; "
            f"configs turn off {', '.join(recommended.nested_disabled)}"
        )
    nested_kept = {"vmx", "svm"} & (set(model_features(conn, recommended.model)) - set(recommended.disabled_flags))
    if nested_kept:
        note(
            f"{recommended.model} contains {' and '.join(sorted(nested_kept))} (nested virtualization): libvirt's "
            "definition requires it on every host; QEMU enables it under KVM only when asked (+svm), and guests "
            "then need kvm_amd/kvm_intel nested=1 on every host"
        )
    if recommended.kvm_disabled:
        note(
            f"{', '.join(recommended.kvm_disabled)} {'is' if len(recommended.kvm_disabled) == 1 else 'are'} part of "
            f"{recommended.model} but KVM cannot give {'it' if len(recommended.kvm_disabled) == 1 else 'them'} to "
            "guests; the configs turn it off (QEMU with 'enforce' would refuse to start otherwise)"
        )
    msr = [f for f in recommended.unverifiable if not f.startswith("vmx-")]
    vmx = [f for f in recommended.unverifiable if f.startswith("vmx-")]
    if msr:
        note(
            f"{len(msr)} feature(s) of {recommended.model} cannot be verified from lscpu: {', '.join(msr)}; "
            "check them with 'virsh domcapabilities' on one host of each CPU profile (or ingest that output)"
        )
    if vmx:
        note(
            f"{len(vmx)} vmx-* capabilities of {recommended.model} cannot be verified from lscpu; they matter only "
            "for nested VMX guests"
        )
    if not options.libvirt and not options.libvirt_map and recommended.model_alias.rsplit("-v", 1)[-1].isdigit():
        note(
            f"configs name the model {recommended.model_alias}: versioned names need libvirt 10.10 or newer "
            "(pass --libvirt 9.0 for Debian 12's libvirt, or --libvirt-map for yours)"
        )
    extra_libvirt = conn.execute(sql("baseline-libvirt-extra"), {"model": recommended.model}).fetchall()
    if extra_libvirt:
        note(
            f"libvirt's definition of {recommended.model_alias} also requires "
            f"{', '.join(f for (f,) in extra_libvirt)} (not in QEMU's model): libvirt and Nova check hosts for it"
        )
    return warnings


def _tsx_and_outliers(conn) -> list[str]:
    """One warning per CPU model and difference, however many hosts share it."""
    grouped: dict[tuple, list[Outlier]] = defaultdict(list)
    for outlier in outliers(conn):
        grouped[(outlier.cpu, outlier.missing, outlier.extra)].append(outlier)
    warnings = []
    for (cpu, missing, extra), members in grouped.items():
        hosts = [o.host for o in members]
        peers = members[0].peers
        others = peers - len(members)
        who = f"{_names(hosts, 5)} ({len(hosts)} of {peers} {cpu} hosts)" if len(hosts) > 1 else hosts[0]
        tsx = [f for f in TSX_FLAGS if f in missing or f in extra]
        if tsx:
            has = "have" if len(hosts) > 1 else "has"
            verb = has if tsx[0] in extra else ("lack" if len(hosts) > 1 else "lacks")
            peers_text = f"the other {others} {cpu} host{'s' if others != 1 else ''} do{'es' if others == 1 else ''} not"
            if len(hosts) > 1:
                peers_text = f"the other {others} do{'es' if others == 1 else ''} not"
            warnings.append(
                f"TSX differs inside one CPU model: {who} {verb} {' '.join(tsx)}, {peers_text} "
                "(microcode or tsx=off); a -noTSX model version is needed"
            )
        other_missing = [f for f in missing if f not in TSX_FLAGS]
        other_extra = [f for f in extra if f not in TSX_FLAGS]
        if other_missing or other_extra:
            detail = []
            if other_missing:
                detail.append(f"lack{'s' if len(hosts) == 1 else ''} {' '.join(other_missing)}")
            if other_extra:
                detail.append(f"{'has' if len(hosts) == 1 else 'have'} {' '.join(other_extra)} too")
            if len(hosts) > 1:
                base = f"{who} differ from the other {others}"
            else:
                base = f"{who} differs from the other {others} {cpu} host{'s' if others != 1 else ''}"
            warnings.append(f"{base}: {'; '.join(detail)} (BIOS setting, microcode or kernel)")
    return warnings


def _old_kernels(conn) -> list[str]:
    rows = conn.execute(sql("selected-flag-hosts"), {"flags": sorted(OLD_KERNEL_FLAGS)}).fetchall()
    hosts = sorted({host for host, _ in rows})
    if not hosts:
        return []
    return [
        f"{_names(hosts)} run{'s' if len(hosts) == 1 else ''} a RHEL 7-era kernel (it prints "
        f"{', '.join(sorted({flag for _, flag in rows}))}): kernels do not show flags newer than themselves, so "
        "such a host may lack flags in its dump that its CPU has (pku on Skylake-SP, wbnoinvd on Rome)"
    ]


def _unknown_flags(conn) -> list[str]:
    rows = conn.execute(sql("selected-unknown-flags")).fetchall()
    return [
        f"flag {flag} is not in the flag dictionary (on {_names(hosts)}): kept as data, never requested"
        for flag, hosts in rows
    ]
