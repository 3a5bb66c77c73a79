"""What can still go wrong with a pool: the warnings a baseline and its report carry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cpudb.catalog.signatures import cpu_label
from cpudb.queries import sql
from cpudb.store.lookup import model_features

if TYPE_CHECKING:
    import duckdb

# Spellings only kernels of the RHEL 7 era print: a host showing them runs a kernel that may not
# name flags its CPU has (no pku on Skylake-SP, no wbnoinvd on Rome).
OLD_KERNEL_FLAGS = frozenset({"eagerfpu", "spec_ctrl", "intel_stibp", "retpoline_amd", "perfctr_l2"})
TSX_FLAGS = ("hle", "rtm")


@dataclass(frozen=True)
class Finding:
    """One fact an operator should act on, stated once.

    A 'blocker' makes a pool not ready, a 'risk' makes it ready with warnings, a 'note' informs.
    ``hosts`` names the first hosts concerned; ``count`` says how many there are in all.
    """

    severity: str  # 'blocker', 'risk' or 'note'
    topic: str  # what it is about, for grouping: vendors, inputs, cpu-variants, kernels, model, names
    text: str  # the fact
    action: str = ""  # what to do about it
    hosts: tuple[str, ...] = ()
    count: int = 0

    @property
    def line(self) -> str:
        """The fact and what to do, as one line for a terminal."""
        return f"{self.text} - {self.action}" if self.action else self.text


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
    planned: tuple[tuple[str, int], ...] = ()  # reference CPUs of the selection, with their planned count

    @property
    def planned_hosts(self) -> int:
        return sum(n for _, n in self.planned)

    @property
    def real_hosts(self) -> int:
        return self.total - self.planned_hosts


def pool(conn: duckdb.DuckDBPyConnection) -> Pool:
    total, vendors, hosts, unknown, guests, planned, weights = conn.execute(sql("selected-pool")).fetchone()
    return Pool(total or 0, tuple(vendors or ()), tuple(hosts or ()), tuple(unknown or ()), tuple(guests or ()),
                tuple(zip(planned or (), weights or ())))


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


def _names(hosts: Sequence[str], limit: int = 5, total: int | None = None) -> str:
    """The first hosts by name, and how many more (``total`` when only the first were fetched)."""
    total = len(hosts) if total is None else total
    shown = ", ".join(hosts[:limit])
    return shown + (f" and {total - limit} more" if total > limit else "")


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def pool_warnings(conn, facts: Pool, recommended, ranking, target, held_back=(), allow_guest_dumps: bool = False,
                  blind=None) -> list[Finding]:
    """Everything an operator should read before trusting the recommendation, each fact once."""
    found: list[Finding] = []
    add = found.append
    vendors = facts.vendors
    if {v for v in vendors if v in ("GenuineIntel", "CentaurHauls")} and {v for v in vendors if v in ("AuthenticAMD", "HygonGenuine")}:
        add(Finding(
            "risk", "vendors",
            "Intel and AMD hosts in one pool: a migrated guest sees the CPU vendor string change, and with it "
            "SYSCALL/SYSENTER behaviour in 32-bit compatibility mode and the CPUID cache and topology leaves; "
            "libvirt's own baseline refuses such pools",
            "test each guest OS with live migrations in both directions before the change",
        ))
    if facts.unknown_vendor:
        add(Finding("risk", "inputs", "the vendor is unknown (a flag list without vendor-specific flags)",
                    "collect lscpu from these hosts", facts.unknown_vendor[:5], len(facts.unknown_vendor)))
    guests = facts.guests
    if guests:
        every = len(guests) == len(facts.hosts)
        text = ("every dump was taken inside a virtual machine, not on a hypervisor" if every else
                f"{_plural(len(guests), 'dump')} of the pool {'was' if len(guests) == 1 else 'were'} taken inside "
                "virtual machines: their flags are what their hypervisor exposes, not what the hardware has")
        if allow_guest_dumps:
            add(Finding("note", "inputs", text + " (--allow-guest-dumps: meant)", "", guests[:5], len(guests)))
        else:
            add(Finding("blocker", "inputs", text,
                        "collect the dumps on the hypervisors themselves, or pass --allow-guest-dumps if "
                        "guests are the pool you mean", guests[:5], len(guests)))
    found += _cpu_variants(conn, recommended)
    found += _kernels(conn, ranking, recommended)
    for flag, count, first in conn.execute(sql("selected-unknown-flags")).fetchall():
        add(Finding("note", "inputs", f"flag {flag} is not in the flag dictionary: kept as data, never requested",
                    "", tuple(first[:5]), count))
    for parser_note, count, first in conn.execute(sql("selected-notes")).fetchall():
        add(Finding("note", "inputs", parser_note, "", tuple(first[:5]), count))
    unnamed = [f for f, why in held_back if why == "name"]
    pmu = [f for f, why in held_back if why == "pmu"]
    if unnamed:
        one = len(unnamed) == 1
        add(Finding(
            "note", "names",
            f"every host has {', '.join(unnamed)}, but {target.label} has no name for {'it' if one else 'them'}: "
            "not offered as extra flags",
            "a newer --target (or --qemu/--libvirt) names more features",
        ))
    if pmu:
        one = len(pmu) == 1
        add(Finding(
            "note", "names",
            f"every host has {', '.join(pmu)}, which follow{'s' if one else ''} the guest's PMU (QEMU drops "
            f"{'it' if one else 'them'} without one): not a stable migration feature",
            "pass --pmu if every guest of the pool gets a PMU",
        ))
    if recommended is None:
        closest = [m for m in ranking if not m.usable][:3]
        hint = "; ".join(f"{m.model} ({_why_unusable(m, target)})" for m in closest)
        add(Finding("blocker", "model", f"no CPU model of {target.name} is usable on every selected host"
                    + (f"; closest: {hint}" if hint else ""),
                    "choose a target whose Nova (27 or newer) can disable features, or leave the weakest hosts out"))
        return found
    found += _model_notes(conn, recommended)
    return found


def _model_notes(conn, rec) -> list[Finding]:
    """What the recommended model carries that an operator should know."""
    notes = []
    if rec.nested_disabled:
        notes.append(Finding("note", "model", f"{rec.model} contains nested-virtualization features that not every "
                             f"host offers; the configs turn off {', '.join(rec.nested_disabled)}"))
    nested_kept = {"vmx", "svm"} & (set(model_features(conn, rec.model)) - set(rec.disabled_flags))
    if nested_kept:
        notes.append(Finding(
            "note", "model",
            f"{rec.model} contains {' and '.join(sorted(nested_kept))} (nested virtualization): libvirt's definition "
            "requires it on every host, and QEMU enables it under KVM only when asked",
            "load kvm_amd/kvm_intel with nested=1 on every host if guests run their own VMs",
        ))
    if rec.kvm_disabled:
        one = len(rec.kvm_disabled) == 1
        notes.append(Finding(
            "note", "model",
            f"{', '.join(rec.kvm_disabled)} {'is' if one else 'are'} part of {rec.model} but KVM cannot give "
            f"{'it' if one else 'them'} to guests; the configs turn {'it' if one else 'them'} off (QEMU with "
            "'enforce' would refuse to start otherwise)",
        ))
    msr = [f for f in rec.unverifiable if not f.startswith("vmx-")]
    vmx = [f for f in rec.unverifiable if f.startswith("vmx-")]
    if msr:
        notes.append(Finding(
            "risk", "model", f"{_plural(len(msr), 'feature')} of {rec.model} cannot be verified from lscpu: {', '.join(msr)}",
            "check them with 'virsh domcapabilities' on one host of each CPU model (cpudb collect gathers it)",
        ))
    if vmx:
        notes.append(Finding("note", "model", f"{len(vmx)} vmx-* capabilities of {rec.model} cannot be verified from "
                             "lscpu; they matter only for guests that run their own VMs"))
    extra_libvirt = conn.execute(sql("baseline-libvirt-extra"), {"model": rec.model}).fetchall()
    if extra_libvirt:
        notes.append(Finding(
            "note", "model",
            f"libvirt's definition of {rec.model_alias} also requires {', '.join(f for (f,) in extra_libvirt)} "
            "(not in QEMU's model): libvirt and Nova check hosts for it",
        ))
    return notes


def _why_unusable(model, target) -> str:
    if model.unnameable:
        return f"{target.name} cannot name {', '.join(model.unnameable)} to disable"
    lacking = ", ".join(f"{f} ({model.missing_counts[f]} host{'s' if model.missing_counts[f] != 1 else ''})"
                        for f in list(model.missing)[:4])
    return f"Nova {target.nova} checks the bare model on each host's own CPU, which lacks {lacking}"


def blind_spots() -> dict[str, dict[str, str]]:
    """Flags some kernels never print (data/kernel_blind_spots.yaml)."""
    from cpudb.resources import data_yaml

    return data_yaml("kernel_blind_spots.yaml")["flags"]


def _kernels(conn, ranking, rec) -> list[Finding]:
    """Hosts whose kernel cannot show flags their CPU has: one finding per flag the configuration
    disables because of it, and one for old kernels that cost nothing visible."""
    found = []
    covered: set[str] = set()
    if rec is not None and rec.missing:
        chosen = next(m for m in ranking if m.model == rec.model)
        spots = blind_spots()
        spelled = dict(conn.execute(sql("feature-kernel-names")).fetchall())
        for feature in sorted(chosen.missing):
            flag = spelled.get(feature, feature)
            if flag not in spots:
                continue
            hosts, count = chosen.missing[feature], chosen.missing_counts[feature]
            kernels = dict(conn.execute(sql("selected-kernels"), {"hosts": list(hosts)}).fetchall())
            who = ", ".join(f"{h} (kernel {kernels[h]})" if kernels.get(h) else h for h in hosts[:5])
            more = f" and {count - 5} more" if count > 5 else ""
            covered.update(hosts)
            found.append(Finding(
                "risk", "kernels",
                f"{feature} is disabled because {who}{more} do{'es' if count == 1 else ''} not show {flag}; "
                f"{spots[flag]['kernel']} never print it although {spots[flag]['cpus']}",
                "run 'virsh domcapabilities' on such a host (cpudb collect gathers it) to see whether the CPU has "
                "it, and ingest that to keep it; or upgrade the kernel",
                tuple(hosts[:5]), count,
            ))
    flags, count, first = conn.execute(sql("selected-flag-holders"), {"flags": sorted(OLD_KERNEL_FLAGS)}).fetchone()
    rest = [h for h in (first or ()) if h not in covered]
    if count and rest:
        found.append(Finding(
            "note", "kernels",
            f"{_plural(count, 'host')} run a RHEL 7-era kernel (it prints {', '.join(flags)}): kernels do not show "
            "flags newer than themselves (pku on Skylake-SP, wbnoinvd on Rome)",
            "collect 'virsh domcapabilities' there, or upgrade the kernel, before relying on their flags",
            tuple(first), count,
        ))
    return found


def _cpu_variants(conn, rec) -> list[Finding]:
    """Bare-metal hosts of one CPU model and stepping whose flags differ: one finding per CPU model,
    naming for each group of differing flags the hosts that have them and those that do not."""
    groups: dict[tuple, list[tuple[tuple[str, ...], frozenset[str]]]] = defaultdict(list)
    for cpu, stepping, hosts, flags in conn.execute(sql("selected-cpu-flagsets")).fetchall():
        groups[(cpu, stepping)].append((tuple(hosts), frozenset(flags)))
    variants = {key: members for key, members in groups.items() if len(members) > 1}
    if not variants:
        return []
    differing_all = sorted({f for members in variants.values()
                            for f in frozenset.union(*(m[1] for m in members)) - frozenset.intersection(*(m[1] for m in members))})
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": differing_all}).fetchall())
    findings = []
    for (cpu, stepping), members in sorted(variants.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        everyone = sorted(h for hosts, _ in members for h in hosts)
        differing = frozenset.union(*(m[1] for m in members)) - frozenset.intersection(*(m[1] for m in members))
        by_holders: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for flag in sorted(differing):
            by_holders[tuple(sorted(h for hosts, flags in members if flag in flags for h in hosts))].append(flag)
        parts, guest_flags = [], []
        for have, flags in sorted(by_holders.items(), key=lambda item: (-len(item[0]), item[1])):
            holders = set(have)
            lack = [h for h in everyone if h not in holders]
            why = "TSX: microcode or tsx=off" if set(flags) <= {"hle", "rtm", "tsxldtrk"} else "BIOS, microcode or kernel"
            named = f"{' '.join(flags)} ({why})"
            if len(everyone) <= 4:
                parts.append(f"{named} on {_names(have)}, not on {_names(lack)}")
            elif len(have) <= len(lack):  # name the smaller side: that is where to look
                parts.append(f"{named} only on {_names(have, 2)}")
            else:
                parts.append(f"{named} missing on {_names(lack, 2)}")
            guest_flags += [f for f in flags if classes.get(f) == "guest"]
        text = f"{cpu_label(cpu, stepping)}: {len(everyone)} hosts differ: " + "; ".join(parts)
        action = ("the configuration already leaves the differing flags out of guests; to give guests "
                  f"{' '.join(sorted(set(guest_flags)))}, bring these hosts to the same microcode, BIOS settings "
                  "and kernel (cpudb drift shows when each changed)") if guest_flags else ""
        findings.append(Finding("risk" if guest_flags else "note", "cpu-variants", text, action,
                                tuple(everyone[:5]), len(everyone)))
    return findings
