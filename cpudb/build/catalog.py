"""Generate data/flags.json and data/models.json from the reference tables (``cpudb catalog build``).

The flag dictionary joins Linux, QEMU and libvirt names on the CPUID/MSR location of each
feature, then classifies every entry by rules, and finally applies the hand-curated
overrides in data/flag_overrides.yaml (each with its reason). The model catalog resolves
every QEMU model version with its aliases, first releases and the names libvirt 9.0 uses.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cpudb.build.common import GENERATED_BY, write_json
from cpudb.catalog.cpuid import Location
from cpudb.catalog.dictionary import CLASSES
from cpudb.catalog.libvirt_map import read_cpu_map
from cpudb.errors import CatalogError

FLAGS_FILE = "flags.json"
MODELS_FILE = "models.json"
# Features a model may name that describe the host running QEMU rather than the CPU; the
# comparison with real QEMU ignores them (TCG turns vme off).
_AMD_LEAVES = (0x80000008, 0x80000021)


@dataclass
class _Entry:
    location: Location
    kernel: str = ""
    legacy: list[str] = field(default_factory=list)
    qemu: str = ""
    qemu_aliases: list[str] = field(default_factory=list)
    libvirt: str = ""
    description: str = ""
    kvm: str = ""
    kvm_note: str = ""
    feature_word: str = ""
    qemu_unmigratable: bool = False
    libvirt_unmigratable: bool = False
    derived: list[dict[str, str]] = field(default_factory=list)
    linux_from: list[str] = field(default_factory=list)  # QEMU features Linux computes this flag from
    klass: str = ""
    reason: str = ""
    in_qemu_7_2: bool | None = None
    libvirt_since: str | None = None  # first libvirt release known to name it (see _libvirt_releases)

    def names(self) -> set[str]:
        return {n for n in (self.kernel, self.qemu, self.libvirt, *self.legacy, *self.qemu_aliases) if n}

    def as_json(self) -> dict:
        return {
            "id": self.location.key,
            "kernel": self.kernel,
            "legacy": sorted(set(self.legacy)),
            "qemu": self.qemu,
            "qemu_aliases": sorted(set(self.qemu_aliases)),
            "libvirt": self.libvirt,
            "location": self.location.describe(),
            "class": self.klass,
            "reason": self.reason,
            "description": self.description,
            "kvm": self.kvm,
            "derived": self.derived,
            "linux_from": sorted(set(self.linux_from)),
            "in_qemu_7_2": self.in_qemu_7_2 if self.qemu else None,
            "libvirt_since": self.libvirt_since,
        }


def _tsv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


# --- the flag dictionary ---------------------------------------------------------------------


def build_flags(reference: Path, overrides_path: Path) -> list[dict]:
    tables = reference / "tables"
    entries: dict[Location, _Entry] = {}

    def entry(location: Location) -> _Entry:
        return entries.setdefault(location, _Entry(location))

    for row in _tsv(tables / "qemu_features.tsv"):
        if row["type"] == "msr":
            location = Location.msr(row["cpuid_leaf_or_msr"], row["bit"])
        else:
            location = Location.cpuid(row["cpuid_leaf_or_msr"], row["subleaf"], row["register"], row["bit"])
        item = entry(location)
        item.qemu = row["qemu_name"]
        item.qemu_aliases += _names(row["aliases"]) + _names(row["underscore_form"])
        item.feature_word = row["feature_word"]
        item.qemu_unmigratable = row["unmigratable"] == "yes"
        item.description = item.description or row["qemu_comment"]

    for row in _tsv(tables / "kernel_flags.tsv"):
        name = row["cpuinfo_name"]
        if row["cpuid_leaf"] == "linux":
            location = Location.linux(name)
        else:
            location = Location.cpuid(row["cpuid_leaf"], row["subleaf"], row["register"], row["cpuid_bit"])
        item = entry(location)
        if row["shown_in_cpuinfo"] == "yes":
            item.kernel = name
        else:
            # Hidden by the current kernel; older kernels printed some of these (RHEL 7: spec_ctrl).
            item.legacy.append(name)
        item.description = row["comment"] or item.description

    libvirt = read_cpu_map(reference / "libvirt-cpu_map")
    for feature in libvirt.features.values():
        item = entry(feature.location)
        item.libvirt = feature.name
        item.libvirt_unmigratable = not feature.migratable

    for row in _tsv(tables / "kvm_supported.tsv"):
        location = Location.cpuid(row["leaf"], row["subleaf"], row["register"], row["bit"])
        if location in entries:
            entries[location].kvm = row["kvm_support"]
            entries[location].kvm_note = row["note"]

    by_qemu = {e.qemu: e for e in entries.values() if e.qemu}
    by_kernel = {e.kernel: e for e in entries.values() if e.kernel}
    for row in _tsv(tables / "kernel_to_qemu.tsv"):
        if row["match"] != "derived":
            continue
        target = by_qemu[row["qemu_name"]]
        owner = by_kernel.get(row["cpuinfo_name"]) or entry(Location.linux(row["cpuinfo_name"]))
        owner.derived.append({"vendor": _native_vendor(target.location), "feature": target.qemu})
        owner.linux_from.append(target.qemu)

    known_7_2 = _qemu_7_2_names(reference)
    if known_7_2 is not None:
        for item in entries.values():
            item.in_qemu_7_2 = bool({item.qemu, *item.qemu_aliases} & known_7_2)
    _apply_overrides(entries, overrides_path)
    derived_targets = {d["feature"] for e in entries.values() for d in e.derived}
    for item in entries.values():
        if not item.klass:
            item.klass, item.reason = _classify(item, by_qemu, derived_targets)
    return [entries[key].as_json() for key in sorted(entries, key=lambda loc: loc.key)]


def _libvirt_releases(flags: list[dict], models: list[dict], libvirt_9_0: set[str]) -> None:
    """Set each feature's ``libvirt_since``: 9.0.0 when Debian 12's libvirt 9.0 names it (taken to
    hold for the older libvirt of the floor too: no x86 feature of 9.0 is new in it), else the
    first libvirt offering a model version that contains it, else None (no dated evidence)."""
    first: dict[str, tuple[int, ...]] = {}
    for model in models:
        if model["origin"] != "qemu" or not model["libvirt_first"]:
            continue
        release = tuple(int(p) for p in model["libvirt_first"].split("."))
        for feature in model["features"]:
            first[feature] = min(first.get(feature, release), release)
    for entry in flags:
        if not entry["qemu"]:
            continue
        if entry["qemu"] in libvirt_9_0:
            entry["libvirt_since"] = "9.0.0"
        elif entry["qemu"] in first:
            entry["libvirt_since"] = ".".join(str(p) for p in first[entry["qemu"]])


def _qemu_7_2_names(reference: Path) -> set[str] | None:
    """The feature names QEMU 7.2 accepts (its `-cpu help`), to keep older QEMUs' configs valid."""
    path = reference / "qemu-7.2" / "cpu-help.txt"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return set(text.split("Recognized CPUID flags:", 1)[1].split())


