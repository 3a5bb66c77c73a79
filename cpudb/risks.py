"""What can still go wrong with a pool: the warnings a baseline and its report carry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cpudb.lookup import model_features
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb

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
class Outliers:
    """Hosts whose flags differ in the same way from others with the same CPU model name and stepping."""

    cpu: str
    peers: int  # hosts with the same CPU in the selection
    hosts: tuple[str, ...]
    missing: tuple[str, ...]  # flags most of their peers have and they lack
    extra: tuple[str, ...]  # flags they have and most of their peers lack


@dataclass(frozen=True)
class Pool:
    """Facts about the whole selection the warnings need, from one query (not one row per host)."""

    total: int  # planned hosts included
    vendors: tuple[str, ...]
    hosts: tuple[str, ...]  # by name
    unknown_vendor: tuple[str, ...]
    guests: tuple[str, ...]  # dumps taken inside virtual machines


def pool(conn: duckdb.DuckDBPyConnection) -> Pool:
    total, vendors, hosts, unknown, guests = conn.execute(sql("selected-pool")).fetchone()
    return Pool(total or 0, tuple(vendors or ()), tuple(hosts or ()), tuple(unknown or ()), tuple(guests or ()))


def outliers(conn: duckdb.DuckDBPyConnection) -> list[Outliers]:
    """Bare-metal hosts of `selected` that differ from the majority with the same CPU (model name,
    stepping), grouped by CPU and difference.

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
        differences: dict[tuple, list[str]] = defaultdict(list)
        for hosts, flags in members:
            missing, extra = expected - flags, flags & minority
            if missing or extra:
                differences[(tuple(sorted(missing)), tuple(sorted(extra)))].extend(hosts)
        found += [Outliers(label, size, tuple(sorted(h)), m, e) for (m, e), h in differences.items()]
    return sorted(found, key=lambda o: (o.cpu, o.hosts[0]))


def _names(hosts: Sequence[str], limit: int = 8, total: int | None = None) -> str:
    """The first hosts by name, and how many more (``total`` when only the first were fetched)."""
    total = len(hosts) if total is None else total
    shown = ", ".join(hosts[:limit])
    return shown + (f" and {total - limit} more" if total > limit else "")


