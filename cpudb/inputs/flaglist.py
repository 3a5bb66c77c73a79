"""Flag lists: one flag per line or per word (the vendor brief's *.flags-lscpu.sorted files), and
the vendor their flags betray when the file does not say it."""

from __future__ import annotations

from cpudb.errors import DumpParseError
from cpudb.inputs.records import _FLAG_TOKEN, _Fields


_AMD_ONLY_FLAGS = frozenset({"svm", "sse4a", "mmxext", "fxsr_opt", "cr8_legacy", "extapic", "topoext", "misalignsse"})


_INTEL_ONLY_FLAGS = frozenset({"vmx", "est", "ds_cpl", "tm2", "pbe", "dtes64", "xtpr", "pdcm"})


def infer_vendor(flags: frozenset[str]) -> str | None:
    """GenuineIntel or AuthenticAMD from vendor-specific flags, or None when they do not tell."""
    amd, intel = len(flags & _AMD_ONLY_FLAGS), len(flags & _INTEL_ONLY_FLAGS)
    if amd >= 2 and not intel:
        return "AuthenticAMD"
    if intel >= 2 and not amd:
        return "GenuineIntel"
    return None


def _parse_flag_list(body: list[str], source: str, offset: int) -> _Fields:
    flags: list[str] = []
    for number, line in enumerate(body, offset + 1):
        token = line.strip()
        if not token:
            continue
        if not _FLAG_TOKEN.match(token):
            raise DumpParseError(
                source, f"not a recognised dump: line {token[:60]!r} is neither lscpu, /proc/cpuinfo nor a flag list", number
            )
        flags.append(token)
    found = frozenset(flags)
    vendor = infer_vendor(found)
    notes = [f"flag list without a vendor; {vendor} inferred from vendor-specific flags"] if vendor else [
        "flag list without a vendor, and its flags do not tell: vendor-specific features are treated as unknown"
    ]
    return _Fields(source_format="flag-list", flags=found, vendor=vendor, notes=notes)
