"""Refresh planning: x86-64 levels, what-if selections, and the profiles that hold a pool back.

Everything works on CPU profiles (hosts with identical flags) of the last baseline, so a
10,000-host fleet costs what its few dozen profiles cost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cpudb.analysis.baseline import Baseline, Options, compute
from cpudb.catalog.families import family_of
from cpudb.catalog.levels import LEVELS, level_of, systems_allowed, systems_excluded
from cpudb.errors import CpudbError, UnknownFlagError, UnknownModelError
from cpudb.queries import sql
from cpudb.store import fleet
from cpudb.store.lookup import flag_info, resolve_model


# --- levels ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileLevel:
    profile: str
    hosts: int
    sample_hosts: tuple[str, ...]
    cpu: str
    vendor: str
    level: str
    microarchitecture: str | None
    missing_for_next: tuple[str, ...]


@dataclass(frozen=True)
class PoolLevel:
    selection: str
    profiles: tuple[ProfileLevel, ...]
    common_level: str  # the level all hosts' flags reach together
    guest_level: str | None  # the level guests of the recommendation see
    recommended: str | None
    systems_allowed: tuple[str, ...]
    systems_excluded: tuple[str, ...]
    held_back_by: tuple[str, ...]  # profiles lacking what the next level needs


def _profile_flags(conn: duckdb.DuckDBPyConnection) -> dict[int, frozenset[str]]:
    return {p: frozenset(flags) for p, flags in conn.execute(sql("baseline-profile-flags")).fetchall()}


def pool_level(conn: duckdb.DuckDBPyConnection, result: Baseline) -> PoolLevel:
    flags = _profile_flags(conn)
    rows = {r.host: r for r in fleet.selected_hosts(conn)}
    profiles = []
    for p in result.profiles:
        host = rows[p.hosts[0]]
        info = level_of(flags[p.profile], host.vendor)
        profiles.append(
            ProfileLevel(f"P{p.profile}", p.n_hosts, p.hosts[:3], host.model_name or "unknown CPU",
                         host.vendor or "unknown", info.level, info.microarchitecture,
                         tuple(_kernel_spelling(f) for f in info.missing_for_next))
        )
    common = frozenset.intersection(*flags.values()) if flags else frozenset()
    common_level = level_of(common, None).level
    guest = level_of(set(result.recommended.guest_flags), None).level if result.recommended else None
    effective = guest or common_level
    position = LEVELS.index(effective)
    held = ()
    if position + 1 < len(LEVELS):
        held = tuple(p.profile for p in profiles if LEVELS.index(p.level) <= position)
    return PoolLevel(
        selection=result.selection,
        profiles=tuple(profiles),
        common_level=common_level,
        guest_level=guest,
        recommended=result.recommended.model if result.recommended else None,
        systems_allowed=systems_allowed(effective),
        systems_excluded=systems_excluded(effective),
        held_back_by=held,
    )


def _kernel_spelling(flag: str) -> str:
    """archspec names SSE3 'sse3'; the kernel prints 'pni'."""
    return {"sse3": "pni"}.get(flag, flag)


# --- what-if ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    selection: str
    hosts: int
    planned_hosts: int
    profiles: int
    model: str | None
    model_alias: str | None
    extra_flags: tuple[str, ...]
    edits: int | None
    guest_flags: frozenset[str]
    guest_features: int  # of the guest features every host has, how many guests get
    pool_common: int
    level: str | None


@dataclass(frozen=True)
class WhatIf:
    before: Side
    after: Side
    gained: tuple[str, ...]
    lost: tuple[str, ...]
    gained_notable: tuple[tuple[str, tuple[str, ...]], ...]
    lost_notable: tuple[tuple[str, tuple[str, ...]], ...]


def _side(result: Baseline) -> Side:
    rec = result.recommended
    guest = frozenset(rec.guest_flags) if rec else frozenset()
    return Side(
        selection=result.selection,
        hosts=result.total_hosts,
        planned_hosts=result.planned_hosts,
        profiles=len(result.profiles),
        model=rec.model if rec else None,
        model_alias=rec.model_alias if rec else None,
        extra_flags=rec.extra_flags if rec else (),
        edits=rec.edits if rec else None,
        guest_flags=guest,
        guest_features=result.guest_features.given if result.guest_features else 0,
        pool_common=result.guest_features.pool_common if result.guest_features else 0,
        level=level_of(guest, None).level if rec else None,
    )


def _notable(flags) -> tuple[tuple[str, tuple[str, ...]], ...]:
    grouped: dict[str, list[str]] = {}
    for flag in sorted(flags):
        family = family_of(flag)
        if family.notable:
            grouped.setdefault(family.name, []).append(flag)
    return tuple((k, tuple(v)) for k, v in grouped.items())


def after_selection(selection: str, add: str = "", remove: str = "") -> str:
    """The selection after adding items and removing patterns ('*' stands for all real hosts)."""
    base = selection.strip() or "*"
    removed = " ".join("!" + item for item in re.split(r"[\s,]+", remove.strip()) if item)
    return " ".join(part for part in (base, add.strip(), removed) if part)


def whatif(
    conn: duckdb.DuckDBPyConnection,
    selection: str,
    add: str = "",
    remove: str = "",
    options: Options = Options(),
    inventory: Path | None = None,
) -> WhatIf:
    if not add.strip() and not remove.strip():
        raise CpudbError("what-if needs --add ITEMS (hosts, ref:<id>[*N]) or --remove PATTERNS, or both")
    fleet.select(conn, selection, inventory)
    before = _side(compute(conn, selection, options))
    changed = after_selection(selection, add, remove)
    fleet.select(conn, changed, inventory)
    after = _side(compute(conn, changed, options))
    gained = after.guest_flags - before.guest_flags
    lost = before.guest_flags - after.guest_flags
    return WhatIf(before, after, tuple(sorted(gained)), tuple(sorted(lost)), _notable(gained), _notable(lost))


# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuModel:
    """The profiles of one CPU model and stepping: BIOS, microcode and kernel variants of one part."""

    label: str  # "Xeon Gold 6230, stepping 7"
    generation: str  # from the CPUID signature
    hosts: int
    profiles: tuple[str, ...]  # P3, P4: its variants
    planned: bool  # reference CPUs of a what-if, not hosts that exist


@dataclass(frozen=True)
class Retirement:
    """What the pool gains if every host of one CPU model is retired."""

    cpu: str
    hosts: int
    variants: int
    gained: tuple[str, ...]  # guest features (kernel flags)
    gained_notable: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Step:
    retired: str | None  # CPU model retired at this step (None: the pool as it is)
    hosts_left: int  # existing hosts
    planned_left: int  # planned hosts (ref:), never counted as existing
    guest_features: int
    gained: int  # over the step before


@dataclass(frozen=True)
class GoalResult:
    goal: str
    reached_now: bool
    retire: tuple[tuple[str, int, str, str], ...]  # (profile, hosts, cpu, why it fails the goal)
    hosts_retired: int
    hosts_kept: int
    reachable: bool


@dataclass(frozen=True)
class Limits:
    selection: str
    guest_features: int  # guest features (kernel flags) every host has now: what guests can share
    cpu_models: tuple[CpuModel, ...]
    retirements: tuple[Retirement, ...]  # leave-one-CPU-model-out, most gain first
    steps: tuple[Step, ...]  # greedy: retire the CPU model that gains most, while that gains anything
    goal: GoalResult | None


def _profile_features(conn: duckdb.DuckDBPyConnection) -> dict[int, frozenset[str]]:
    return {p: frozenset(f) for p, f in conn.execute(sql("baseline-profile-guest-features")).fetchall()}


def cpu_models(result: Baseline, rows: dict[str, fleet.HostRow]) -> dict[str, tuple[CpuModel, tuple[int, ...]]]:
    """The selection's CPU models (model name and stepping), each with the profiles that are its variants."""
    from cpudb.catalog.signatures import cpu_label, describe

    groups: dict[str, list] = {}
    for p in result.profiles:
        host = rows[p.hosts[0]]
        label = cpu_label(host.model_name, host.stepping)
        if host.kind == "reference":
            label = f"{p.hosts[0]} (planned)"
        groups.setdefault(label, [host, []])[1].append(p)
    found = {}
    for label, (host, profiles) in groups.items():
        found[label] = (
            CpuModel(
                label=label,
                generation=describe(host.vendor, host.family, host.model, host.stepping, None),
                hosts=sum(p.n_hosts for p in profiles),
                profiles=tuple(f"P{p.profile}" for p in profiles),
                planned=host.kind == "reference",
            ),
            tuple(p.profile for p in profiles),
        )
    return found


