"""Choose the baseline: the QEMU CPU model and extra flags every selected host can run.

The set work runs in SQL (queries/baseline.sql) on profiles: distinct flag sets x vendor
group, so 100,000 hosts with 40 distinct flag sets cost what 40 hosts cost. This module
picks the names configs will use, runs the pipeline, and turns rows into results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cpudb import catalog
from cpudb.errors import CatalogError, RequirementError
from cpudb.lookup import model_features
from cpudb.queries import sql

if TYPE_CHECKING:
    import duckdb

# Lists of host names in results are capped; the counts are always complete.
MAX_HOSTS_LISTED = 20
NEAR_MISS_LIMIT = 3  # at most this many features disabled
LIBVIRT_VERSIONED = (10, 10, 0)  # first libvirt with -vN model names


@dataclass(frozen=True)
class Options:
    """What shapes a baseline beyond the host selection."""

    qemu: str | None = None
    libvirt: str | None = None
    libvirt_map: Path | None = None
    nova_release: str | None = None
    require: tuple[str, ...] = ()
    allow_unmigratable: bool = False

    def describe(self) -> list[str]:
        shown = []
        for name in ("qemu", "libvirt", "libvirt_map", "nova_release"):
            value = getattr(self, name)
            if value:
                shown.append(f"--{name.replace('_', '-')} {value}")
        if self.require:
            shown.append(f"--require {','.join(self.require)}")
        if self.allow_unmigratable:
            shown.append("--allow-unmigratable")
        return shown


@dataclass(frozen=True)
class RankedModel:
    """One candidate model version judged against the pool."""

    model: str
    alias: str  # the name configs use for it (versioned, or the older libvirt's name)
    vendor: str
    generic: bool
    origin: str
    base: str | None
    compatible: bool
    coverage: float
    missing: dict[str, tuple[str, ...]]  # feature -> hosts lacking it (capped list)
    missing_counts: dict[str, int]
    extra_flags: tuple[str, ...]
    kvm_disabled: tuple[str, ...]  # in the model, but KVM cannot give them: always turned off
    nested_disabled: tuple[str, ...]  # nested-virtualization features not on every host
    unverifiable: tuple[str, ...]  # lscpu cannot show them; assumed present, to check by hand
    vendor_match: bool
    missing_settable: bool
    age: int

    @property
    def near_miss(self) -> bool:
        return not self.compatible and self.missing_settable and len(self.missing) <= NEAR_MISS_LIMIT

    @property
    def disabled_flags(self) -> tuple[str, ...]:
        """Everything a config must turn off: missing features (near-misses) and the auto-disabled."""
        return tuple(sorted(set(self.missing) | set(self.kvm_disabled) | set(self.nested_disabled)))

    @property
    def libvirt_score(self) -> int:
        """libvirt's baseline cost: +1 per added feature, k+1 for the k-th disabled one."""
        disabled = len(self.missing) + len(self.nested_disabled)
        return len(self.extra_flags) + sum(k + 1 for k in range(1, disabled + 1))


@dataclass(frozen=True)
class Recommendation:
    model: str
    model_alias: str
    extra_flags: tuple[str, ...]  # QEMU names to add to model_alias (for Proxmox types: their own flags too)
    disabled_flags: tuple[str, ...]
    kvm_disabled: tuple[str, ...]
    nested_disabled: tuple[str, ...]
    guest_flags: tuple[str, ...]
    unverifiable: tuple[str, ...]
    coverage: float
    vendor: str


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
    findings: tuple  # risks.Finding: warnings with their severity
    profiles: tuple[Profile, ...]
    options: Options = field(default_factory=Options)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.findings)

    @property
    def risks(self) -> tuple[str, ...]:
        return tuple(f.text for f in self.findings if f.severity == "risk")

    @property
    def near_misses(self) -> tuple[RankedModel, ...]:
        found = [m for m in self.ranking if m.near_miss]
        return tuple(sorted(found, key=lambda m: (len(m.missing), -m.coverage, -m.age))[:5])


# --- the names a config will use -------------------------------------------------------------


