"""The peer's input: dump files as libvirt host CPU XML (what `virsh capabilities` shows), for
`virsh cpu-baseline`, in the installed libvirt's feature names (cpudb.build.libvirt_hosts).

    python bench/libvirt_hosts.py DUMP_FOLDER > hosts.xml
"""

from __future__ import annotations

import sys
from pathlib import Path

from cpudb.build.libvirt_hosts import feature_names, host_cpu_xml
from cpudb.catalog import dictionary as catalog
from cpudb.catalog.libvirt_map import read_cpu_map
from cpudb.inputs.parse import parse_file
from cpudb.inputs.rows import find_dump_files

CPU_MAP = Path("/usr/share/libvirt/cpu_map")


def main(folder: str) -> int:
    names = feature_names(read_cpu_map(CPU_MAP), catalog.current())
    sys.stdout.write("".join(host_cpu_xml(parse_file(path), names) for path in find_dump_files([folder])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