def limits(
    conn: duckdb.DuckDBPyConnection,
    selection: str,
    goal: str = "",
    options: Options = Options(),
    result: Baseline | None = None,
    include_planned: bool = False,
) -> Limits:
    """Leave-one-CPU-model-out gains, a greedy retire sequence, and the profiles a goal needs retired.

    Gains are in guest features (kernel flags of class guest every remaining host has), the
    numbers the baseline's headline uses. Planned hosts (ref:) are retirement candidates only
    with ``include_planned``. ``result`` is the baseline just computed for the same selection.
    """
    result = result or compute(conn, selection, options)
    features = _profile_features(conn)
    profile_flags = _profile_flags(conn)
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": sorted(set().union(*profile_flags.values()))}).fetchall()) if profile_flags else {}
    guest = {p: frozenset(f for f in flags if classes.get(f) == "guest") for p, flags in profile_flags.items()}
    rows = {r.host: r for r in fleet.selected_hosts(conn)}
    models = cpu_models(result, rows)

    def shared(labels) -> frozenset[str]:
        sets = [guest[pid] for label in labels for pid in models[label][1]]
        return frozenset.intersection(*sets) if sets else frozenset()

    everyone = list(models)
    common = shared(everyone)
    candidates = [m for m in everyone if include_planned or not models[m][0].planned]
    retirements = []
    if len(everyone) > 1:
        for label in candidates:
            gained = sorted(shared([m for m in everyone if m != label]) - common)
            cpu = models[label][0]
            retirements.append(Retirement(label, cpu.hosts, len(cpu.profiles), tuple(gained), _notable(gained)))
    retirements.sort(key=lambda r: (-len(r.gained), r.hosts, r.cpu))
    def hosts(labels, planned: bool) -> int:
        return sum(models[m][0].hosts for m in labels if models[m][0].planned == planned)

    steps = [Step(None, hosts(everyone, False), hosts(everyone, True), len(common), 0)]
    left = list(everyone)
    while len(left) > 1:
        options_left = [m for m in left if m in candidates]
        if not options_left:
            break
        now = len(shared(left))
        best = max(sorted(options_left), key=lambda m: (len(shared([x for x in left if x != m])), -models[m][0].hosts))
        after = len(shared([x for x in left if x != best]))
        if after <= now:
            break  # nothing more to gain by retiring any one CPU model
        left.remove(best)
        steps.append(Step(best, hosts(left, False), hosts(left, True), after, after - now))
    cpus = {r.host: r.model_name or "unknown CPU" for r in rows.values()}
    found = _goal(conn, goal, result, features, cpus) if goal.strip() else None
    return Limits(result.selection, len(common), tuple(models[m][0] for m in everyone), tuple(retirements),
                  tuple(steps), found)


