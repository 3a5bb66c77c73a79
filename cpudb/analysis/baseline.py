"""Choose the baseline: the QEMU CPU model and the fewest edits that every selected host can run.

For each model version the target stack knows, the edits are the extra flags (the pool's common
guest features the model lacks) and the disabled ones (model features some host lacks or KVM
cannot give). Every usable candidate then gives guests the same features, so the closest model
wins: fewest edits, then the pool's vendor, then newer, then named over generic.

The set work runs in SQL (queries/baseline.sql) on profiles: distinct flag sets x vendor
group, so 100,000 hosts with 40 distinct flag sets cost what 40 hosts cost. This module picks
the names configs will use, runs the pipeline, and turns rows into results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cpudb.catalog import targets
from cpudb.catalog.dictionary import release_number
from cpudb.catalog.targets import Target
from cpudb.errors import CatalogError, RequirementError
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb

# Lists of host names in results are capped; the counts are always complete.
MAX_HOSTS_LISTED = 20
ALTERNATIVES = 5


@dataclass(frozen=True)
class Options:
    """What shapes a baseline beyond the host selection."""

    target: str | None = None
    qemu: str | None = None
    libvirt: str | None = None
    libvirt_map: Path | None = None
    nova_release: str | None = None
    require: tuple[str, ...] = ()
    allow_unmigratable: bool = False
    pmu: bool = False
    allow_guest_dumps: bool = False  # dumps taken inside guests are the pool meant, not a mistake
    detail: bool = False  # every host lacking a feature, not the first MAX_HOSTS_LISTED

    def describe(self) -> list[str]:
        shown = []
        for name in ("target", "qemu", "libvirt", "libvirt_map", "nova_release"):
            value = getattr(self, name)
            if value:
                shown.append(f"--{name.replace('_', '-')} {value}")
        if self.require:
            shown.append(f"--require {','.join(self.require)}")
        if self.allow_unmigratable:
            shown.append("--allow-unmigratable")
        if self.pmu:
            shown.append("--pmu")
        if self.allow_guest_dumps:
            shown.append("--allow-guest-dumps")
        return shown


@dataclass(frozen=True)
class RankedModel:
    """One candidate model version judged against the pool."""

    model: str
    alias: str  # the name libvirt, Nova and KubeVirt get (versioned, or the older libvirt's name)
    proxmox_name: str | None  # the reported-model Proxmox knows it by, if any
    vendor: str
    generic: bool
    usable: bool
    missing: dict[str, tuple[str, ...]]  # feature some host lacks -> hosts lacking it (capped list)
    missing_counts: dict[str, int]
    extra_flags: tuple[str, ...]
    kvm_disabled: tuple[str, ...]  # in the model, but KVM cannot give them
    nested_disabled: tuple[str, ...]  # nested-virtualization features not on every host
    unverifiable: tuple[str, ...]  # lscpu cannot show them; assumed present, to check by hand
    unnameable: tuple[str, ...]  # would have to be disabled, but the target has no name for them
    vendor_match: bool
    age: int
    edits: int

    @property
    def disabled_flags(self) -> tuple[str, ...]:
        """Everything a config turns off: missing on some host, not given by KVM, nested not everywhere."""
        return tuple(sorted(set(self.missing) | set(self.kvm_disabled) | set(self.nested_disabled)))


@dataclass(frozen=True)
class GuestFeatures:
    """What guests get of the kernel flags (guest features) every selected host shows."""

    given: int
    pool_common: int
    lost: tuple[str, ...]  # security features first
    lost_security: tuple[str, ...]
    why_lost: tuple[tuple[str, str], ...]  # (flag, reason)

    @property
    def headline(self) -> str:
        text = f"guests get {self.given} of the {self.pool_common} guest features every host has"
        if not self.lost:
            return text
        security = f" (security: {', '.join(self.lost_security)})" if self.lost_security else ""
        return f"{text}; they lose {', '.join(self.lost)}{security}"


@dataclass(frozen=True)
class Recommendation:
    model: str  # the versioned QEMU name, which QEMU's -cpu takes
    model_alias: str  # the name libvirt, Nova and KubeVirt get
    proxmox_model: str | None  # Proxmox's reported-model, None when Proxmox cannot name it
    extra_flags: tuple[str, ...]  # QEMU names
    disabled_flags: tuple[str, ...]
    missing: tuple[str, ...]  # disabled because some host lacks them
    kvm_disabled: tuple[str, ...]
    nested_disabled: tuple[str, ...]
    guest_flags: tuple[str, ...]
    unverifiable: tuple[str, ...]
    vendor: str
    edits: int
    target: Target


@dataclass(frozen=True)
class NotExpressible:
    flag: str
    klass: str
    reason: str


@dataclass(frozen=True)
class Profile:
    """Hosts with an identical flag set (and vendor group)."""

    profile: int
    vendor_group: str
    hosts: tuple[str, ...]
    n_hosts: int


@dataclass(frozen=True)
class Baseline:
    selection: str
    hosts: tuple[str, ...]
    total_hosts: int
    vendors: tuple[str, ...]
    common_flags: tuple[str, ...]
    common_features: tuple[str, ...]
    recommended: Recommendation | None
    ranking: tuple[RankedModel, ...]
    not_expressible: tuple[NotExpressible, ...]
    findings: tuple  # risks.Finding: each fact once, with its severity, hosts and what to do
    profiles: tuple[Profile, ...]
    target: Target
    guest_features: GuestFeatures | None
    options: Options = field(default_factory=Options)
    planned: tuple[tuple[str, int], ...] = ()  # reference CPUs (ref:) and the hosts each stands for

    @property
    def planned_hosts(self) -> int:
        return sum(n for _, n in self.planned)

    @property
    def real_hosts(self) -> int:
        return self.total_hosts - self.planned_hosts

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f.line for f in self.findings)

    @property
    def risks(self) -> tuple[str, ...]:
        return tuple(f.line for f in self.findings if f.severity in ("blocker", "risk"))

    @property
    def blockers(self) -> tuple[str, ...]:
        return tuple(f.line for f in self.findings if f.severity == "blocker")

    @property
    def alternatives(self) -> tuple[RankedModel, ...]:
        """The next usable candidates after the recommendation, closest first."""
        chosen = self.recommended.model if self.recommended else None
        return tuple(m for m in self.ranking if m.usable and m.model != chosen)[:ALTERNATIVES]


# --- the target and the names a config will use ----------------------------------------------


def target_of(conn: duckdb.DuckDBPyConnection, options: Options) -> Target:
    """The target of this run: --target, else the versions collected on the selected hosts, else
    the portable default; --qemu/--libvirt/--nova-release override parts of it."""
    facts = {"qemu": [], "libvirt": [], "nova": []}
    for component, version, host in conn.execute(sql("selected-stack")).fetchall():
        facts[component].append((version, host))
    stack = targets.HostStack(tuple(facts["qemu"]), tuple(facts["libvirt"]), tuple(facts["nova"]))
    return targets.resolve(options.target, options.qemu, options.libvirt, options.nova_release, stack)


def _config_names(
    conn: duckdb.DuckDBPyConnection, target: Target, libvirt_map: Path | None
) -> tuple[list[tuple[str, str, str, str | None]], list[tuple[str, str]]]:
    """(model, libvirt name, which libvirt definition applies, Proxmox name) per candidate, and
    the extra requirements of an imported libvirt map.

    Candidates are 64-bit QEMU model versions the target's QEMU offers, that its libvirt can
    name (versioned from 10.10, else by the plain or variant name libvirt 9.0 knows), that its
    Proxmox can name and that KubeVirt does not call obsolete, where those are part of it.
    """
    rules = targets.rules()
    qemu_limit = release_number(target.qemu)
    libvirt_limit = release_number(target.libvirt) if target.libvirt else None
    names_9_0: dict[str, str] = {}
    for alias, model in conn.execute(sql("libvirt-9-0-names")).fetchall():
        names_9_0.setdefault(model, alias)
    short: dict[str, list[str]] = {}
    for alias, model, kind in conn.execute(sql("all-model-aliases")).fetchall():
        if kind in ("qemu", "plain"):
            short.setdefault(model, []).append(alias)
    mapped = _read_map(libvirt_map) if libvirt_map else None
    config, extra = [], []
    for model, family_name, qemu_first, libvirt_first in conn.execute(sql("candidate-models")).fetchall():
        if qemu_first is None or qemu_first > qemu_limit:
            continue
        if target.kubevirt_rule and rules.kubevirt_obsolete_model(family_name):
            continue
        proxmox = _proxmox_name(model, short.get(model, []), target)
        if target.proxmox_models is not None and proxmox is None:
            continue
        if mapped is not None:
            if model not in mapped:
                continue
            name, needs = mapped[model]
            config.append((model, name, "libvirt-map", proxmox))
            extra += [(model, feature) for feature in needs]
        elif libvirt_limit is None:
            config.append((model, model, "none", proxmox))  # no libvirt in this stack
        elif target.libvirt_versioned_names and libvirt_first is not None and libvirt_first <= libvirt_limit:
            config.append((model, model, "libvirt", proxmox))
        elif model in names_9_0:
            config.append((model, names_9_0[model], "libvirt-9.0", proxmox))
    return config, extra


def _proxmox_name(model: str, aliases: list[str], target: Target) -> str | None:
    """The name Proxmox's qemu-server knows the version by: itself, a variant or the plain name."""
    known = target.proxmox_models if target.proxmox_models is not None else targets.portable().proxmox_models
    if not known:
        return None
    return next((name for name in [model, *sorted(aliases, key=len, reverse=True)] if name in known), None)