def _native_vendor(location: Location) -> str:
    """The vendor whose CPUs define this bit, for the Linux summary flags derived from it."""
    if location.kind == "cpuid" and location.leaf in _AMD_LEAVES:
        return "amd"
    if location.kind == "msr" or (location.kind == "cpuid" and location.leaf == 7 and location.register == "EDX"):
        return "intel"
    return "any"


def _classify(item: _Entry, by_qemu: dict[str, _Entry], derived_targets: set[str]) -> tuple[str, str]:
    loc = item.location
    if loc.kind == "linux":
        if item.derived:
            targets = ", ".join(f"{d['feature']} ({d['vendor']})" for d in item.derived)
            if any(d["feature"].startswith("vmx-") for d in item.derived):
                return "nested", f"Linux summary of VMX capabilities ({targets}); only meaningful with nested VMX."
            classes = {
                by_qemu[d["feature"]].klass or _classify(by_qemu[d["feature"]], by_qemu, derived_targets)[0]
                for d in item.derived
            }
            klass = "guest" if "guest" in classes else sorted(classes)[0]
            return klass, f"Linux summary flag set from {targets}."
        return "synthetic", "Linux-defined flag with no CPUID bit; never part of a guest CPU model."
    if loc.kind == "msr":
        if item.qemu.startswith("vmx-"):
            return "msr-only", "VMX capability MSR bit: applies to nested VMX only and no lscpu shows it."
        if item.qemu in derived_targets:
            return "guest", f"Bit of {loc.describe()}; lscpu shows it only through a Linux summary flag."
        return "msr-only", f"Bit of {loc.describe()}: no lscpu shows it; check it with virsh domcapabilities."
    if not item.qemu:
        return "host-only", "QEMU has no name for this CPUID bit, so no guest CPU model or extra flag can carry it."
    if item.feature_word in ("FEAT_KVM", "FEAT_KVM_HINTS"):
        return "msr-only", "KVM paravirtual feature (CPUID 0x40000001): provided by KVM itself, never shown by lscpu."
    if item.feature_word == "FEAT_SVM":
        return "nested", "AMD SVM capability offered to nested guests only (kvm_amd nested=1)."
    if item.qemu_unmigratable or item.libvirt_unmigratable:
        return "unmigratable", "Marked unmigratable by QEMU or libvirt: it blocks live migration."
    if item.kvm == "not-supported":
        return "host-only", f"KVM does not give it to guests ({item.kvm_note.split(';')[0]})."
    return "guest", "CPUID feature QEMU can set and KVM passes to guests when the host has it."