def _goal(conn, text: str, result: Baseline, features: dict[int, frozenset[str]], cpus) -> GoalResult:
    """Profiles that fail any goal item: a goal is reached exactly when every remaining one meets it."""
    failing: dict[int, list[str]] = {}
    profile_flags = _profile_flags(conn)
    for item in [i for i in re.split(r"[\s,]+", text.strip()) if i]:
        level = _as_level(item)
        if level:
            from cpudb.catalog.levels import level_of as place

            for p in result.profiles:
                got = place(profile_flags[p.profile], None).level
                if LEVELS.index(got) < LEVELS.index(level):
                    failing.setdefault(p.profile, []).append(f"is {got}, not {level}")
            continue
        model = _as_model(conn, item)
        if model:
            for p, reasons in _model_failures(conn, model).items():
                failing.setdefault(p, []).append(f"{model} needs {' '.join(reasons)}")
            continue
        feature = _as_feature(conn, item)
        for p in result.profiles:
            if feature not in features[p.profile]:
                failing.setdefault(p.profile, []).append(f"lacks {item}")
    by_id = {p.profile: p for p in result.profiles}
    retire = tuple(
        (f"P{p}", by_id[p].n_hosts, cpus[by_id[p].hosts[0]], "; ".join(reasons))
        for p, reasons in sorted(failing.items())
    )
    retired = sum(by_id[p].n_hosts for p in failing)
    return GoalResult(
        goal=text.strip(),
        reached_now=not failing,
        retire=retire,
        hosts_retired=retired,
        hosts_kept=result.total_hosts - retired,
        reachable=len(failing) < len(result.profiles),
    )


def _as_level(item: str) -> str | None:
    match = re.fullmatch(r"(?:x86[-_]64[-_])?v([234])", item.lower())
    return f"x86-64-v{match.group(1)}" if match else None


def _as_model(conn, item: str) -> str | None:
    try:
        return resolve_model(conn, item)
    except UnknownModelError:
        return None


def _as_feature(conn, item: str) -> str:
    try:
        entries = [e for e in flag_info(conn, item) if e.qemu]
    except UnknownFlagError:
        entries = []
    if not entries:
        raise CpudbError(f"goal {item!r} is not a CPU model, an x86-64 level (v2, v3, v4) or a guest feature flag")
    return entries[0].qemu


def _model_failures(conn, model: str) -> dict[int, list[str]]:
    """For a model of the last baseline's candidates: profile -> features it lacks."""
    rows = conn.execute(sql("baseline-model-lacking"), {"model": model}).fetchall()
    if not rows and not conn.execute(sql("baseline-is-candidate"), {"model": model}).fetchone():
        raise CpudbError(
            f"{model} is not a candidate for this pool's target (32-bit, or its QEMU, libvirt or Proxmox cannot name it, "
            "or KubeVirt calls it obsolete; see --target)"
        )
    failing: dict[int, list[str]] = {}
    for feature, lacking in rows:
        for p in lacking:
            failing.setdefault(p, []).append(feature)
    return failing
