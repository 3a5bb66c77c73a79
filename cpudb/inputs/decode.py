"""Raw CPUID to kernel flags, through the flag dictionary's CPUID locations.

A set bit gives the flag the current kernel prints for it, or, for a bit current kernels
hide, the spelling older kernels printed (spec_ctrl, amd_ssbd): the dictionary maps those to
the same QEMU feature, so hidden bits become known instead of unverifiable. Linux summary
flags computed from bits (ibpb from spec-ctrl on Intel) are returned apart, as inferred.
"""

from __future__ import annotations

from dataclasses import dataclass

from cpudb.catalog.cpuid import CpuidDump, Location
from cpudb.catalog.dictionary import VENDOR_GROUPS, Catalog


@dataclass(frozen=True)
class Decoded:
    vendor: str
    family: int
    model: int
    stepping: int
    model_name: str
    known: frozenset[str]  # flags of bits set in the dump (older spellings for bits kernels hide)
    inferred: frozenset[str]  # Linux summary flags those bits imply
    msr_features: frozenset[str]  # QEMU features of MSR bits the dump includes
    features: frozenset[str]  # QEMU features of every set bit, CPUID and MSR
    printed: frozenset[str]  # the flags a current kernel prints: current spellings and summaries

    @property
    def flags(self) -> frozenset[str]:
        return self.known | self.inferred


def decode(dump: CpuidDump, catalog: Catalog) -> Decoded:
    known: set[str] = set()
    printed: set[str] = set()
    set_features: set[str] = set()
    msr_features: set[str] = set()
    for entry in catalog.entries:
        location = Location.parse(entry.id)
        if location.kind == "linux" or not dump.is_set(location):
            continue
        if entry.qemu:
            set_features.add(entry.qemu)
        if location.kind == "msr":
            if entry.qemu:
                msr_features.add(entry.qemu)
            continue
        name = entry.kernel or (entry.legacy[0] if entry.legacy else "")
        if name:
            known.add(name)
        if entry.kernel:
            printed.add(entry.kernel)
    inferred = summary_flags(set_features, dump.vendor, catalog) - known
    family, model, stepping = dump.signature
    return Decoded(
        vendor=dump.vendor,
        family=family,
        model=model,
        stepping=stepping,
        model_name=dump.model_name,
        known=frozenset(known),
        inferred=frozenset(inferred),
        msr_features=frozenset(msr_features),
        features=frozenset(set_features),
        printed=frozenset(printed) | inferred,
    )


def summary_flags(features: set[str] | frozenset[str], vendor: str | None, catalog: Catalog) -> frozenset[str]:
    """The Linux summary flags QEMU features imply: the kernel's own rules (ssbd from AMD_SSBD
    too) plus cpudb's vendor derivations (ibrs_enhanced from AutoIBRS on AMD)."""
    group = VENDOR_GROUPS.get(vendor or "", "intel")
    return frozenset(
        entry.kernel
        for entry in catalog.entries
        if entry.kernel
        and (
            set(entry.linux_from) & features
            or any(v in ("any", group) and feature in features for v, feature in entry.derived)
        )
    )


def flags_of_features(features: set[str] | frozenset[str], vendor: str | None, catalog: Catalog) -> frozenset[str]:
    """The kernel flags a current kernel prints for a CPU with these QEMU features."""
    named = {entry.kernel for entry in catalog.entries if entry.kernel and entry.qemu in features}
    return frozenset(named) | summary_flags(features, vendor, catalog)
