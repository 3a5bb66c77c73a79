"""The baseline decided by brute force, from the catalog files alone (no SQL), to check the SQL against.

It restates the rules of DOMAIN.md §4 and data/targets.yaml in plain Python: for every model
version the target knows, the extra flags (the pool's common guest features the model lacks) and
the disabled ones (model features some host lacks or KVM cannot give); the fewest edits win.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cpudb.catalog import dictionary as catalog
from cpudb.catalog import targets
from cpudb.catalog.dictionary import VENDOR_GROUPS, release_number
from cpudb.catalog.targets import Target
from cpudb.inputs.parse import HostDump
from cpudb.resources import data_path

CATALOG = catalog.current()
MODELS = {m.name: m for m in CATALOG.models}
FEATURES = {row[0]: row for row in CATALOG.feature_rows()}  # feature -> (feature, class, ..., libvirt_since)
FLAG_FEATURES: dict[str, list[tuple[str, str]]] = {}
for _flag, _vendor, _feature, _current in CATALOG.flag_features():
    FLAG_FEATURES.setdefault(_flag, []).append((_vendor, _feature))
KVM_RULES: dict[int, list[tuple]] = {}
for _rule, _vendor, _flag, _feature, _kind in catalog.kvm_given(CATALOG):
    KVM_RULES.setdefault(_rule, []).append((_vendor, _flag, _feature, _kind))
LIBVIRT_9_0 = json.loads(data_path("libvirt", "libvirt-9.0.json").read_text())
LIBVIRT_9_0_MODELS = {m["name"] for m in LIBVIRT_9_0["models"]}
LIBVIRT_9_0_FEATURES = {f["qemu"] for f in LIBVIRT_9_0["features"] if f["qemu"]}


def group_of(dump: HostDump) -> str:
    return VENDOR_GROUPS.get(dump.vendor or "", "unknown")


def have(dump: HostDump, target: Target, mixed: bool) -> set[str]:
    """What a host offers a guest under this target: its flags' features, proven hidden bits, and
    (where the target checks the hypervisor) what KVM emulates or, in mixed pools, derives."""
    group = group_of(dump)
    found = {f for flag in dump.flags for v, f in FLAG_FEATURES.get(flag, ()) if v in ("any", group)}
    for rows in KVM_RULES.values():
        vendor, _, feature, kind = rows[0]
        if vendor != group or not all(flag == "" or flag in dump.flags for _, flag, _, _ in rows):
            continue
        if kind == "hidden" or (target.hypervisor_checked and (kind == "emulated" or mixed)):
            found.add(feature)
    return found


def status(feature: str, dump: HostDump, found: set[str]) -> str:
    if feature in found:
        return "yes"
    row = FEATURES[feature]
    group = group_of(dump)
    visible = {"intel": row[7], "amd": row[8]}.get(group, row[7] and row[8])
    if not visible and row[6] in ("any", group):
        return "unknown"
    return "no"


def known(target: Target) -> set[str]:
    qemu = release_number(target.qemu)
    libvirt = release_number(target.libvirt) if target.libvirt else None
    first: dict[str, int] = {}
    for m in CATALOG.models:
        if m.origin == "qemu":
            for f in m.features:
                first[f] = min(first.get(f, 10**9), release_number(m.qemu_first) or 10**9)
    names = set()
    for feature, row in FEATURES.items():
        in_7_2, since = row[10], row[11]
        q = (feature in first and first[feature] <= qemu) or (in_7_2 and (feature not in first or first[feature] > 70200 or qemu >= 70200))
        lv = libvirt is None or (since is not None and since <= max(libvirt, 90000))
        if q and lv:
            names.add(feature)
    return names


@dataclass
class Judged:
    model: str
    name: str
    extra: set[str]
    disabled: set[str]
    usable: bool

    @property
    def edits(self) -> int:
        return len(self.extra) + len(self.disabled)


def candidates(target: Target) -> list[tuple[str, str, str]]:
    """(model, libvirt name, definition) the target can name."""
    rules = targets.rules()
    names_9_0 = {}
    for m in CATALOG.models:
        for alias in m.libvirt_9_0_names:
            names_9_0.setdefault(m.name, alias)
    proxmox = target.proxmox_models
    found = []
    for m in CATALOG.models:
        if m.origin != "qemu" or "lm" not in m.features or not m.qemu_first:
            continue
        if release_number(m.qemu_first) > release_number(target.qemu):
            continue
        if target.kubevirt_rule and rules.kubevirt_obsolete_model(m.family_name):
            continue
        if proxmox is not None and not ({m.name, *m.aliases} | ({m.family_name} if m.plain_alias else set())) & proxmox:
            continue
        libvirt_first = release_number(m.libvirt_first) if m.libvirt_first else None
        if target.libvirt is None:
            found.append((m.name, m.name, "none"))
        elif target.libvirt_versioned_names and libvirt_first and libvirt_first <= release_number(target.libvirt):
            found.append((m.name, m.name, "libvirt"))
        elif m.name in names_9_0:
            found.append((m.name, names_9_0[m.name], "libvirt-9.0"))
    return found


def judge_all(dumps: list[HostDump], target: Target, pmu: bool = False) -> tuple[list[Judged], set[str]]:
    """Every candidate judged against the pool, and C (the common guest features)."""
    mixed = len({group_of(d) for d in dumps}) > 1
    offers = [have(d, target, mixed) for d in dumps]
    common = set.intersection(*offers)
    common = {f for f in common if FEATURES[f][1] == "guest"}
    names = known(target)
    pmu_set = targets.rules().pmu_dependent
    judged = []
    for model, name, definition in candidates(target):
        entry = MODELS[model]
        by_qemu = set(entry.features)
        extra_def = {"libvirt": entry.libvirt_extra, "libvirt-9.0": entry.libvirt_9_0_extra}.get(definition) or ()
        disabled, lacking_on_host = set(), False
        for feature in by_qemu | set(extra_def):
            klass = FEATURES[feature][1]
            states = [status(feature, d, o) for d, o in zip(dumps, offers)]
            if klass == "guest-marker":
                continue
            off = ((feature in by_qemu and klass == "host-only")
                   or (feature in by_qemu and klass == "nested" and not all(s == "yes" for s in states))
                   or "no" in states)
            if not off:
                continue
            disabled.add(feature)
            lacking_on_host |= "no" in states
        extra = {f for f in common - by_qemu if f in names and (pmu or f not in pmu_set)}
        usable = disabled <= names and (target.hypervisor_checked or not lacking_on_host)
        judged.append(Judged(model, name, extra, disabled, usable))
    return judged, common


def safe_on_every_host(model: str, extra, disabled, dumps: list[HostDump], target: Target) -> str | None:
    """Why the configuration is not within some host's abilities, or None."""
    mixed = len({group_of(d) for d in dumps}) > 1
    final = (set(MODELS[model].features) | set(extra)) - set(disabled)
    for dump in dumps:
        offer = have(dump, target, mixed)
        for feature in final:
            if FEATURES[feature][1] == "guest-marker":
                continue
            if status(feature, dump, offer) == "no":
                return f"{model}: {feature} is not on {dump.host}"
    return None
