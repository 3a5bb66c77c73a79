"""Target stacks (data/targets.yaml) and the platform rules every stage asks about.

A target says which QEMU, libvirt, Nova, Proxmox VE and KubeVirt a configuration is made for.
The rules that depend on them (which Nova release can disable a flag, which libvirt knows -vN
names, which models KubeVirt calls obsolete, which features need a guest PMU) live here, next
to the data they read, and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache

from cpudb.errors import CatalogError, CpudbError
from cpudb.resources import data_path, data_yaml

# Nova release names -> major version (Nova 20 is Train).
NOVA_RELEASES = {
    "queens": 17, "rocky": 18, "stein": 19, "train": 20, "ussuri": 21, "victoria": 22, "wallaby": 23,
    "xena": 24, "yoga": 25, "zed": 26, "antelope": 27, "2023.1": 27, "bobcat": 28, "2023.2": 28,
    "caracal": 29, "2024.1": 29, "dalmatian": 30, "2024.2": 30, "epoxy": 31, "2025.1": 31,
    "flamingo": 32, "2025.2": 32, "gazpacho": 33, "2026.1": 33,
}
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")


def version_tuple(text: str, what: str = "release") -> tuple[int, int, int]:
    """``"7.2"`` -> (7, 2, 0), for comparing QEMU, libvirt and Nova versions."""
    text = str(text).strip()
    if not _VERSION.match(text):
        raise CpudbError(f"{text!r} is not a {what} number such as 7.2 or 9.0.0")
    parts = [int(p) for p in text.split(".")]
    return tuple((parts + [0, 0])[:3])  # type: ignore[return-value]


def nova_version(release: str) -> tuple[int, int, int]:
    """A Nova release name (train, 2024.1) or version (26.2.1) as a version tuple."""
    key = str(release).strip().lower()
    if key in NOVA_RELEASES:
        return (NOVA_RELEASES[key], 0, 0)
    if _VERSION.match(key) and 10 <= int(key.split(".")[0]) <= 60:
        return version_tuple(key, "Nova release")
    known = ", ".join(name for name in NOVA_RELEASES if not name[0].isdigit())
    raise CpudbError(f"unknown Nova release {release!r} (a name such as {known}, 2024.1, or a version such as 23.0.0)")


def shown(version: tuple[int, int, int]) -> str:
    return ".".join(str(p) for p in version)


@dataclass(frozen=True)
class Rules:
    """What each platform accepts, with where that was read (data/targets.yaml ``rules``)."""

    floor_qemu: str
    floor_libvirt: str
    nova_models_list_since: tuple[int, int, int]
    nova_disable_since: tuple[int, int, int]
    nova_hypervisor_compare_since: tuple[int, int, int]
    nova_hypervisor_compare_backports: tuple[tuple[int, int, int], ...]
    libvirt_versioned_since: tuple[int, int, int]
    libvirt_check: str
    kubevirt_obsolete: frozenset[str]
    pmu_dependent: frozenset[str]
    sources: dict[str, str] = field(compare=False)

    def nova_compares_host_cpu(self, nova: tuple[int, int, int]) -> bool:
        """Whether this Nova checks the bare model and each flag against the host's own CPU at start-up."""
        if nova >= self.nova_hypervisor_compare_since:
            return False
        return not any(nova >= b and nova[0] == b[0] for b in self.nova_hypervisor_compare_backports)

    def kubevirt_obsolete_model(self, family_name: str) -> bool:
        return family_name in self.kubevirt_obsolete


@dataclass(frozen=True)
class Target:
    """One stack a configuration is made for; every component is a version or None (not part of it)."""

    name: str
    description: str
    qemu: str
    libvirt: str | None  # None: the stack has no libvirt (Proxmox VE)
    nova: str | None = None
    proxmox: str | None = None
    proxmox_models: frozenset[str] | None = None
    kubevirt: str | None = None
    kubevirt_rule: bool = False  # never choose a model KubeVirt calls obsolete
    confidence: str = "high"
    notes: tuple[str, ...] = ()  # where components came from when not from the row itself

    @property
    def qemu_version(self) -> tuple[int, int, int]:
        return version_tuple(self.qemu, "QEMU release")

    @property
    def libvirt_version(self) -> tuple[int, int, int] | None:
        return version_tuple(self.libvirt, "libvirt release") if self.libvirt else None

    @property
    def nova_version(self) -> tuple[int, int, int] | None:
        return nova_version(self.nova) if self.nova else None

    @property
    def libvirt_versioned_names(self) -> bool:
        return self.libvirt_version is None or self.libvirt_version >= rules().libvirt_versioned_since

    @property
    def nova_compares_host_cpu(self) -> bool:
        """Nova before 27 (and 26.2.1): model and flags must be on each host's own CPU, flags can't be KVM's."""
        return self.nova_version is not None and rules().nova_compares_host_cpu(self.nova_version)

    @property
    def nova_can_disable(self) -> bool:
        """Whether cpu_model_extra_flags takes '-flag' (Wallaby and later, or a Nova not in the target)."""
        return self.nova_version is None or self.nova_version >= rules().nova_disable_since

    @property
    def hypervisor_checked(self) -> bool:
        """Whether every consumer checks against what KVM can give (not the bare host CPU)."""
        return not self.nova_compares_host_cpu

    @property
    def components(self) -> tuple[tuple[str, str], ...]:
        """(component, version) for the parts this target binds, for headers and the report."""
        parts = [("QEMU", self.qemu)] + ([("libvirt", self.libvirt)] if self.libvirt else [])
        if self.nova:
            parts.append(("Nova", self.nova))
        if self.proxmox:
            parts.append(("Proxmox VE", self.proxmox))
        if self.kubevirt:
            parts.append(("KubeVirt", self.kubevirt))
        return tuple(parts)

    @property
    def label(self) -> str:
        """'debian-12 (QEMU 7.2, libvirt 9.0)': what a config header names."""
        return f"{self.name} ({', '.join(f'{c} {v}' for c, v in self.components)})"

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "qemu": self.qemu,
            "libvirt": self.libvirt,
            "nova": self.nova,
            "proxmox": self.proxmox,
            "kubevirt": self.kubevirt,
            "confidence": self.confidence,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class HostStack:
    """Version facts collected on the selected hosts (cpudb collect's header lines)."""

    qemu: tuple[tuple[str, str], ...] = ()  # (version, first host with it)
    libvirt: tuple[tuple[str, str], ...] = ()
    nova: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.qemu or self.libvirt or self.nova)