def _config_names(conn: duckdb.DuckDBPyConnection, options: Options) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(model, name in configs, which libvirt definition applies) per candidate, and extra requirements.

    Candidates are 64-bit models the chosen QEMU offers; with --libvirt older than 10.10 a
    model is named by the variant or plain name libvirt 9.0 knows, and drops out without one.
    """
    rows = conn.execute(sql("candidate-models")).fetchall()
    names_9_0: dict[str, str] = {}
    for alias, model in conn.execute(sql("libvirt-9-0-names")).fetchall():
        names_9_0.setdefault(model, alias)
    qemu_limit = catalog.release_number(options.qemu) if options.qemu else None
    libvirt_limit = catalog.release_number(options.libvirt) if options.libvirt else None
    if options.libvirt_map:
        return _config_from_map(options.libvirt_map, rows, qemu_limit)
    config: list[tuple[str, str, str]] = []
    for model, origin, base, qemu_first, libvirt_first in rows:
        if qemu_limit is not None and (qemu_first is None or qemu_first > qemu_limit):
            continue
        target = base if origin == "proxmox" else model
        if libvirt_limit is None or (libvirt_first is not None and libvirt_first <= libvirt_limit):
            config.append((model, target, "libvirt"))
        elif target in names_9_0 or (origin == "proxmox" and base in names_9_0):
            config.append((model, names_9_0[target], "libvirt-9.0"))
    return config, []


def _config_from_map(path: Path, rows: list[tuple], qemu_limit: int | None) -> tuple[list, list]:
    """Candidates and libvirt's requirements from `cpudb catalog import-libvirt` output."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = [(m["name"], m["qemu_model"], m["extra"]) for m in document["models"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: not a libvirt map written by 'cpudb catalog import-libvirt' ({exc})") from None
    offered = {model: qemu_first for model, _, _, qemu_first, _ in rows}
    config, extra = [], []
    seen = set()
    for name, model, needs in entries:
        if not model or model not in offered or model in seen:
            continue
        if qemu_limit is not None and (offered[model] is None or offered[model] > qemu_limit):
            continue
        seen.add(model)
        config.append((model, name, "libvirt-map"))
        extra += [(model, feature) for feature in needs]
    return config, extra


def _vocabulary(options: Options) -> tuple[bool, list[str] | None, str]:
    """Which feature names the targeted QEMU and libvirt accept: (QEMU 7.2's only, libvirt's, label).

    QEMU 7.2's names come from the reference; libvirt's from --libvirt-map, or for a libvirt
    older than 10.10 from Debian 12's libvirt 9.0 (data/libvirt/libvirt-9.0.json).
    """
    qemu_7_2_only = bool(options.qemu) and catalog.release_tuple(options.qemu)[:2] <= (7, 2)
    labels = [f"QEMU {options.qemu}"] if qemu_7_2_only else []
    path = None
    if options.libvirt_map:
        path = options.libvirt_map
    elif options.libvirt and catalog.release_tuple(options.libvirt) < LIBVIRT_VERSIONED:
        from cpudb.resources import data_path

        path = data_path("libvirt", "libvirt-9.0.json")
    names = None
    if path is not None:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            names = sorted({f["qemu"] for f in document["features"] if f["qemu"]})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"{path}: not a libvirt map written by 'cpudb catalog import-libvirt' ({exc})") from None
        labels.append(f"libvirt {options.libvirt}" if options.libvirt else f"the libvirt of {path}")
    return qemu_7_2_only, names, " and ".join(labels)


# --- running it ------------------------------------------------------------------------------


