"""/proc/cpuinfo copies: one block per logical CPU, lower-case keys ("model name\t: ...")."""

from __future__ import annotations

import re

from cpudb.errors import DumpParseError
from cpudb.inputs.records import ExtraLine, Memo, _Fields, _int, flag_set

_CPUINFO_LINE = re.compile(r"^([^:\t]+?)\s*:\s?(.*?)\s*$")


_SPLIT_LINES = Memo(8_000_000)  # (key, value) per distinct line


def split_cpuinfo_line(line: str) -> tuple[str, str] | None:
    """(lower-case key, value) of a line as _CPUINFO_LINE splits it, None where it does not match;
    with str methods, at a third of the cost of the regex."""
    key, colon, value = line.partition(":")
    if not colon or not key or key[0] == "\t" or "\t" in key.rstrip():
        return None
    return key.strip().lower(), (value[1:] if value[:1].isspace() else value).rstrip()


def parse_cpuinfo(body: list[str], source: str, offset: int) -> _Fields:
    """The fields of a /proc/cpuinfo copy (whole, or only some of its lines): the flags every
    processor block has, and the first block's identity."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    seen = _SPLIT_LINES
    for line in body:
        # A fleet repeats its lines ("vendor_id : GenuineIntel", the flags of one CPU model): each
        # distinct line is split once per process.
        split = seen.get(line)
        if split is None:
            if not line or line.isspace():
                if current:
                    blocks.append(current)
                    current = {}
                continue
            split = split_cpuinfo_line(line)
            if split is None:
                _raise_bad_line(body, source, offset)
            seen.keep(line, split)
        key, value = split
        if key == "processor" and current:
            blocks.append(current)
            current = {}
        current[key] = value
    if current:
        blocks.append(current)
    first = blocks[0]
    if "features" in first or "cpu implementer" in first:
        raise DumpParseError(source, "aarch64 /proc/cpuinfo: cpudb analyses x86-64 hosts only")
    if first.get("vendor_id", "").startswith("IBM/S390"):
        raise DumpParseError(source, "s390x /proc/cpuinfo: cpudb analyses x86-64 hosts only")
    if "cpu" in first and ("POWER" in first["cpu"] or "platform" in first):
        raise DumpParseError(source, "ppc64 /proc/cpuinfo: cpudb analyses x86-64 hosts only")
    flag_blocks = [block for block in blocks if "flags" in block]
    if not flag_blocks:
        raise DumpParseError(source, 'no "flags" line in /proc/cpuinfo (is this from an x86-64 host?)')
    flag_sets = [flag_set(block["flags"]) for block in flag_blocks]
    common = flag_sets[0] if len(flag_sets) == 1 else flag_set(" ".join(frozenset.intersection(*flag_sets)))
    notes = []
    if any(flags != common for flags in flag_sets):
        partial = sorted(frozenset.union(*flag_sets) - common)
        notes.append(
            f"processor blocks differ ({len(flag_sets)} blocks); kept the flags all have, "
            f"dropped {len(partial)} only some have: {' '.join(partial[:12])}{' ...' if len(partial) > 12 else ''}"
        )
    extra: list[ExtraLine] = []
    for key, kind in (("vmx flags", "vmx_flags"), ("bugs", "bugs"), ("power management", "power_management")):
        if first.get(key):
            extra.append(ExtraLine(kind, key, first[key]))
    physical_ids = {block.get("physical id") for block in blocks if block.get("physical id") is not None}
    cores = _int(first.get("cpu cores"))
    siblings = _int(first.get("siblings"))
    return _Fields(
        source_format="cpuinfo",
        flags=common,
        vendor=first.get("vendor_id") or None,
        model_name=first.get("model name") or None,
        family=_int(first.get("cpu family")),
        model=_int(first.get("model")),
        stepping=_int(first.get("stepping")),
        microcode=first.get("microcode") or None,
        sockets=len(physical_ids) if len(blocks) > 1 and physical_ids else None,
        cores_per_socket=cores,
        threads_per_core=siblings // cores if cores and siblings and siblings >= cores else None,
        extra=extra,
        notes=notes,
    )


def _raise_bad_line(body: list[str], source: str, offset: int) -> None:
    for number, line in enumerate(body, offset + 1):
        if line.strip() and _CPUINFO_LINE.match(line) is None:
            raise DumpParseError(source, f"unexpected line {line.strip()[:60]!r} in /proc/cpuinfo", number)
    raise AssertionError("a line the whole-text pattern refused, but the line pattern took")


# --- one flag per line (the vendor brief's *.flags-lscpu.sorted) -----------------------------


# Flags only one vendor's CPUs print, to tell the vendor of a dump that does not say it.