# --- loading -----------------------------------------------------------------------------------

_ROW_KEYS = {"name", "description", "qemu", "libvirt", "nova", "proxmox", "proxmox_models", "kubevirt",
             "evidence", "confidence"}


@cache
def _document() -> dict:
    path = data_path("targets.yaml")
    document = data_yaml("targets.yaml")
    if not isinstance(document, dict) or set(document) != {"floor", "rules", "targets"}:
        raise CatalogError(f"{path}: expected exactly the keys floor, rules and targets")
    return document


@cache
def rules() -> Rules:
    document = _document()
    path = data_path("targets.yaml")
    try:
        r = document["rules"]
        nova, libvirt, kubevirt, pmu = r["nova"], r["libvirt"], r["kubevirt"], r["pmu"]
        return Rules(
            floor_qemu=str(document["floor"]["qemu"]),
            floor_libvirt=str(document["floor"]["libvirt"]),
            nova_models_list_since=version_tuple(nova["models_list_since"]),
            nova_disable_since=version_tuple(nova["disable_since"]),
            nova_hypervisor_compare_since=version_tuple(nova["hypervisor_compare_since"]),
            nova_hypervisor_compare_backports=tuple(version_tuple(v) for v in nova["hypervisor_compare_backports"]),
            libvirt_versioned_since=version_tuple(libvirt["versioned_names_since"]),
            libvirt_check=str(libvirt["check"]),
            kubevirt_obsolete=frozenset(str(m) for m in kubevirt["obsolete_models"]),
            pmu_dependent=frozenset(str(f) for f in pmu["dependent"]),
            sources={name: " ".join(str(r[name]["source"]).split()) for name in ("nova", "libvirt", "kubevirt", "pmu")},
        )
    except (KeyError, TypeError, CpudbError) as exc:
        raise CatalogError(f"{path}: malformed rules ({exc})") from None


@cache
def listed() -> tuple[Target, ...]:
    """Every target row, in file order."""
    path = data_path("targets.yaml")
    floor = rules()
    found = []
    for number, row in enumerate(_document()["targets"], 1):
        if not isinstance(row, dict) or set(row) - _ROW_KEYS or not {"name", "description", "evidence"} <= set(row):
            raise CatalogError(f"{path}: target {number}: needs name, description and evidence, and no other keys "
                               f"than {', '.join(sorted(_ROW_KEYS))}")
        evidence = row["evidence"]
        bound = [key for key in ("qemu", "libvirt", "nova", "proxmox", "kubevirt") if row.get(key) is not None]
        if not isinstance(evidence, dict) or set(evidence) - set(bound) or not set(bound) <= set(evidence):
            raise CatalogError(f"{path}: target {row['name']}: evidence must name a source for each of {', '.join(bound)}")
        notes = tuple(f"{c} not part of this target: the floor, {v}" for c, v, key in
                      (("QEMU", floor.floor_qemu, "qemu"), ("libvirt", floor.floor_libvirt, "libvirt")) if key not in row)
        try:
            target = Target(
                name=str(row["name"]),
                description=str(row["description"]),
                qemu=str(row.get("qemu", floor.floor_qemu)),
                libvirt=(str(row["libvirt"]) if row["libvirt"] is not None else None) if "libvirt" in row
                else floor.floor_libvirt,
                nova=str(row["nova"]) if "nova" in row else None,
                proxmox=str(row["proxmox"]) if "proxmox" in row else None,
                proxmox_models=frozenset(str(m) for m in row["proxmox_models"]) if "proxmox_models" in row else None,
                kubevirt=str(row["kubevirt"]) if "kubevirt" in row else None,
                kubevirt_rule="kubevirt" in row,
                confidence=str(row.get("confidence", "high")),
                notes=notes,
            )
            target.qemu_version, target.libvirt_version, target.nova_version  # noqa: B018 - validate now
        except CpudbError as exc:
            raise CatalogError(f"{path}: target {row.get('name')}: {exc}") from None
        if (target.proxmox is None) != (target.proxmox_models is None):
            raise CatalogError(f"{path}: target {target.name}: proxmox and proxmox_models go together")
        found.append(target)
    names = [t.name for t in found]
    if len(set(names)) != len(names):
        raise CatalogError(f"{path}: a target name is listed twice")
    return tuple(found)


