"""The peer's input: dump files as libvirt host CPU XML (what `virsh capabilities` shows), for
`virsh cpu-baseline`. Every feature a host's flags show, in the installed libvirt's names, joined
on the CPUID location; features that libvirt does not know drop out.

    python bench/libvirt_hosts.py DUMP_FOLDER > hosts.xml
"""

from __future__ import annotations

import sys
from pathlib import Path

from cpudb.catalog import dictionary as catalog
from cpudb.catalog.dictionary import VENDOR_GROUPS
from cpudb.catalog.libvirt_map import read_cpu_map
from cpudb.inputs.parse import parse_file
from cpudb.inputs.rows import find_dump_files

CPU_MAP = Path("/usr/share/libvirt/cpu_map")


def main(folder: str) -> int:
    installed = read_cpu_map(CPU_MAP)
    current = catalog.current()
    location = {e.qemu: e.id for e in current.entries if e.qemu}
    libvirt_name = {f.location.key: name for name, f in installed.features.items()}
    names_of: dict[tuple[str, str], str] = {}
    for flag, vendor, feature, _ in current.flag_features():
        if location.get(feature) in libvirt_name:
            names_of[(flag, vendor)] = libvirt_name[location[feature]]
    out: list[str] = []
    for path in find_dump_files([folder]):
        dump = parse_file(path)
        group = VENDOR_GROUPS[dump.vendor]
        features = sorted({name for (flag, vendor), name in names_of.items()
                           if flag in dump.flags and vendor in ("any", group)})
        out += ["<cpu>", "  <arch>x86_64</arch>", "  <model>qemu64</model>",
                f"  <vendor>{'Intel' if group == 'intel' else 'AMD'}</vendor>"]
        out += [f"  <feature name='{name}'/>" for name in features]
        out.append("</cpu>")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
