"""Read a libvirt x86 ``cpu_map`` folder: feature names with their CPUID/MSR bits, and CPU models.

Used to build the flag dictionary (libvirt's spelling of each feature) and by
``cpudb catalog import-libvirt`` to analyse against exactly what an operator's libvirt knows.
XML is parsed with defusedxml: entity expansion (billion laughs) and external entities are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from cpudb.catalog.cpuid import REGISTERS, Location, single_bit
from cpudb.errors import CatalogError

# VMX control capability MSRs report "allowed-1" settings in their high dword; libvirt names a
# control by that high bit (32 + n), QEMU and the SDM by the control bit n.
VMX_CONTROL_MSRS = frozenset({0x481, 0x482, 0x483, 0x484, 0x48B, 0x48D, 0x48E, 0x48F, 0x490})


@dataclass(frozen=True)
class LibvirtFeature:
    name: str
    aliases: tuple[str, ...]
    location: Location
    migratable: bool


@dataclass(frozen=True)
class LibvirtModel:
    """A libvirt CPU model with its features resolved through ``<model name=.../>`` inheritance."""

    name: str
    vendor: str | None
    features: frozenset[str]
    parent: str | None
    signatures: tuple[tuple[int, int], ...]  # (family, model)


@dataclass(frozen=True)
class CpuMap:
    features: dict[str, LibvirtFeature]
    models: dict[str, LibvirtModel]
    warnings: tuple[str, ...] = ()


def parse_xml_file(path: Path) -> Element:
    """Parse one XML file safely; any problem becomes a CatalogError naming the file."""
    try:
        return ElementTree.parse(str(path)).getroot()
    except DefusedXmlException as exc:
        raise CatalogError(f"{path}: refused unsafe XML ({type(exc).__name__})") from None
    except ElementTree.ParseError as exc:
        raise CatalogError(f"{path}: malformed XML ({exc})") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None


def feature_location(element: Element, source: str) -> Location:
    """The CPUID or MSR bit of a ``<feature>`` element of x86_features.xml."""
    cpuid = element.find("cpuid")
    if cpuid is not None:
        leaf = cpuid.get("eax_in") or cpuid.get("function")
        subleaf = cpuid.get("ecx_in", "0")
        bits = [(reg, int(cpuid.get(reg.lower()), 16)) for reg in REGISTERS if cpuid.get(reg.lower())]
        bits = [(reg, mask) for reg, mask in bits if mask]
        if leaf is None or len(bits) != 1 or single_bit(bits[0][1]) is None:
            raise CatalogError(f"{source}: feature {element.get('name')!r} does not name exactly one CPUID bit")
        return Location.cpuid(leaf, subleaf, bits[0][0], single_bit(bits[0][1]))
    msr = element.find("msr")
    if msr is not None:
        value = (int(msr.get("edx", "0"), 16) << 32) | int(msr.get("eax", "0"), 16)
        bit = single_bit(value)
        if bit is None or msr.get("index") is None:
            raise CatalogError(f"{source}: feature {element.get('name')!r} does not name exactly one MSR bit")
        index = int(msr.get("index"), 16)
        if index in VMX_CONTROL_MSRS and bit >= 32:
            bit -= 32
        return Location.msr(index, bit)
    raise CatalogError(f"{source}: feature {element.get('name')!r} has neither <cpuid> nor <msr>")


def read_features(path: Path) -> dict[str, LibvirtFeature]:
    root = parse_xml_file(path)
    features: dict[str, LibvirtFeature] = {}
    for element in root.iter("feature"):
        name = element.get("name")
        if not name:
            raise CatalogError(f"{path}: <feature> without a name")
        aliases = tuple(a.get("name") for a in element.findall("alias") if a.get("name"))
        features[name] = LibvirtFeature(
            name, aliases, feature_location(element, str(path)), element.get("migratable", "yes") != "no"
        )
    if not features:
        raise CatalogError(f"{path}: no <feature> elements (is this libvirt's x86_features.xml?)")
    return features


def read_cpu_map(folder: Path) -> CpuMap:
    """Read x86_features.xml and every x86 model file of a libvirt cpu_map folder."""
    folder = Path(folder)
    features_file = folder / "x86_features.xml"
    if not features_file.is_file():
        raise CatalogError(f"{folder}: no x86_features.xml (expected a libvirt cpu_map folder)")
    vendors = _read_vendors(folder / "x86_vendors.xml")
    features = read_features(features_file)
    raw: dict[str, tuple[str | None, set[str], str | None, tuple[tuple[int, int], ...]]] = {}
    warnings: list[str] = []
    for path in sorted(folder.glob("x86_*.xml")):
        if path.name in ("x86_features.xml", "x86_vendors.xml"):
            continue
        root = parse_xml_file(path)
        for model in root.findall("model"):
            name = model.get("name")
            if not name:
                raise CatalogError(f"{path}: <model> without a name")
            parent = next((m.get("name") for m in model.findall("model")), None)
            vendor = next((v.get("name") for v in model.findall("vendor")), None)
            # removed='yes' (mpx, monitor, intel-pt in newer maps): kept in the file for old domains
            # but no longer part of the model; libvirt describes hosts without them (see the
            # Xeon 6788P -host.xml: Icelake-Server-v2 on a host without mpx, no mpx disabled).
            own = {
                f.get("name")
                for f in model.findall("feature")
                if f.get("policy", "require") != "disable" and f.get("removed") != "yes"
            }
            unknown = sorted(f for f in own if f not in features)
            if unknown:
                # libvirt's own tree has such gaps (DiamondRapids before its features were added).
                warnings.append(f"{path.name}: model {name} uses feature(s) missing from x86_features.xml: {', '.join(unknown)}")
            signatures = tuple(
                (int(s.get("family", "0")), int(s.get("model", "0"))) for s in model.findall("signature")
            )
            raw[name] = (vendors.get(vendor, vendor), own, parent, signatures)
    models = {name: _resolve(name, raw, folder, ()) for name in raw}
    return CpuMap(features, models, tuple(warnings))


def _read_vendors(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {v.get("name"): v.get("string") for v in parse_xml_file(path).iter("vendor")}


def _resolve(name: str, raw: dict, folder: Path, stack: tuple[str, ...]) -> LibvirtModel:
    vendor, own, parent, signatures = raw[name]
    features = set(own)
    if parent is not None:
        if parent not in raw:
            raise CatalogError(f"{folder}: model {name} is based on unknown model {parent}")
        if parent in stack:
            raise CatalogError(f"{folder}: model {name} inherits from itself")
        base = _resolve(parent, raw, folder, stack + (name,))
        features |= base.features
        vendor = vendor or base.vendor
        signatures = signatures or base.signatures
    return LibvirtModel(name, vendor, frozenset(features), parent, signatures)


def import_cpu_map(
    folder: Path,
    entries_by_location: dict[str, str],
    qemu_models: dict[str, tuple[str, frozenset[str]]],
    aliases: dict[str, str],
    label: str | None = None,
) -> dict:
    """Translate a libvirt cpu_map into cpudb terms: which QEMU model each libvirt name runs,
    and which features libvirt's definition requires beyond QEMU's (libvirt checks hosts
    against its own definition).

    ``entries_by_location`` maps a location key to the QEMU feature name; ``qemu_models``
    maps a versioned name to (vendor, QEMU features); ``aliases`` maps variant and plain
    names to versioned names.
    """
    cpu_map = read_cpu_map(folder)
    to_qemu = {name: entries_by_location.get(f.location.key, "") for name, f in cpu_map.features.items()}
    models = []
    for name in sorted(cpu_map.models):
        model = cpu_map.models[name]
        qemu_model = name if name in qemu_models else aliases.get(name)
        features = sorted(to_qemu[f] or f"libvirt:{f}" for f in model.features if f in to_qemu)
        own = qemu_models[qemu_model][1] if qemu_model else frozenset()
        models.append(
            {
                "name": name,
                "qemu_model": qemu_model,
                "vendor": model.vendor,
                "features": features,
                "extra": sorted(f for f in features if f not in own and not f.startswith("vmx-")) if qemu_model else [],
            }
        )
    command = f"cpudb catalog import-libvirt {folder}" + (f" --label '{label}'" if label else "")
    return {
        "generated_by": command,
        "source": label or str(folder),
        # Every feature name this libvirt accepts, with its QEMU name: extra flags outside it
        # would stop nova-compute ("unknown CPU feature").
        "features": [{"libvirt": name, "qemu": to_qemu[name]} for name in sorted(to_qemu)],
        "unknown_features": sorted(name for name, qemu in to_qemu.items() if not qemu),
        "warnings": list(cpu_map.warnings),
        "models": models,
    }
