"""libvirt XML dumps: ``virsh capabilities``, ``virsh domcapabilities``, a libvirt ``<cpu>`` and
libvirt's raw CPUID test data (``<cpudata>``); and ``cpuid -r`` text.

libvirt describes a CPU as a model name plus features added or removed, in libvirt's spelling.
The model expands through libvirt's own definitions (data/libvirt/: the current cpu_map, then
libvirt 9.0 for names only it had); every feature becomes its QEMU name, kept as the dump's
libvirt view, and the kernel flags a current kernel would print for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from cpudb.errors import DumpParseError
from cpudb.inputs.records import _Fields

LIBVIRT_MAPS = ("libvirt/libvirt-current.json", "libvirt/libvirt-9.0.json")
X86_ARCHES = {"x86_64", "i686", "x86"}
# libvirt's vendor names in <vendor> and the CPUID vendor strings cpudb stores.
VENDORS = {"Intel": "GenuineIntel", "AMD": "AuthenticAMD", "Hygon": "HygonGenuine", "Zhaoxin": "CentaurHauls"}


@dataclass(frozen=True)
class LibvirtMaps:
    features: dict[str, str]  # libvirt feature name -> QEMU name ("" when QEMU has none)
    models: dict[str, frozenset[str]]  # libvirt model name -> QEMU features of its definition


@cache
def libvirt_maps() -> LibvirtMaps:
    """The libvirt cpu_maps shipped in data/libvirt, newest first: a name takes its newest meaning."""
    from cpudb.resources import data_path

    features: dict[str, str] = {}
    models: dict[str, frozenset[str]] = {}
    for name in LIBVIRT_MAPS:
        document = json.loads(data_path(name).read_text(encoding="utf-8"))
        for item in document["features"]:
            features.setdefault(item["libvirt"], item["qemu"])
        for model in document["models"]:
            models.setdefault(model["name"], frozenset(model["features"]))
    return LibvirtMaps(features, models)


def parse_xml_dump(text: str, source: str) -> _Fields:
    root = _parse(text, source)
    if root.tag == "capabilities":
        cpu = root.find("host/cpu")
        if cpu is None:
            raise DumpParseError(source, "virsh capabilities without a <host><cpu> element")
        return _libvirt_cpu(cpu, source, "virsh-capabilities", cpu.findtext("arch"))
    if root.tag == "domainCapabilities":
        mode = root.find("cpu/mode[@name='host-model']")
        if mode is None or mode.get("supported", "yes") != "yes":
            raise DumpParseError(source, "virsh domcapabilities without a supported host-model CPU")
        return _libvirt_cpu(mode, source, "virsh-domcapabilities", root.findtext("arch"))
    if root.tag == "cpu":
        return _libvirt_cpu(root, source, "libvirt-cpu", root.findtext("arch"))
    if root.tag == "cpudata":
        if root.get("arch", "x86") != "x86":
            raise DumpParseError(source, f"CPUID data of a {root.get('arch')} CPU; cpudb handles x86 only")
        from cpudb.catalog.cpuid import read_libvirt_cpudata

        try:
            dump = read_libvirt_cpudata(root, source)
        except ValueError as exc:
            raise DumpParseError(source, str(exc).removeprefix(f"{source}: ")) from None
        return cpuid_fields(dump, "libvirt-cpudata", "libvirt cpudata")
    raise DumpParseError(
        source, f"XML root <{root.tag}> is not virsh capabilities, virsh domcapabilities, a libvirt <cpu> or <cpudata>"
    )


def parse_cpuid_r(text: str, source: str) -> _Fields:
    from cpudb.catalog.cpuid import read_cpuid_r

    try:
        dump = read_cpuid_r(text)
    except ValueError as exc:
        raise DumpParseError(source, f"cpuid -r output without leaves ({exc})") from None
    return cpuid_fields(dump, "cpuid-r", "cpuid -r")


def cpuid_fields(dump, source_format: str, guest_source: str) -> _Fields:
    """Raw CPUID decoded through the dictionary: the flags a current kernel prints, and every set
    bit's QEMU feature (hidden bits and MSR features included) as the libvirt-style view."""
    from cpudb.catalog.dictionary import current
    from cpudb.inputs.decode import decode

    decoded = decode(dump, current())
    return _Fields(
        source_format=source_format,
        flags=decoded.printed,
        vendor=decoded.vendor or None,
        model_name=decoded.model_name or None,
        family=decoded.family,
        model=decoded.model,
        stepping=decoded.stepping,
        guest_features=decoded.features,
        guest_source=guest_source,
    )


def _parse(text: str, source: str) -> Element:
    try:
        return ElementTree.fromstring(text)
    except DefusedXmlException as exc:
        raise DumpParseError(source, f"refused unsafe XML ({type(exc).__name__}: entities or DTDs)") from None
    except ElementTree.ParseError as exc:
        raise DumpParseError(source, f"malformed XML ({exc})") from None


def _libvirt_cpu(cpu: Element, source: str, source_format: str, arch: str | None) -> _Fields:
    if arch and arch not in X86_ARCHES:
        raise DumpParseError(source, f"a {arch} host; cpudb handles x86 only")
    maps = libvirt_maps()
    model = (cpu.findtext("model") or "").strip()
    if model and model not in maps.models:
        raise DumpParseError(source, f"libvirt CPU model {model!r} is in neither shipped libvirt cpu_map")
    wanted, removed, unknown = set(), set(), set()
    for element in cpu.findall("feature"):
        name = element.get("name", "")
        if name not in maps.features:
            unknown.add(name)
        elif element.get("policy", "require") in ("disable", "forbid"):
            removed.add(name)
        else:
            wanted.add(name)
    features = set(maps.models.get(model, ()))
    features |= {maps.features[n] or f"libvirt:{n}" for n in wanted}
    features -= {maps.features[n] or f"libvirt:{n}" for n in removed}
    vendor_name = (cpu.findtext("vendor") or "").strip()
    vendor = VENDORS.get(vendor_name, vendor_name or None)
    qemu = frozenset(f for f in features if not f.startswith("libvirt:"))
    from cpudb.catalog.dictionary import current
    from cpudb.inputs.decode import flags_of_features

    catalog = current()
    libvirt_only = {f.removeprefix("libvirt:") for f in features if f.startswith("libvirt:")}
    flags = flags_of_features(qemu, vendor, catalog) | {
        e.kernel for e in catalog.entries if e.kernel and e.libvirt in libvirt_only
    }
    signature = cpu.find("signature")
    topology = cpu.find("topology")
    microcode = cpu.find("microcode")
    notes = []
    if unknown:
        notes.append(f"libvirt feature(s) unknown to cpudb's libvirt maps: {', '.join(sorted(unknown))}")
    return _Fields(
        source_format=source_format,
        flags=flags,
        vendor=vendor,
        model_name=f"{vendor_name} {model}".strip() if source_format != "virsh-capabilities" else None,
        family=_int_attr(signature, "family"),
        model=_int_attr(signature, "model"),
        stepping=_int_attr(signature, "stepping"),
        microcode=hex(int(microcode.get("version"))) if microcode is not None and microcode.get("version", "").isdigit() else None,
        sockets=_int_attr(topology, "sockets"),
        cores_per_socket=_int_attr(topology, "cores"),
        threads_per_core=_int_attr(topology, "threads"),
        notes=notes,
        guest_features=qemu,
        guest_source=source_format.replace("-", " "),
    )


def _int_attr(element: Element | None, name: str) -> int | None:
    value = element.get(name) if element is not None else None
    return int(value) if value is not None and value.isdigit() else None
