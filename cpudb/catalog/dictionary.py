"""The flag dictionary and the QEMU CPU model catalog (data/flags.json, data/models.json).

Loaded with a typed loader that rejects unknown or missing keys, then written into the
database once per catalog version (the digest of the data files):

- ``flags``: one row per dictionary entry (a CPUID bit, an MSR bit or a Linux-defined flag);
- ``flag_features``: kernel flag (current or legacy spelling) -> QEMU feature, per vendor group;
- ``flag_classes``: the class of every kernel flag name;
- ``features``: per QEMU feature its class, libvirt name, and whether lscpu can show it;
- ``models``, ``model_aliases``, ``model_features``: every model version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any, get_type_hints


from cpudb.catalog.cpuid import Location
from cpudb.catalog.version import CATALOG_FILES, LOADER_VERSION, current_digest, loaded_digest  # noqa: F401 - read from here too
from cpudb.errors import CatalogError
from cpudb.resources import data_path, data_yaml

VENDOR_GROUPS = {"GenuineIntel": "intel", "CentaurHauls": "intel", "AuthenticAMD": "amd", "HygonGenuine": "amd"}
# CPUID leaves whose bits only AMD (and Hygon) CPUs define natively.
_AMD_LEAVES = (0x80000008, 0x80000021)


@dataclass(frozen=True)
class FlagEntry:
    """One feature known to Linux, QEMU or libvirt, joined on its CPUID/MSR location."""

    id: str
    kernel: str
    legacy: tuple[str, ...]
    qemu: str
    qemu_aliases: tuple[str, ...]
    libvirt: str
    location: str
    klass: str
    reason: str
    description: str
    kvm: str
    derived: tuple[tuple[str, str], ...]  # (vendor group or 'any', QEMU feature): what guests get
    linux_from: tuple[str, ...]  # QEMU features the kernel computes this summary flag from, any vendor
    in_qemu_7_2: bool | None  # QEMU 7.2 accepts the name (None: no QEMU name)
    libvirt_since: str | None  # first libvirt release known to name it (None: no dated evidence)

    @property
    def kernel_names(self) -> tuple[str, ...]:
        return ((self.kernel,) if self.kernel else ()) + self.legacy

    @property
    def native_vendor(self) -> str:
        """For a bit current kernels hide: the vendor group whose CPUs define it ('any' otherwise).

        Only hidden bits need it: a host of the other vendor then lacks the bit rather than hides it.
        """
        loc = Location.parse(self.id)
        if self.kernel or loc.kind != "cpuid":
            return "any"
        if loc.leaf in _AMD_LEAVES:
            return "amd"
        if loc.leaf == 7 and loc.register == "EDX":
            return "intel"
        return "any"


@dataclass(frozen=True)
class ModelEntry:
    """One QEMU CPU model version (or a Proxmox built-in type derived from one)."""

    name: str
    family_name: str
    version: int
    aliases: tuple[str, ...]
    plain_alias: bool
    vendor: str
    family: int
    model: int
    stepping: int
    model_id: str
    features: tuple[str, ...]
    qemu_first: str | None
    libvirt_first: str | None
    libvirt_first_range: str
    libvirt_extra: tuple[str, ...] | None
    libvirt_9_0_names: tuple[str, ...]
    libvirt_9_0_extra: tuple[str, ...] | None
    origin: str
    base: str | None
    note: str

    @property
    def generic(self) -> bool:
        """Vendor-neutral baselines: QEMU's qemu64/kvm64 and Proxmox's x86-64-vN."""
        return self.origin == "proxmox" or self.family_name in ("qemu64", "kvm64")


@dataclass(frozen=True)
class Catalog:
    entries: tuple[FlagEntry, ...]
    models: tuple[ModelEntry, ...]
    digest: str

    @property
    def version(self) -> str:
        return self.digest[:12]

    def kernel_flag_names(self) -> frozenset[str]:
        return frozenset(name for entry in self.entries for name in entry.kernel_names)

    def flag_features(self) -> list[tuple[str, str, str, bool]]:
        """(kernel flag, vendor group, QEMU feature, whether current kernels print that flag)."""
        rows: set[tuple[str, str, str, bool]] = set()
        for entry in self.entries:
            if entry.qemu:
                # A name that also derives from another vendor's bit (vnmi: AMD SVM bit, Intel VMX
                # control) shows this bit only on the CPUs that define it.
                vendor = _leaf_vendor(Location.parse(entry.id)) if entry.derived else "any"
                for name in entry.kernel_names:
                    rows.add((name, vendor, entry.qemu, name == entry.kernel))
            for vendor, feature in entry.derived:
                for name in entry.kernel_names:
                    rows.add((name, vendor, feature, name == entry.kernel))
        return sorted(rows)

    def flag_sources(self) -> list[tuple[str, str]]:
        """(kernel flag as current kernels print it, QEMU feature a guest kernel shows it for): the
        entry's own bit and, for Linux summary flags, every bit Linux computes it from (any vendor)."""
        rows = set()
        for entry in self.entries:
            if not entry.kernel:
                continue
            if entry.qemu:
                rows.add((entry.kernel, entry.qemu))
            rows.update((entry.kernel, feature) for feature in entry.linux_from)
            rows.update((entry.kernel, feature) for _, feature in entry.derived)
        return sorted(rows)

    def flag_classes(self) -> list[tuple[str, str, str]]:
        """(kernel flag, class, reason) for every kernel spelling.

        A name printed for two bits (mba: Intel RDT and AMD) takes the first entry's class;
        the distinct reasons are joined.
        """
        classes: dict[str, str] = {}
        reasons: dict[str, list[str]] = {}
        for entry in self.entries:
            for name in entry.kernel_names:
                classes.setdefault(name, entry.klass)
                if entry.reason not in reasons.setdefault(name, []):
                    reasons[name].append(entry.reason)
        return sorted((name, classes[name], " / ".join(reasons[name])) for name in classes)

    def feature_rows(self) -> list[tuple]:
        """(feature, class, reason, libvirt, kernel, kvm, native vendor, visible on intel, on amd, always,
        known to QEMU 7.2, first libvirt naming it as a release number or None)."""
        shown = [(flag, vendor, feature) for flag, vendor, feature, current in self.flag_features() if current]
        visible = {(feature, vendor) for _, vendor, feature in shown}
        rows: dict[str, tuple] = {}
        for entry in self.entries:
            if not entry.qemu or entry.qemu in rows:
                continue
            f = entry.qemu
            # msr-only features are by definition not shown by lscpu, even where a kernel summary
            # (ept_ad for vmx-eptad) happens to reflect one of them on some kernels.
            shown_at_all = entry.klass != "msr-only"
            rows[f] = (
                f,
                entry.klass,
                entry.reason,
                entry.libvirt or f,
                entry.kernel,
                entry.kvm,
                entry.native_vendor,
                shown_at_all and ((f, "any") in visible or (f, "intel") in visible),
                shown_at_all and ((f, "any") in visible or (f, "amd") in visible),
                entry.kvm == "always",
                bool(entry.in_qemu_7_2),
                release_number(entry.libvirt_since),
            )
        return [rows[name] for name in sorted(rows)]