def compute(conn: duckdb.DuckDBPyConnection, selection_text: str, options: Options = Options()) -> Baseline:
    """The baseline of the hosts in the temp table ``selected`` (see fleet.select)."""
    allow = {"allow_unmigratable": options.allow_unmigratable}
    conn.execute(sql("baseline-profiles"))
    profiles = tuple(
        Profile(p, v, tuple(h), n) for p, v, h, n in conn.execute(sql("baseline-profile-list")).fetchall()
    )
    by_profile = {p.profile: p for p in profiles}
    if options.require:
        _check_required(conn, options.require)
    conn.execute(sql("baseline-have"))
    conn.execute(sql("baseline-common"), allow)
    qemu_7_2_only, libvirt_names, vocabulary = _vocabulary(options)
    conn.execute(sql("baseline-vocabulary"), {"qemu_7_2_only": qemu_7_2_only, "libvirt_names": libvirt_names})
    unnamed = [f for (f,) in conn.execute(sql("baseline-unnamed-common")).fetchall()]
    config, extra = _config_names(conn, options)
    conn.execute(
        sql("baseline-config"),
        {"models": [c[0] for c in config], "aliases": [c[1] for c in config], "definitions": [c[2] for c in config]},
    )
    conn.execute(
        sql("baseline-required-extra"),
        {"extra_model": [e[0] for e in extra], "extra_feature": [e[1] for e in extra]},
    )
    conn.execute(sql("baseline-status"))
    missing_hosts: dict[tuple[str, str], tuple[tuple[str, ...], int]] = {}
    for model, feature, lacking in conn.execute(sql("baseline-missing-hosts")).fetchall():
        missing_hosts[(model, feature)] = _lacking_hosts(lacking, by_profile)
    ranking = tuple(_ranked(row, missing_hosts) for row in conn.execute(sql("baseline-ranking")).fetchall())
    common_rows = conn.execute(sql("baseline-common-features")).fetchall()
    from cpudb.fleet import common_flags
    from cpudb.risks import Finding, pool, pool_warnings

    common = common_flags(conn)
    facts = pool(conn)
    not_expressible = tuple(
        NotExpressible(*row) for row in conn.execute(sql("baseline-not-expressible"), allow).fetchall()
    )
    chosen = _choose(ranking, options)
    vendor_groups = sorted({p.vendor_group for p in profiles})
    recommended = _recommend(conn, chosen, vendor_groups) if chosen else None
    findings = pool_warnings(conn, facts, recommended, ranking, options)
    if unnamed:
        findings.append(
            Finding(
                "note",
                f"every host has {', '.join(unnamed)}, but {vocabulary} has no name for "
                f"{'it' if len(unnamed) == 1 else 'them'}: not offered as extra flags",
            )
        )
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
        options=options,
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


def _lacking_hosts(profiles: list[int], by_profile: dict[int, Profile]) -> tuple[tuple[str, ...], int]:
    """The first MAX_HOSTS_LISTED hosts of these profiles, and how many there are in all."""
    names: list[str] = []
    for profile in profiles:
        if len(names) >= MAX_HOSTS_LISTED:
            break
        names.extend(by_profile[profile].hosts[: MAX_HOSTS_LISTED - len(names)])
    return tuple(names), sum(by_profile[p].n_hosts for p in profiles)


def _ranked(row: tuple, missing_hosts: dict[tuple[str, str], tuple[tuple[str, ...], int]]) -> RankedModel:
    (model, alias, vendor, generic, age, origin, base, missing, unverifiable, kvm_disabled, nested_disabled,
     extra, coverage, compatible, missing_settable, vendor_match) = row
    lacking = {feature: missing_hosts.get((model, feature), ((), 0)) for feature in missing}
    return RankedModel(
        model=model,
        alias=alias,
        vendor=vendor,
        generic=generic,
        origin=origin,
        base=base,
        compatible=compatible,
        coverage=float(coverage),
        missing={f: hosts for f, (hosts, _) in lacking.items()},
        missing_counts={f: count for f, (_, count) in lacking.items()},
        extra_flags=tuple(extra),
        kvm_disabled=tuple(kvm_disabled),
        nested_disabled=tuple(nested_disabled),
        unverifiable=tuple(unverifiable),
        vendor_match=bool(vendor_match),
        missing_settable=missing_settable,
        age=age,
    )


def _choose(ranking: tuple[RankedModel, ...], options: Options) -> RankedModel | None:
    """The best compatible model the chosen Nova release can express."""
    from cpudb.emit import nova_can_disable

    for model in ranking:
        if not model.compatible:
            return None
        if model.nested_disabled and options.nova_release and not nova_can_disable(options.nova_release):
            continue  # would need '-flag' in cpu_model_extra_flags
        return model
    return None