def _apply_overrides(entries: dict[Location, _Entry], path: Path) -> None:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: cannot read the overrides ({str(exc).splitlines()[0]})") from None
    for number, override in enumerate(document.get("overrides", []), 1):
        unknown = set(override) - {"kernel", "qemu", "libvirt", "class", "reason", "derived", "legacy_of", "description"}
        if unknown or not override.get("reason"):
            raise CatalogError(f"{path}: override {number}: unknown keys {sorted(unknown)} or no reason")
        if override.get("class") and override["class"] not in CLASSES:
            raise CatalogError(f"{path}: override {number}: unknown class {override['class']!r}")
        target = _find(entries, override)
        if "legacy_of" in override:
            owner = _find(entries, override["legacy_of"])
            if owner is None:
                raise CatalogError(f"{path}: override {number}: legacy_of names no entry")
            owner.legacy.append(override["kernel"])
            continue
        if target is None:
            if "kernel" not in override or override.get("class") != "synthetic":
                raise CatalogError(f"{path}: override {number}: no entry named {override}")
            # A Linux-defined name from an older kernel, unknown to the current tables.
            target = entries.setdefault(Location.linux(override["kernel"]), _Entry(Location.linux(override["kernel"])))
            target.legacy.append(override["kernel"])
        target.klass = override.get("class", target.klass)
        target.reason = override["reason"].strip()
        if "derived" in override:
            target.derived = [{"vendor": d["vendor"], "feature": d["feature"]} for d in override["derived"]]
        if "description" in override:
            target.description = override["description"]


def _find(entries: dict[Location, _Entry], names: dict) -> _Entry | None:
    for key in ("qemu", "kernel", "libvirt"):
        if key in names:
            wanted = names[key]
            for item in entries.values():
                if (key == "qemu" and (item.qemu == wanted or wanted in item.qemu_aliases)) or (
                    key == "kernel" and (item.kernel == wanted or wanted in item.legacy)
                ) or (key == "libvirt" and item.libvirt == wanted):
                    return item
    return None


# --- the model catalog -----------------------------------------------------------------------


def build_models(reference: Path, flags: list[dict], proxmox_path: Path) -> list[dict]:
    tables = reference / "tables"
    features: dict[str, list[str]] = {}
    for row in _tsv(tables / "models.tsv"):
        if row["named"] == "yes" and row["qemu_feature"]:
            features.setdefault(row["versioned_name"], []).append(row["qemu_feature"])
    history = {row["versioned_name"]: row for row in _tsv(tables / "model_history.tsv")}
    to_qemu = {e["libvirt"]: e["qemu"] for e in flags if e["libvirt"] and e["qemu"]}
    current = read_cpu_map(reference / "libvirt-cpu_map").models
    libvirt9 = _libvirt9_models(reference)
    models: list[dict] = []
    for row in _tsv(tables / "models-meta.tsv"):
        name = row["versioned_name"]
        past = history.get(name, {})
        own = sorted(set(features.get(name, [])))
        aliases = _names(row["alias"]) + ([row["model"]] if row["version"] == "1" else [])
        names_9_0 = [alias for alias in aliases if alias in libvirt9]
        models.append(
            {
                "name": name,
                "family_name": row["model"],
                "version": int(row["version"]),
                "aliases": _names(row["alias"]),
                "plain_alias": row["version"] == "1",
                "vendor": row["vendor"],
                "family": int(row["family"]),
                "model": int(row["model_number"]),
                "stepping": int(row["stepping"]),
                "model_id": row["model_id"],
                "features": own,
                "qemu_first": past.get("qemu_first_release") or None,
                "libvirt_first": _release(past.get("libvirt_first_release")),
                "libvirt_first_range": past.get("libvirt_release_range", ""),
                "libvirt_extra": _extra(current[name].features, own, to_qemu) if name in current else None,
                "libvirt_9_0_names": names_9_0,
                "libvirt_9_0_extra": _extra(libvirt9[names_9_0[0]], own, to_qemu) if names_9_0 else None,
                "origin": "qemu",
                "base": None,
                "note": row["note"],
            }
        )
    models += _proxmox_models(proxmox_path, {m["name"]: m for m in models})
    return models


def _release(text: str | None) -> str | None:
    return text if text and text[0].isdigit() else None


