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


# --- raw CPUID dumps ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuidDump:
    """The CPUID leaves of one logical CPU (and MSR values when the dump has them)."""

    registers: dict[tuple[int, int, str], int]  # (leaf, subleaf, register) -> value
    msrs: dict[int, int]

    def bit(self, leaf: int, subleaf: int, register: str, bit: int) -> bool:
        value = self.registers.get((leaf, subleaf, register))
        if value is None and subleaf:
            return False
        if value is None:
            value = self.registers.get((leaf, 0, register), 0)
        return bool(value >> bit & 1)

    def is_set(self, location: Location) -> bool:
        if location.kind == "cpuid":
            return self.bit(location.leaf, location.subleaf, location.register, location.bit)
        if location.kind == "msr" and location.leaf in self.msrs:
            return bool(self.msrs[location.leaf] >> location.bit & 1)
        return False

    @property
    def vendor(self) -> str:
        return _text(self.registers.get((0, 0, r), 0) for r in ("EBX", "EDX", "ECX"))

    @property
    def signature(self) -> tuple[int, int, int]:
        """(family, model, stepping) decoded the way the kernel does."""
        eax = self.registers.get((1, 0, "EAX"), 0)
        family = (eax >> 8) & 0xF
        model = (eax >> 4) & 0xF
        if family == 0xF:
            family += (eax >> 20) & 0xFF
        if family >= 6:
            model += ((eax >> 16) & 0xF) << 4
        return family, model, eax & 0xF

    @property
    def model_name(self) -> str:
        values = [self.registers.get((leaf, 0, r), 0) for leaf in (0x80000002, 0x80000003, 0x80000004)
                  for r in REGISTERS]
        return " ".join(_text(values).split())


def _text(values) -> str:
    return b"".join(int(v).to_bytes(4, "little") for v in values).split(b"\0")[0].decode("ascii", "replace")


def read_libvirt_cpudata(root, source: str) -> CpuidDump:
    """libvirt's test data form: <cpudata arch='x86'><cpuid eax_in=... ecx_in=... eax=... .../>."""
    registers: dict[tuple[int, int, str], int] = {}
    msrs: dict[int, int] = {}
    for element in root.iter("cpuid"):
        try:
            leaf = int(element.get("eax_in"), 16)
            subleaf = int(element.get("ecx_in", "0"), 16)
            for register in REGISTERS:
                registers[(leaf, subleaf, register)] = int(element.get(register.lower(), "0"), 16)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: <cpuid> element with a missing or malformed value") from None
    for element in root.iter("msr"):
        try:
            msrs[int(element.get("index"), 16)] = (int(element.get("edx", "0"), 16) << 32) | int(element.get("eax", "0"), 16)
        except (TypeError, ValueError):
            raise ValueError(f"{source}: <msr> element with a missing or malformed value") from None
    if not registers:
        raise ValueError(f"{source}: no <cpuid> leaves")
    return CpuidDump(registers, msrs)


_CPUID_R_LINE = re.compile(
    r"^\s*(0x[0-9a-f]+)\s+(0x[0-9a-f]+):\s*eax=(0x[0-9a-f]+)\s+ebx=(0x[0-9a-f]+)\s+ecx=(0x[0-9a-f]+)\s+edx=(0x[0-9a-f]+)\s*$",
    re.IGNORECASE,
)


def read_cpuid_r(text: str) -> CpuidDump:
    """The output of `cpuid -r` (Todd Allen's cpuid): the leaves of the first CPU listed."""
    registers: dict[tuple[int, int, str], int] = {}
    seen_cpu = False
    for line in text.splitlines():
        if re.match(r"^\s*CPU\s+\d+:", line):
            if seen_cpu:
                break
            seen_cpu = True
            continue
        match = _CPUID_R_LINE.match(line)
        if match:
            leaf, subleaf = int(match.group(1), 16), int(match.group(2), 16)
            for register, value in zip(REGISTERS, match.groups()[2:]):
                registers[(leaf, subleaf, register)] = int(value, 16)
    if not registers:
        raise ValueError("no 'LEAF SUBLEAF: eax=... ebx=... ecx=... edx=...' lines")
    return CpuidDump(registers, {})