def _recommend(conn: duckdb.DuckDBPyConnection, chosen: RankedModel, vendor_groups: list[str]) -> Recommendation:
    base_adds: tuple[str, ...] = ()
    if chosen.origin == "proxmox" and chosen.base:
        base_adds = tuple(sorted(set(model_features(conn, chosen.model)) - set(model_features(conn, chosen.base))))
    extra = tuple(sorted(set(chosen.extra_flags) | set(base_adds)))
    final = _final_features(conn, chosen, extra)
    return Recommendation(
        model=chosen.model,
        model_alias=chosen.alias,
        extra_flags=extra,
        disabled_flags=chosen.disabled_flags,
        kvm_disabled=chosen.kvm_disabled,
        nested_disabled=chosen.nested_disabled,
        guest_flags=expected_guest_flags(conn, final, vendor_groups),
        unverifiable=chosen.unverifiable,
        coverage=chosen.coverage,
        vendor=chosen.vendor,
    )


def _final_features(conn: duckdb.DuckDBPyConnection, chosen: RankedModel, extra: tuple[str, ...]) -> set[str]:
    return (set(model_features(conn, chosen.model)) | set(extra)) - set(chosen.disabled_flags)


def expected_guest_flags(conn: duckdb.DuckDBPyConnection, features: set[str], vendor_groups: list[str]) -> tuple[str, ...]:
    """The kernel flags a guest with these QEMU features shows, for every vendor group of the pool.

    Direct names, plus the Linux summary flags computed from them (ibpb from spec-ctrl on
    Intel, from ibpb on AMD); nested summaries (ept, vpid) only when the guest has vmx.
    Guest markers, MSR-only and host-only features show nothing.
    """
    rows = conn.execute(sql("guest-flags"), {"features": sorted(features)}).fetchall()
    groups = [g for g in vendor_groups if g in ("intel", "amd")] or ["intel", "amd"]
    expected = None
    for group in groups:
        shown = {flag for flag, vendor, klass in rows if vendor in ("any", group)}
        if "vmx" not in features and "svm" not in features:
            shown -= {flag for flag, _, klass in rows if klass == "nested"}
        expected = shown if expected is None else expected & shown
    return tuple(sorted(expected or ()))


# --- configuration ---------------------------------------------------------------------------


def config_input(conn: duckdb.DuckDBPyConnection, result: Baseline):
    """The plain data the emitters need for the recommendation, or None without one."""
    from cpudb.emit import ConfigInput

    rec = result.recommended
    if rec is None:
        return None
    ranked = next(m for m in result.ranking if m.model == rec.model)
    names = sorted(set(rec.extra_flags) | set(rec.disabled_flags))
    spelling = dict(conn.execute(sql("feature-spellings"), {"features": names}).fetchall())
    qemu_model = ranked.base if ranked.origin == "proxmox" and ranked.base else rec.model
    removed = tuple(sorted(set(ranked.missing) | set(ranked.nested_disabled)))
    return ConfigInput(
        model=rec.model,
        model_alias=rec.model_alias,
        qemu_model=qemu_model,
        proxmox_model=_short_name(conn, qemu_model),
        add=tuple((f, spelling.get(f, f)) for f in rec.extra_flags),
        remove=tuple((f, spelling.get(f, f)) for f in removed),
        kvm_dropped=tuple((f, spelling.get(f, f)) for f in rec.kvm_disabled),
        pool=result.selection,
        nova_release=result.options.nova_release,
    )


def _short_name(conn: duckdb.DuckDBPyConnection, model: str) -> str:
    """The variant or plain QEMU name of a version when it has one (Proxmox lists those)."""
    aliases = conn.execute(sql("model-aliases"), {"model": model}).fetchall()
    for wanted in ("qemu", "plain"):
        for alias, kind in aliases:
            if kind == wanted:
                return alias
    return model


def configs(conn: duckdb.DuckDBPyConnection, result: Baseline) -> dict[str, str] | None:
    """All five configurations as text, keyed as in the JSON output."""
    from cpudb.emit import all_configs

    config = config_input(conn, result)
    return all_configs(config) if config else None