def pool_warnings(conn, facts: Pool, recommended, ranking, target, held_back=()) -> list[Finding]:
    """Everything an operator should read before trusting the recommendation."""
    warnings: list[Finding] = []

    def risk(text: str) -> None:
        warnings.append(Finding("risk", text))

    def note(text: str) -> None:
        warnings.append(Finding("note", text))

    vendors = facts.vendors
    if len({v for v in vendors if v in ("GenuineIntel", "CentaurHauls")}) and len(
        {v for v in vendors if v in ("AuthenticAMD", "HygonGenuine")}
    ):
        risk(
            "Intel and AMD hosts in one pool: a migrated guest sees the CPU vendor string change, and with it "
            "SYSCALL/SYSENTER behaviour in 32-bit compatibility mode and the CPUID cache and topology leaves; "
            "libvirt's own baseline refuses such pools. Test each guest OS with migrations in both directions."
        )
    if facts.unknown_vendor:
        risk(f"vendor unknown for {_names(facts.unknown_vendor)} (a flag list without vendor-specific flags)")
    guests = facts.guests
    if guests and len(guests) < len(facts.hosts):
        risk(
            f"{len(guests)} dump(s) were taken inside virtual machines ({_names(guests)}): their flags are "
            "what their hypervisor exposes, not what the hardware has; mixed with bare-metal dumps."
        )
    elif guests:
        risk(f"every dump was taken inside a virtual machine ({_names(guests)}), not on a hypervisor")
    warnings += [Finding("risk", t) for t in _tsx_and_outliers(conn)]
    warnings += [Finding("risk", t) for t in _old_kernels(conn)]
    warnings += [Finding("risk", t) for t in _unknown_flags(conn)]
    for parser_note, count, first in conn.execute(sql("selected-notes")).fetchall():
        note(f"{first[0]}: {parser_note}" if count == 1 else f"{parser_note} ({count} hosts: {_names(first, total=count)})")
    unnamed = [f for f, why in held_back if why == "name"]
    pmu = [f for f, why in held_back if why == "pmu"]
    if unnamed:
        note(
            f"every host has {', '.join(unnamed)}, but {target.name} ({', '.join(f'{c} {v}' for c, v in target.components)}) "
            f"has no name for {'it' if len(unnamed) == 1 else 'them'}: not offered as extra flags"
        )
    if pmu:
        note(
            f"every host has {', '.join(pmu)}, which follow{'s' if len(pmu) == 1 else ''} the guest's PMU (QEMU drops "
            f"{'it' if len(pmu) == 1 else 'them'} without one): not a stable migration feature, offered only with --pmu"
        )
    if recommended is None:
        closest = [m for m in ranking if not m.usable][:3]
        hint = "; ".join(f"{m.model} ({_why_unusable(m, target)})" for m in closest)
        risk(f"no CPU model of {target.name} is usable on every selected host" + (f"; closest: {hint}" if hint else ""))
        return warnings
    chosen = next(m for m in ranking if m.model == recommended.model)
    warnings += [Finding("risk", t) for t in _blind_spots(conn, chosen)]
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
        one = len(recommended.kvm_disabled) == 1
        note(
            f"{', '.join(recommended.kvm_disabled)} {'is' if one else 'are'} part of {recommended.model} but KVM cannot "
            f"give {'it' if one else 'them'} to guests; the configs turn {'it' if one else 'them'} off (QEMU with "
            "'enforce' would refuse to start otherwise)"
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
    extra_libvirt = conn.execute(sql("baseline-libvirt-extra"), {"model": recommended.model}).fetchall()
    if extra_libvirt:
        note(
            f"libvirt's definition of {recommended.model_alias} also requires "
            f"{', '.join(f for (f,) in extra_libvirt)} (not in QEMU's model): libvirt and Nova check hosts for it"
        )
    return warnings


def _why_unusable(model, target) -> str:
    if model.unnameable:
        return f"{target.name} cannot name {', '.join(model.unnameable)} to disable"
    lacking = ", ".join(f"{f} ({model.missing_counts[f]} host{'s' if model.missing_counts[f] != 1 else ''})"
                        for f in list(model.missing)[:4])
    return f"Nova {target.nova} checks the bare model on each host's own CPU, which lacks {lacking}"


def blind_spots() -> dict[str, dict[str, str]]:
    """Flags some kernels never print (data/kernel_blind_spots.yaml)."""
    import yaml

    from cpudb.resources import data_path

    return yaml.safe_load(data_path("kernel_blind_spots.yaml").read_text(encoding="utf-8"))["flags"]


def _blind_spots(conn, chosen) -> list[str]:
    """A disabled feature whose kernel flag some kernels never print: name the hosts and kernels."""
    if not chosen.missing:
        return []
    spots = blind_spots()
    spelled = dict(conn.execute(sql("feature-kernel-names")).fetchall())
    texts = []
    for feature in sorted(chosen.missing):
        flag = spelled.get(feature, feature)
        if flag not in spots:
            continue
        hosts, count = chosen.missing[feature], chosen.missing_counts[feature]
        kernels = dict(conn.execute(sql("selected-kernels"), {"hosts": list(hosts)}).fetchall())
        who = ", ".join(f"{h} (kernel {kernels[h]})" if kernels.get(h) else h for h in hosts[:5])
        more = f" and {count - 5} more" if count > 5 else ""
        texts.append(
            f"{feature} is disabled because {who}{more} do{'es' if count == 1 else ''} not show {flag}; "
            f"{spots[flag]['kernel']} never print it although {spots[flag]['cpus']}. 'virsh domcapabilities' "
            "on such a host (cpudb collect gathers it) shows whether the CPU has it; ingest that to keep it"
        )
    return texts


def _tsx_and_outliers(conn) -> list[str]:
    """One warning per CPU model and difference, however many hosts share it."""
    warnings = []
    for group in outliers(conn):
        cpu, missing, extra, hosts, peers = group.cpu, group.missing, group.extra, group.hosts, group.peers
        others = peers - len(hosts)
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
    flags, count, first = conn.execute(sql("selected-flag-holders"), {"flags": sorted(OLD_KERNEL_FLAGS)}).fetchone()
    if not count:
        return []
    return [
        f"{_names(first, total=count)} run{'s' if count == 1 else ''} a RHEL 7-era kernel (it prints "
        f"{', '.join(flags)}): kernels do not show flags newer than themselves, so "
        "such a host may lack flags in its dump that its CPU has (pku on Skylake-SP, wbnoinvd on Rome)"
    ]


def _unknown_flags(conn) -> list[str]:
    rows = conn.execute(sql("selected-unknown-flags")).fetchall()
    return [
        f"flag {flag} is not in the flag dictionary (on {_names(first, total=count)}): kept as data, never requested"
        for flag, count, first in rows
    ]