def evidence(name: str) -> dict[str, str]:
    """The evidence of one target row, per component."""
    for row in _document()["targets"]:
        if row["name"] == name:
            return {k: " ".join(str(v).split()) for k, v in row["evidence"].items()}
    return {}


@cache
def portable() -> Target:
    """The default: names every listed stack knows (the oldest QEMU and libvirt, every Proxmox list,
    KubeVirt's obsolete models avoided). Nova is not bound: its config says which Nova it needs."""
    floor = rules()
    proxmox = [t for t in listed() if t.proxmox_models is not None]
    models = frozenset.intersection(*(t.proxmox_models for t in proxmox)) if proxmox else None
    return Target(
        name="portable",
        description="names every listed stack knows",
        qemu=floor.floor_qemu,
        libvirt=floor.floor_libvirt,
        proxmox=min((t.proxmox for t in proxmox), key=lambda v: version_tuple(v)) if proxmox else None,
        proxmox_models=models,
        kubevirt_rule=True,
        notes=("the default: no --target given and no versions collected on the hosts",),
    )


def named(name: str) -> Target:
    wanted = name.strip().lower()
    if wanted == "portable":
        return portable()
    for target in listed():
        if target.name == wanted:
            return target
    import difflib

    names = [t.name for t in listed()] + ["portable"]
    close = difflib.get_close_matches(wanted, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (known: {', '.join(names)})"
    raise CpudbError(f"unknown target {name!r}{hint}")


def from_hosts(facts: HostStack) -> Target:
    """The oldest stack among the selected hosts' collected versions; components they lack take
    the portable default's."""
    base = portable()
    notes = []
    values = {}
    for component, label, pairs in (("qemu", "QEMU", facts.qemu), ("libvirt", "libvirt", facts.libvirt),
                                    ("nova", "Nova", facts.nova)):
        if not pairs:
            continue
        parse = nova_version if component == "nova" else version_tuple
        version, host = min(pairs, key=lambda p: parse(p[0]))
        values[component] = version
        notes.append(f"{label} {version}: the oldest collected, on {host}")
    return replace(base, name="selection", description="the oldest stack collected on the selected hosts",
                   notes=tuple(notes), **values)


def resolve(
    name: str | None = None,
    qemu: str | None = None,
    libvirt: str | None = None,
    nova: str | None = None,
    facts: HostStack | None = None,
) -> Target:
    """The target of a run: --target, else the hosts' collected versions, else portable; then the
    --qemu/--libvirt/--nova-release overrides."""
    for value, what in ((qemu, "QEMU release"), (libvirt, "libvirt release")):
        if value:
            version_tuple(value, what)
    if nova:
        nova_version(nova)
    if name:
        target = named(name)
    elif facts is not None and not facts.empty:
        target = from_hosts(facts)
    else:
        target = portable()
    overrides = {k: v for k, v in (("qemu", qemu), ("libvirt", libvirt), ("nova", nova)) if v}
    if not overrides:
        return target
    flags = " ".join(f"--{'nova-release' if k == 'nova' else k} {v}" for k, v in overrides.items())
    return replace(target, notes=target.notes + (f"overridden by {flags}",), **overrides)


def nova_needs(disables: Sequence[str], kvm_provided: Sequence[str], drops: bool) -> tuple[tuple[int, int, int], str]:
    """The oldest Nova that starts a configuration, and why: one that ``disables`` features some
    host lacks (libvirt names) or adds features KVM provides beyond a host's own CPU needs Nova's
    hypervisor comparison; one that ``drops`` model features KVM cannot give must write '-flag'."""
    rules_now = rules()
    if disables or kvm_provided:
        why = []
        if disables:
            why.append(f"it disables {', '.join(disables)}, which some host lacks")
        if kvm_provided:
            why.append(f"KVM, not every host's CPU, provides {', '.join(kvm_provided)}")
        backports = "".join(f" or {shown(b)}" for b in rules_now.nova_hypervisor_compare_backports)
        return rules_now.nova_hypervisor_compare_since, (
            f"{shown(rules_now.nova_hypervisor_compare_since)}{backports}: " + "; ".join(why)
        )
    if drops:
        return rules_now.nova_disable_since, f"{shown(rules_now.nova_disable_since)} to write '-flag' (older Nova: leave them out)"
    return rules_now.nova_models_list_since, f"{shown(rules_now.nova_models_list_since)}"
