"""The files ``cpudb collect`` writes: header lines, then one section per command.

    hostname: cmp-17
    collected: 2026-11-26T02:00:00+00:00
    kernel: 6.1.0-27-amd64
    # virsh domcapabilities: not collected (virsh: command not found)
    --- lscpu
    ...
    --- /proc/cpuinfo
    ...
    --- virsh domcapabilities
    <domainCapabilities>...
    --- cpuid -r
    ...

Kernel flags come from lscpu (else /proc/cpuinfo); microcode, bugs and vmx flags from
/proc/cpuinfo when lscpu lacks them; the guest view from domcapabilities (what KVM and QEMU
can really give a guest), else from raw CPUID.
"""

from __future__ import annotations

from collections.abc import Callable

import re

from cpudb.errors import DumpParseError
from cpudb.inputs.records import FACTS, _Fields

SECTION = re.compile(r"^--- (.+?)\s*$")
# Section name -> its role; the order is the order of preference for kernel flags.
SECTIONS = ("lscpu", "lscpu -J", "/proc/cpuinfo", "virsh capabilities", "virsh domcapabilities", "cpuid -r")
FLAG_SOURCES = ("lscpu", "lscpu -J", "/proc/cpuinfo", "virsh capabilities", "cpuid -r")
GUEST_SOURCES = ("virsh domcapabilities", "virsh capabilities", "cpuid -r")


def is_bundle(body: list[str]) -> bool:
    first = next((line for line in body if line.strip()), "")
    return bool(SECTION.match(first))


def parse_bundle(body: list[str], source: str, offset: int, known_flags: frozenset[str],
                 parse_section: Callable[[list[str], str, int, frozenset[str]], _Fields]) -> _Fields:
    """The fields of a collected bundle; ``parse_section`` reads each section (a dump itself)."""

    sections: dict[str, tuple[int, list[str]]] = {}
    name: str | None = None
    for number, line in enumerate(body, offset + 1):
        match = SECTION.match(line)
        if match:
            name = match.group(1)
            if name not in SECTIONS:
                raise DumpParseError(source, f"unknown section '--- {name}' (expected one of: {', '.join(SECTIONS)})", number)
            if name in sections:
                raise DumpParseError(source, f"section '--- {name}' appears twice", number)
            sections[name] = (number, [])
        elif name is not None:
            sections[name][1].append(line)
    parsed = {}
    for name, (start, lines) in sections.items():
        if not any(line.strip() for line in lines):
            raise DumpParseError(source, f"section '--- {name}' is empty", start)
        parsed[name] = parse_section(lines, source, start, known_flags)
    primary_name = next((n for n in FLAG_SOURCES if n in parsed), None)
    if primary_name is None:
        raise DumpParseError(source, "collected file without an lscpu, /proc/cpuinfo or CPUID section")
    primary = parsed[primary_name]
    guest_name = next((n for n in GUEST_SOURCES if n in parsed), None)
    fields = _Fields(
        source_format="collect",
        flags=primary.flags,
        guest_features=parsed[guest_name].guest_features if guest_name else None,
        guest_source=guest_name,
    )
    # Facts the preferred section lacks come from the others, in order of preference.
    for attribute in FACTS:
        value = next((getattr(parsed[n], attribute) for n in SECTIONS if n in parsed
                      if getattr(parsed[n], attribute) is not None), None)
        setattr(fields, attribute, value)
    seen = set()
    for section in parsed.values():
        for line in section.extra:
            if (line.kind, line.name) not in seen:
                seen.add((line.kind, line.name))
                fields.extra.append(line)
        fields.notes.extend(note for note in section.notes if note not in fields.notes)
    return fields
