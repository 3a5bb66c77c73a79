"""Where a CPU feature lives: a CPUID leaf/subleaf/register/bit, an MSR bit, or nowhere (Linux-defined).

Names are joined across Linux, QEMU and libvirt on this location, never on spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGISTERS = ("EAX", "EBX", "ECX", "EDX")
_CPUID_KEY = re.compile(r"^cpuid:(0x[0-9a-f]{8})\.(\d+)\.(E[ABCD]X)\.(\d+)$")
_MSR_KEY = re.compile(r"^msr:(0x[0-9a-f]+)\.(\d+)$")


@dataclass(frozen=True, order=True)
class Location:
    """A CPUID bit (kind 'cpuid'), an MSR bit (kind 'msr') or a Linux-defined flag (kind 'linux')."""

    kind: str
    leaf: int = 0  # CPUID leaf, or MSR index
    subleaf: int = 0
    register: str = ""
    bit: int = 0
    name: str = ""  # for kind 'linux': the kernel flag itself

    @classmethod
    def cpuid(cls, leaf: int | str, subleaf: int | str, register: str, bit: int | str) -> Location:
        return cls("cpuid", _int(leaf), _int(subleaf or 0), register.upper(), _int(bit))

    @classmethod
    def msr(cls, index: int | str, bit: int | str) -> Location:
        return cls("msr", _int(str(index).removeprefix("msr:")), 0, "", _int(bit))

    @classmethod
    def linux(cls, name: str) -> Location:
        return cls("linux", name=name)

    @classmethod
    def parse(cls, key: str) -> Location:
        """Inverse of ``key``."""
        if key.startswith("linux:"):
            return cls.linux(key[6:])
        if match := _CPUID_KEY.match(key):
            return cls.cpuid(match.group(1), match.group(2), match.group(3), match.group(4))
        if match := _MSR_KEY.match(key):
            return cls.msr(match.group(1), match.group(2))
        raise ValueError(f"not a feature location: {key!r}")

    @property
    def key(self) -> str:
        if self.kind == "cpuid":
            return f"cpuid:0x{self.leaf:08x}.{self.subleaf}.{self.register}.{self.bit}"
        if self.kind == "msr":
            return f"msr:0x{self.leaf:x}.{self.bit}"
        return f"linux:{self.name}"

    def describe(self) -> str:
        if self.kind == "cpuid":
            sub = f" subleaf {self.subleaf}" if self.subleaf else ""
            return f"CPUID 0x{self.leaf:x}{sub} {self.register}[{self.bit}]"
        if self.kind == "msr":
            return f"MSR 0x{self.leaf:x} bit {self.bit}"
        return "Linux-defined (no CPUID bit)"


def _int(value: int | str) -> int:
    if isinstance(value, int):
        return value
    value = value.strip()
    return int(value, 16) if value.lower().startswith("0x") else int(value)


def single_bit(mask: int) -> int | None:
    """The position of the only set bit of ``mask``, or None when it has zero or several."""
    if mask <= 0 or mask & (mask - 1):
        return None
    return mask.bit_length() - 1
