"""What a dump parser returns (HostDump, its extra lines, a format's fields) and the helpers every
format shares: flag sets interned per distinct text, numbers read leniently, bounded memos."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

_FLAG_TOKEN = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class ExtraLine:
    """A line kept beside the flags: ``vmx flags``, ``bugs``, a vulnerability, power management."""

    kind: str
    name: str
    value: str


@dataclass(frozen=True)
class HostDump:
    """Everything cpudb keeps from one dump of one host."""

    host: str
    source_path: str
    source_format: str
    sha256: str
    flags: frozenset[str]
    vendor: str | None = None
    model_name: str | None = None
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    microcode: str | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    hypervisor_vendor: str | None = None
    kernel: str | None = None
    collected_at: datetime | None = None
    # The virtualization stack collect found on the host (qemu-system-x86_64, libvirt, nova-compute).
    qemu_version: str | None = None
    libvirt_version: str | None = None
    nova_version: str | None = None
    extra: tuple[ExtraLine, ...] = ()
    notes: tuple[str, ...] = ()
    # The guest view (QEMU feature names) when the dump carries one: libvirt's domcapabilities
    # host-model or host CPU, or raw CPUID; and which of those it came from.
    guest_features: frozenset[str] | None = None
    guest_source: str | None = None

    @property
    def is_guest(self) -> bool:
        """True when the dump was taken inside a virtual machine."""
        return self.hypervisor_vendor is not None or "hypervisor" in self.flags


# The CPU facts a format parser may find, copied as they are into the HostDump.
FACTS = (
    "vendor", "model_name", "family", "model", "stepping", "microcode", "sockets", "cores_per_socket",
    "threads_per_core", "hypervisor_vendor",
)


@dataclass
class _Fields:
    """What one format parser extracted, before it becomes a HostDump."""

    source_format: str
    flags: frozenset[str]
    vendor: str | None = None
    model_name: str | None = None
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    microcode: str | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    hypervisor_vendor: str | None = None
    extra: list[ExtraLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    guest_features: frozenset[str] | None = None
    guest_source: str | None = None


class Memo(dict):
    """Results per distinct input (a text, or a flag set sized by its flags), kept while the inputs
    kept are under ``budget`` characters in all (then it starts again): a fleet repeats its lines and flag sets, so each distinct one is
    worked out once per process, and hostile input cannot make the memo grow without bound."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget, self.used = budget, 0

    def keep(self, text: str, result):
        self.used += len(text) + 64
        if self.used > self.budget:
            self.clear()
            self.used = len(text) + 64
        self[text] = result
        return result


# Flag sets by the text they were read from, and the sets already checked: a fleet has a few
# hundred distinct flags lines for 100,000 hosts, so each is split, interned and checked once.
_SETS_BY_TEXT = Memo(4_000_000)


def flag_set(text: str) -> frozenset[str]:
    """The flags of one flags line (words separated by white space), interned per distinct text."""
    found = _SETS_BY_TEXT.get(text)
    if found is None:
        found = frozenset(text.split())
        # The same set in another order or spacing becomes the same object.
        canonical = " ".join(sorted(found))
        found = _SETS_BY_TEXT.get(canonical) or _SETS_BY_TEXT.keep(canonical, found)
        _SETS_BY_TEXT.keep(text, found)
    return found


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)  # the common case: decimal, white space around it allowed
    except ValueError:
        value = value.strip()
    try:
        return int(value, 16) if value.lower().startswith("0x") else None
    except ValueError:
        return None