def _read_map(path: Path) -> dict[str, tuple[str, list[str]]]:
    """QEMU model -> (libvirt name, extra requirements) from `cpudb catalog import-libvirt` output."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = [(m["name"], m["qemu_model"], m["extra"]) for m in document["models"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: not a libvirt map written by 'cpudb catalog import-libvirt' ({exc})") from None
    found: dict[str, tuple[str, list[str]]] = {}
    for name, model, needs in entries:
        if model and model not in found:
            found[model] = (name, list(needs))
    return found


def _map_feature_names(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        return sorted({f["qemu"] for f in document["features"] if f["qemu"]})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: not a libvirt map written by 'cpudb catalog import-libvirt' ({exc})") from None


# --- running it ------------------------------------------------------------------------------


def compute(conn: duckdb.DuckDBPyConnection, selection_text: str, options: Options = Options()) -> Baseline:
    """The baseline of the hosts in the temp table ``selected`` (see fleet.select)."""
    target = target_of(conn, options)
    rules = targets.rules()
    allow = {"allow_unmigratable": options.allow_unmigratable}
    pmu = {"pmu": options.pmu, "pmu_features": sorted(rules.pmu_dependent)}
    conn.execute(sql("baseline-profiles"))
    profiles = tuple(
        Profile(p, v, tuple(h), n) for p, v, h, n in conn.execute(sql("baseline-profile-list")).fetchall()
    )
    by_profile = {p.profile: p for p in profiles}
    if options.require:
        _check_required(conn, options.require)
    conn.execute(sql("baseline-have"), {"hypervisor": target.hypervisor_checked})
    conn.execute(sql("baseline-common"), allow)
    conn.execute(
        sql("baseline-vocabulary"),
        {
            "qemu": release_number(target.qemu),
            "libvirt": release_number(target.libvirt) if target.libvirt else None,
            "libvirt_names": _map_feature_names(options.libvirt_map),
        },
    )
    held_back = conn.execute(sql("baseline-unnamed-common"), pmu).fetchall()
    config, extra = _config_names(conn, target, options.libvirt_map)
    conn.execute(
        sql("baseline-config"),
        {"models": [c[0] for c in config], "aliases": [c[1] for c in config], "definitions": [c[2] for c in config]},
    )
    proxmox_names = {c[0]: c[3] for c in config}
    conn.execute(
        sql("baseline-required-extra"),
        {"extra_model": [e[0] for e in extra], "extra_feature": [e[1] for e in extra]},
    )
    conn.execute(sql("baseline-status"))
    missing_hosts: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {}
    limit = None if options.detail else MAX_HOSTS_LISTED
    for model, feature, lacking in conn.execute(sql("baseline-missing-hosts")).fetchall():
        missing_hosts[(model, feature)] = _lacking_hosts(lacking, by_profile, limit)
    ranking = tuple(
        _ranked(row, missing_hosts, proxmox_names)
        for row in conn.execute(sql("baseline-ranking"), {"disable_missing": target.hypervisor_checked, **pmu}).fetchall()
    )
    common_rows = conn.execute(sql("baseline-common-features")).fetchall()
    from cpudb.analysis.risks import pool, pool_warnings
    from cpudb.store.fleet import common_flags

    common = common_flags(conn)
    facts = pool(conn)
    not_expressible = tuple(
        NotExpressible(*row) for row in conn.execute(sql("baseline-not-expressible"), allow).fetchall()
    )
    chosen = ranking[0] if ranking and ranking[0].usable else None
    recommended = _recommend(conn, chosen, target) if chosen else None
    guest = guest_features(conn, common.common, recommended, target, options) if recommended else None
    findings = pool_warnings(conn, facts, recommended, ranking, target, held_back, options.allow_guest_dumps)
    return Baseline(
        selection=selection_text.strip() or "all hosts",
        hosts=facts.hosts,
        total_hosts=facts.total,
        vendors=facts.vendors,
        common_flags=common.common,
        common_features=tuple(row[0] for row in common_rows),
        recommended=recommended,
        ranking=ranking,
        not_expressible=not_expressible,
        findings=tuple(findings),
        profiles=profiles,
        target=target,
        guest_features=guest,
        options=options,
        planned=facts.planned,
    )


def _check_required(conn: duckdb.DuckDBPyConnection, required: tuple[str, ...]) -> None:
    rows = conn.execute(sql("baseline-flag-hosts"), {"flags": list(required)}).fetchall()
    if rows:
        parts = []
        for flag, lacking in sorted(rows):
            shown = ", ".join(lacking[:10]) + (f" and {len(lacking) - 10} more" if len(lacking) > 10 else "")
            parts.append(f"{flag} is missing on {len(lacking)} host(s): {shown}")
        raise RequirementError("required flag(s) not on every selected host: " + "; ".join(parts))
    classes = dict(conn.execute(sql("flag-class-of"), {"flags": list(required)}).fetchall())
    unusable = [f"{flag} ({classes.get(flag, 'unknown')})" for flag in required if classes.get(flag) != "guest"]
    if unusable:
        raise RequirementError(
            f"required flag(s) that no guest CPU model can carry: {', '.join(unusable)} (see 'cpudb flag NAME')"
        )


def _lacking_hosts(profiles: list[int], by_profile: dict[int, Profile], limit: int | None) -> tuple[tuple[str, ...], int]:
    """The first ``limit`` hosts of these profiles (all with None), and how many there are in all."""
    names: list[str] = []
    for profile in profiles:
        if limit is not None and len(names) >= limit:
            break
        names.extend(by_profile[profile].hosts[: None if limit is None else limit - len(names)])
    return tuple(names), sum(by_profile[p].n_hosts for p in profiles)


def _ranked(row: tuple, missing_hosts: dict, proxmox_names: dict[str, str | None]) -> RankedModel:
    (model, alias, vendor, generic, age, missing, unverifiable, kvm_disabled, nested_disabled, extra,
     unnameable, _lacking_on_host, vendor_match, edits, usable) = row
    lacking = {feature: missing_hosts.get((model, feature), ((), 0)) for feature in missing}
    return RankedModel(
        model=model,
        alias=alias,
        proxmox_name=proxmox_names.get(model),
        vendor=vendor,
        generic=generic,
        usable=usable,
        missing={f: hosts for f, (hosts, _) in lacking.items()},
        missing_counts={f: count for f, (_, count) in lacking.items()},
        extra_flags=tuple(extra),
        kvm_disabled=tuple(kvm_disabled),
        nested_disabled=tuple(nested_disabled),
        unverifiable=tuple(unverifiable),
        unnameable=tuple(unnameable),
        vendor_match=bool(vendor_match),
        age=age,
        edits=edits,
    )


def _recommend(conn: duckdb.DuckDBPyConnection, chosen: RankedModel, target: Target) -> Recommendation:
    from cpudb.store.lookup import model_features

    final = (set(model_features(conn, chosen.model)) | set(chosen.extra_flags)) - set(chosen.disabled_flags)
    return Recommendation(
        model=chosen.model,
        model_alias=chosen.alias,
        proxmox_model=chosen.proxmox_name,
        extra_flags=chosen.extra_flags,
        disabled_flags=chosen.disabled_flags,
        missing=tuple(sorted(chosen.missing)),
        kvm_disabled=chosen.kvm_disabled,
        nested_disabled=chosen.nested_disabled,
        guest_flags=expected_guest_flags(conn, final),
        unverifiable=chosen.unverifiable,
        vendor=chosen.vendor,
        edits=chosen.edits,
        target=target,
    )


def expected_guest_flags(conn: duckdb.DuckDBPyConnection, features: set[str]) -> tuple[str, ...]:
    """The kernel flags a guest with these QEMU features shows.

    Direct names, plus the Linux summary flags computed from any of their bits (the guest kernel
    sets ibpb from Intel's spec-ctrl or AMD's ibpb alike); nested summaries (ept, vpid) only when
    the guest has vmx or svm. Guest markers, MSR-only and host-only features show nothing.
    """
    rows = conn.execute(sql("guest-flags"), {"features": sorted(features)}).fetchall()
    nested = bool({"vmx", "svm"} & features)
    return tuple(sorted({flag for flag, klass in rows if nested or klass != "nested"}))


def guest_features(
    conn: duckdb.DuckDBPyConnection, common: tuple[str, ...], rec: Recommendation, target: Target, options: Options
) -> GuestFeatures:
    """Guests get N of the M guest features (kernel flags of class guest) every host shows; for each
    one they lose, why."""
    from cpudb.catalog.families import family_of, security_first

    classes = dict(conn.execute(sql("flag-class-of"), {"flags": list(common)}).fetchall())
    pool_common = [f for f in common if classes.get(f) == "guest"]
    shown = set(rec.guest_flags)
    lost = security_first(f for f in pool_common if f not in shown)
    reasons = []
    if lost:
        behind = {}
        for flag, feature in conn.execute(sql("flag-sources"), {"flags": list(lost)}).fetchall():
            behind.setdefault(flag, []).append(feature)
        in_common = {f for (f,) in conn.execute(sql("baseline-common-list")).fetchall()}
        known = {f for (f,) in conn.execute(sql("baseline-known-list")).fetchall()}
        pmu = targets.rules().pmu_dependent
        for flag in lost:
            features = behind.get(flag, [])
            if not options.pmu and set(features) & pmu:
                why = "follows the guest's PMU: offered as an extra flag only with --pmu"
            elif not set(features) & in_common:
                why = "no CPUID bit behind it is on every host"
                if target.nova_compares_host_cpu:
                    why += " (Nova before 27 does not count the bits KVM provides)"
            elif not set(features) & known:
                why = f"{target.name} has no name for {', '.join(sorted(set(features) & in_common))}"
            else:
                why = "left out of the configuration"
            reasons.append((flag, why))
    return GuestFeatures(
        given=len(pool_common) - len(lost),
        pool_common=len(pool_common),
        lost=lost,
        lost_security=tuple(f for f in lost if family_of(f).security),
        why_lost=tuple(reasons),
    )


# --- configuration ---------------------------------------------------------------------------