def _libvirt9_models(reference: Path) -> dict[str, frozenset[str]]:
    """libvirt 9.0's models (Debian 12) with their features in libvirt spelling."""
    path = reference / "qemu-7.2" / "libvirt-9.0-cpu_map-models.json"
    if not path.is_file():
        return {}
    return {name: frozenset(model["features"]) for name, model in json.loads(path.read_text(encoding="utf-8")).items()}


def _extra(libvirt_features: frozenset[str], qemu_features: list[str], to_qemu: dict[str, str]) -> list[str]:
    """Features libvirt's definition of a model requires beyond QEMU's (libvirt checks hosts against its own).

    VMX capabilities are left out: libvirt and QEMU number a few of them differently and
    they only matter for nested VMX.
    """
    own = set(qemu_features)
    return sorted(
        to_qemu.get(f, f) for f in libvirt_features if not f.startswith("vmx-") and to_qemu.get(f, f) not in own
    )


def _proxmox_models(path: Path, qemu_models: dict[str, dict]) -> list[dict]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    result = []
    for name, spec in document["models"].items():
        base = qemu_models[spec["base"]]
        result.append(
            {
                **base,
                "name": name,
                "family_name": name,
                "version": 1,
                "aliases": [],
                "plain_alias": False,
                "vendor": "generic",
                "model_id": base["model_id"],
                "features": sorted(set(base["features"]) | set(spec["add"])),
                "libvirt_first": None,
                "libvirt_first_range": "",
                "libvirt_extra": None,
                "libvirt_9_0_names": [],
                "libvirt_9_0_extra": None,
                "origin": "proxmox",
                "base": spec["base"],
                "note": f"Proxmox VE built-in type: {spec['base']} + {','.join(spec['add'])} ({document['source']})",
            }
        )
    return result


# --- writing ---------------------------------------------------------------------------------


LIBVIRT_CURRENT_FILE = "libvirt-current.json"
CURRENT_LIBVIRT_LABEL = "libvirt src/cpu_map, late 2025 development (shared reference)"


def build(reference: Path, data_dir: Path, fixtures: Path | None = None) -> tuple[int, int, int]:
    """Regenerate flags.json, models.json and reference_cpus/references.json in ``data_dir``.

    Returns (dictionary entries, model versions, reference CPUs built).
    """
    from cpudb.build.references import write_references
    from cpudb.catalog.dictionary import import_libvirt, read_catalog

    reference = Path(reference)
    if not (reference / "tables" / "kernel_flags.tsv").is_file():
        raise CatalogError(f"{reference}: not a reference folder (no tables/kernel_flags.tsv)")
    fixtures = Path(fixtures) if fixtures else reference.parent / "fixtures" / "lscpu"
    flags = build_flags(reference, data_dir / "flag_overrides.yaml")
    models = build_models(reference, flags, data_dir / "proxmox_models.yaml")
    libvirt_9_0 = json.loads((data_dir / "libvirt" / "libvirt-9.0.json").read_text(encoding="utf-8"))
    _libvirt_releases(flags, models, {f["qemu"] for f in libvirt_9_0["features"] if f["qemu"]})
    write_json(data_dir / FLAGS_FILE, {"generated_by": GENERATED_BY, "entries": flags})
    write_json(data_dir / MODELS_FILE, {"generated_by": GENERATED_BY, "models": models})
    catalog = read_catalog(data_dir / FLAGS_FILE, data_dir / MODELS_FILE)
    built = write_references(data_dir, reference, fixtures, catalog)
    # The reference cpu_map's models in QEMU names, so libvirt XML dumps (host-model views naming
    # models newer than libvirt 9.0) expand to features without the reference folder at run time.
    current_map = import_libvirt(reference / "libvirt-cpu_map", catalog, CURRENT_LIBVIRT_LABEL)
    current_map["generated_by"] = GENERATED_BY
    (data_dir / "libvirt").mkdir(exist_ok=True)
    write_json(data_dir / "libvirt" / LIBVIRT_CURRENT_FILE, current_map)
    write_yaml_mirror(data_dir)
    return len(flags), len(models), built


def write_yaml_mirror(data_dir: Path) -> None:
    """data/yaml-mirror.json: the curated YAML files cpudb reads on every analysis, parsed, with
    each source's digest (see resources.data_yaml)."""
    import hashlib

    from cpudb.resources import MIRRORED_YAML, YAML_MIRROR, load_yaml

    files = {}
    for name in MIRRORED_YAML:
        data = (data_dir / name).read_bytes()
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "document": load_yaml(data.decode("utf-8"))}
    write_json(data_dir / YAML_MIRROR, {"generated_by": GENERATED_BY, "files": files})
