"""Dumps as libvirt host CPU XML (what `virsh capabilities` shows), the input of `virsh
cpu-baseline`: for the tests that compare cpudb with libvirt and for the benchmark's peer."""

from __future__ import annotations

from cpudb.catalog.dictionary import VENDOR_GROUPS, Catalog
from cpudb.catalog.libvirt_map import CpuMap
from cpudb.inputs.records import HostDump


Names = frozenset[tuple[str, str, str]]


def feature_names(installed: CpuMap, catalog: Catalog) -> Names:
    """(kernel flag, vendor group or 'any', the installed libvirt's name of a feature the flag
    shows), joined on the CPUID location; features that libvirt does not know are left out."""
    location = {e.qemu: e.id for e in catalog.entries if e.qemu}
    libvirt_name = {f.location.key: name for name, f in installed.features.items()}
    return frozenset((flag, vendor, libvirt_name[location[feature]])
                     for flag, vendor, feature, _ in catalog.flag_features() if location.get(feature) in libvirt_name)


def host_cpu_xml(dump: HostDump, names: Names) -> str:
    """One host as libvirt describes it: every feature its flags show, in libvirt's names."""
    group = VENDOR_GROUPS[dump.vendor]
    features = sorted({name for flag, vendor, name in names if flag in dump.flags and vendor in ("any", group)})
    lines = ["<cpu>", "  <arch>x86_64</arch>", "  <model>qemu64</model>",
             f"  <vendor>{'Intel' if group == 'intel' else 'AMD'}</vendor>"]
    lines += [f"  <feature name='{name}'/>" for name in features]
    return "\n".join(lines + ["</cpu>", ""])