def _leaf_vendor(location: Location) -> str:
    """The vendor group whose CPUs define the bits of this CPUID leaf ('any' when both do)."""
    if location.kind == "cpuid" and location.leaf in _AMD_LEAVES + (0x8000000A,):
        return "amd"
    if location.kind == "cpuid" and location.leaf == 7 and location.register == "EDX":
        return "intel"
    return "any"


# --- loading and validating the data files -------------------------------------------------


def _typed(cls: type, raw: Any, where: str, renames: dict[str, str] | None = None):
    """Build dataclass ``cls`` from a JSON object, refusing unknown, missing or mistyped keys."""
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: expected an object")
    keys, wanted = _schema(cls, tuple(sorted((renames or {}).items())))
    if raw.keys() != keys:
        unknown, missing = set(raw) - keys, keys - set(raw)
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    return cls(**{name: _coerce(raw[key], hint, where, key) for key, name, hint in wanted})


@cache
def _schema(cls: type, renames: tuple[tuple[str, str], ...]) -> tuple[frozenset[str], tuple[tuple[str, str, str], ...]]:
    """The JSON keys of dataclass ``cls`` and (key, field, type as text) of each: worked out once per
    class, since resolving type hints costs more than reading a row (700 rows per catalog load)."""
    names, hints = dict(renames), get_type_hints(cls)
    wanted = tuple((names.get(f.name, f.name), f.name, str(hints[f.name])) for f in fields(cls))
    return frozenset(key for key, _, _ in wanted), wanted


def _coerce(value: Any, text: str, where: str, key: str) -> Any:
    where = f"{where}.{key}"
    if value is None:
        if "None" in text:
            return None
        raise CatalogError(f"{where}: must not be null")
    if text.startswith("tuple[tuple"):
        if not isinstance(value, list) or not all(isinstance(v, dict) and set(v) == {"vendor", "feature"} for v in value):
            raise CatalogError(f"{where}: expected a list of {{vendor, feature}}")
        return tuple((v["vendor"], v["feature"]) for v in value)
    if text.startswith("tuple") or text.startswith("typing.Optional[tuple") or "tuple[str, ...]" in text:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise CatalogError(f"{where}: expected a list of strings")
        return tuple(value)
    for kind in (bool, int, str):
        if kind.__name__ in text.replace("None", ""):
            if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
                return value
            raise CatalogError(f"{where}: expected {kind.__name__}, got {type(value).__name__}")
    return value


def read_catalog(flags_file: Path, models_file: Path) -> Catalog:
    """Read and validate the two generated data files."""
    documents = []
    digest = hashlib.sha256()
    for path, key in ((flags_file, "entries"), (models_file, "models")):
        try:
            data = path.read_bytes()
            document = json.loads(data)
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(document, dict) or set(document) != {"generated_by", key}:
            raise CatalogError(f"{path}: expected exactly the keys 'generated_by' and '{key}'")
        digest.update(data)
        documents.append(document[key])
    entries = tuple(
        _typed(FlagEntry, raw, f"{flags_file.name}[{i}]", {"klass": "class"}) for i, raw in enumerate(documents[0])
    )
    models = tuple(_typed(ModelEntry, raw, f"{models_file.name}[{i}]") for i, raw in enumerate(documents[1]))
    _check(entries, models, flags_file, models_file)
    return Catalog(entries, models, digest.hexdigest())


