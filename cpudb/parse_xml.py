"""libvirt XML dumps (virsh capabilities, domcapabilities, CPUID test data)."""

from cpudb.errors import DumpParseError


def parse_xml_dump(text: str, source: str):
    raise DumpParseError(source, "XML dumps (virsh capabilities, domcapabilities, CPUID data) are not supported yet")