# The classes a flag may have (what a guest may do with it); data/flags.json uses no others.
CLASSES = ("guest", "unmigratable", "host-only", "nested", "synthetic", "os-state", "guest-marker", "msr-only")


def _check(entries: Iterable[FlagEntry], models: Iterable[ModelEntry], flags_file: Path, models_file: Path) -> None:
    qemu_names = {e.qemu for e in entries if e.qemu}
    for entry in entries:
        if entry.klass not in CLASSES:
            raise CatalogError(f"{flags_file.name}: {entry.id}: unknown class {entry.klass!r}")
        for vendor, feature in entry.derived:
            if vendor not in ("any", "intel", "amd") or feature not in qemu_names:
                raise CatalogError(f"{flags_file.name}: {entry.id}: bad derivation {vendor}/{feature}")
    for model in models:
        unknown = sorted(set(model.features) - qemu_names)
        if unknown:
            raise CatalogError(f"{models_file.name}: {model.name}: unknown feature(s) {', '.join(unknown)}")


@cache
def current() -> Catalog:
    """The catalog shipped in data/."""
    return read_catalog(data_path("flags.json"), data_path("models.json"))


def import_libvirt(folder: Path, catalog: Catalog | None = None, label: str | None = None) -> dict:
    """A libvirt cpu_map folder in cpudb terms (see libvirt_map.import_cpu_map)."""
    from cpudb.catalog.libvirt_map import import_cpu_map

    catalog = catalog or current()
    by_location = {e.id: e.qemu for e in catalog.entries if e.qemu}
    qemu_models = {m.name: (m.vendor, frozenset(m.features)) for m in catalog.models if m.origin == "qemu"}
    aliases = {}
    for m in catalog.models:
        if m.origin != "qemu":
            continue
        aliases.update({alias: m.name for alias in m.aliases})
        if m.plain_alias:
            aliases[m.family_name] = m.name
    return import_cpu_map(Path(folder), by_location, qemu_models, aliases, label)


def known_kernel_flags() -> frozenset[str]:
    """Every kernel flag name the dictionary knows (current and legacy spellings)."""
    return current().kernel_flag_names()


def kvm_given(catalog: Catalog) -> list[tuple[int, str, str, str, str]]:
    """(rule, host vendor group, host kernel flag, feature, kind) from data/kvm_given.yaml, checked
    against the dictionary. A rule holds when the host shows every one of its flags (flag '' for
    the features KVM emulates on every host); kind is 'emulated', 'kvm' or 'hidden'."""
    path = data_path("kvm_given.yaml")
    rows: list[tuple[int, str, str, str, str]] = []
    try:
        document = data_yaml("kvm_given.yaml")
        for feature in document["emulated"]:
            for vendor in ("intel", "amd", "unknown"):
                rows.append((len(rows), vendor, "", str(feature), "emulated"))
        for kind, key in (("kvm", "given"), ("hidden", "hidden")):
            for rule in document[key]:
                flags = rule["flags"] if "flags" in rule else [rule["flag"]]
                number = len(rows)
                rows += [(number, str(rule["vendor"]), str(flag), str(rule["feature"]), kind) for flag in flags]
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: expected emulated, given and hidden rows ({exc})") from None
    flags_known = catalog.kernel_flag_names()
    features = {e.qemu for e in catalog.entries if e.qemu}
    for _, vendor, flag, feature, _ in rows:
        if vendor not in ("intel", "amd", "unknown") or (flag and flag not in flags_known) or feature not in features:
            raise CatalogError(f"{path}: {vendor}/{flag} -> {feature}: unknown vendor group, kernel flag or feature")
    return rows


def _release_order(models: Iterable[ModelEntry]) -> list[ModelEntry]:
    """Models from oldest to newest: by first QEMU release, then by family and version."""

    def key(m: ModelEntry) -> tuple:
        release = tuple(int(p) for p in (m.qemu_first or "0").split("."))
        return (release, m.family, m.model, m.family_name, m.version)

    return sorted(models, key=key)


def release_number(text: str | None) -> int | None:
    """``"7.2.0"`` -> 70200; None stays None."""
    if not text:
        return None
    major, minor, patch = release_tuple(text)
    return major * 10000 + minor * 100 + patch


def _range_end(text: str) -> str | None:
    """The last release of a ``first-last`` range: the release known to have the name."""
    return text.rsplit("-", 1)[-1] if text else None


def release_tuple(text: str) -> tuple[int, ...]:
    """``"7.2"`` -> (7, 2, 0), for comparing QEMU and libvirt versions."""
    parts = [int(p) for p in text.strip().split(".") if p.isdigit()]
    if not parts or len(parts) != len(text.strip().split(".")):
        raise CatalogError(f"{text!r} is not a release number such as 7.2 or 9.0.0")
    return tuple((parts + [0, 0])[:3])
