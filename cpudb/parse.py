"""Read host dumps (lscpu text and JSON, /proc/cpuinfo, sorted flag lists) into HostDump records.

The format is detected from the content, never from the file name. Every problem
raises DumpParseError naming the file (and the line where one is to blame).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cpudb.errors import DumpParseError

MAX_DUMP_BYTES = 8 * 1024 * 1024  # /proc/cpuinfo of a 1,000-CPU host is about 3 MB
MAX_LINE_CHARS = 64 * 1024  # the longest real Flags line is about 2.5 KB

# Suffixes that name a dump's format rather than its host.
DUMP_SUFFIXES = (
    ".sorted", ".flags-lscpu", ".lscpu", ".cpuinfo", ".txt", ".json", ".xml", ".cpuid", ".dump",
    ".domcaps", ".domcapabilities", ".caps", ".capabilities",
)

_FLAG_TOKEN = re.compile(r"^[a-z0-9_]+$")
_FLAG_WORDS = re.compile(r"[a-z0-9_]+(?: [a-z0-9_]+)*")  # a whole flag set, joined by spaces
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0e-\x1f]")  # control characters but tab, newlines, form feed
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])  # the same, as bytes of UTF-8 text
HEADER_LINE = re.compile(r"^(hostname|collected|kernel|collector|qemu|libvirt|nova)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_STACK_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_CPUID_R = re.compile(r"^\s*0x[0-9a-f]{8} 0x[0-9a-f]{2}: eax=0x", re.IGNORECASE)
_LSCPU_LINE = re.compile(r"^(\s*)([^:]+?):\s*(.*?)\s*$")
_HOST_NAME = re.compile(r"^[^\s,]{1,253}$")
_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}  # control, format (bidi, zero-width), private, unassigned

# Keys only an English lscpu prints; their absence in key: value text means another language.
_LSCPU_ENGLISH_KEYS = {"Architecture", "Vendor ID", "Model name", "Byte Order", "CPU op-mode(s)"}
# "Flags" in the util-linux translations an operator is likely to meet.
_LOCALIZED_FLAGS = {"Markierungen", "Drapeaux", "Indicadores", "Opciones", "Flaggor", "Flagi", "Vlaggen", "Bandiere", "Příznaky"}
_NON_X86 = {
    "aarch64": "aarch64",
    "arm64": "aarch64",
    "armv7l": "32-bit ARM",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
}
# The top-level lscpu section (util-linux >= 2.38) whose indented children are vulnerabilities.
_VULNERABILITY_SECTION = "Vulnerabilities"


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
class _Header:
    host: str | None = None
    collected_at: datetime | None = None
    kernel: str | None = None
    qemu: str | None = None
    libvirt: str | None = None
    nova: str | None = None


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


def host_name_from_path(path: str | Path) -> str:
    """The host name a file stands for when it carries no ``hostname:`` header."""
    name = Path(path).name
    stripped = True
    while stripped:
        stripped = False
        for suffix in DUMP_SUFFIXES:
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                stripped = True
    return name


def parse_file(path: str | Path, known_flags: frozenset[str] = frozenset()) -> HostDump:
    """Read and parse one dump file."""
    source = os.fspath(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer. The checks are on the opened file
        # (a symlink to /dev/zero passes a check of the name), and the read is bounded anyway.
        fd = os.open(source, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise DumpParseError(source, f"not a regular file ({_file_kind(info.st_mode)}); only dump files are read")
            if info.st_size > MAX_DUMP_BYTES:
                raise DumpParseError(source, f"file too large ({info.st_size / 1e6:.1f} MB; a dump is a few KB to a few MB)")
            # One read of the whole file (a short read of a regular file is its end), more only if
            # it grew since fstat; never past the bound.
            chunks, remaining, want = [], MAX_DUMP_BYTES + 1, info.st_size + 1
            while remaining > 0 and (chunk := os.read(fd, want)):
                chunks.append(chunk)
                remaining -= len(chunk)
                if len(chunk) < want:
                    break
                want = min(remaining, 1 << 20)
        finally:
            os.close(fd)
    except OSError as exc:
        raise DumpParseError(source, f"cannot read: {exc.strerror or exc}") from None
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > MAX_DUMP_BYTES:  # it grew while being read
        raise DumpParseError(source, f"file too large (over {MAX_DUMP_BYTES / 1e6:.1f} MB; a dump is a few KB to a few MB)")
    return parse_dump(data, source, known_flags=known_flags)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a file"


def parse_dump(data: bytes, source: str, known_flags: frozenset[str] = frozenset()) -> HostDump:
    """Parse one dump given as bytes; ``source`` names it in errors and decides the default host name.

    ``known_flags`` (kernel names from the flag dictionary) lets the parser rejoin flags that a
    wiki or ticket wrapped in the middle of a word.
    """
    text = _decode(data, source)
    lines = text.split("\n")
    _check_line_lengths(lines, source)
    header, body_start = _read_header(lines, source)
    body = lines[body_start:]
    fields = _parse_body(body, source, body_start, known_flags)
    if text and not text.endswith("\n") and _last_line_is_flags(body):
        raise DumpParseError(source, "truncated: the file ends inside the flags line (no final newline)", len(lines))
    _check_x86_flags(fields.flags, source)
    host = header.host or host_name_from_path(source)
    if not _HOST_NAME.match(host):
        raise DumpParseError(source, f"invalid host name {ascii(host)} (no spaces or commas, at most 253 characters)")
    hidden = () if host.isascii() and host.isprintable() else sorted(
        {f"U+{ord(c):04X}" for c in host if unicodedata.category(c) in _INVISIBLE})
    if hidden:
        # Control, bidirectional-override and zero-width characters spoof terminals and reports.
        raise DumpParseError(source, f"invalid host name {ascii(host)}: it holds invisible or control characters ({' '.join(hidden)})")
    return HostDump(
        host=host,
        source_path=source,
        source_format=fields.source_format,
        sha256=hashlib.sha256(data).hexdigest(),
        flags=fields.flags,
        **{name: getattr(fields, name) for name in FACTS},
        kernel=header.kernel,
        collected_at=header.collected_at,
        qemu_version=header.qemu,
        libvirt_version=header.libvirt,
        nova_version=header.nova,
        extra=tuple(fields.extra),
        notes=tuple(fields.notes),
        guest_features=fields.guest_features,
        guest_source=fields.guest_source,
    )


# --- text decoding and structure -------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    if not data.strip():
        raise DumpParseError(source, "empty file")
    if b"\x00" in data:
        raise DumpParseError(source, "binary data (NUL bytes); expected lscpu or /proc/cpuinfo text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DumpParseError(source, f"not UTF-8 text (invalid byte at offset {exc.start})") from None
    # The bytes test finds none in a clean dump at a tenth of the cost of the regex over the text.
    if len(data.translate(None, _CONTROL_BYTES)) != len(data) and _CONTROL_CHAR.search(text):
        raise DumpParseError(source, "binary data (control characters); expected lscpu or /proc/cpuinfo text")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_line_lengths(lines: list[str], source: str) -> None:
    if max(map(len, lines), default=0) <= MAX_LINE_CHARS:
        return
    for number, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_CHARS:
            raise DumpParseError(source, f"line is {len(line):,} characters long (not lscpu output)", number)


def _read_header(lines: list[str], source: str) -> tuple[_Header, int]:
    """Read the ``hostname:``/``collected:``/``kernel:`` lines cpudb collect writes first."""
    header = _Header()
    index = 0
    while index < len(lines):
        line = lines[index]
        if not line.strip() or line.startswith("#"):
            index += 1
            continue
        match = HEADER_LINE.match(line)
        if not match:
            break
        key, value = match.group(1).lower(), match.group(2)
        if key == "hostname":
            header.host = value
        elif key == "kernel":
            header.kernel = value or None
        elif key == "collector":
            pass  # which cpudb wrote the file: informative only
        elif key in ("qemu", "libvirt", "nova"):
            if value and not _STACK_VERSION.match(value):
                raise DumpParseError(source, f"{key}: {value!r} is not a version number such as 7.2.0", index + 1)
            setattr(header, key, value or None)
        else:
            header.collected_at = _parse_time(value, source, index + 1)
        index += 1
    return header, index


def _parse_time(value: str, source: str, line: int) -> datetime:
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DumpParseError(source, f"collected: {value!r} is not an ISO 8601 time", line) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


def _parse_body(body: list[str], source: str, offset: int, known_flags: frozenset[str]) -> _Fields:
    first = next((line.strip() for line in body if line.strip()), "")
    if not first:
        raise DumpParseError(source, "no dump after the header lines")
    from cpudb import parse_bundle

    if parse_bundle.is_bundle(body):
        return parse_bundle.parse_bundle(body, source, offset, known_flags)
    if first[0] in "{[":
        return _parse_lscpu_json("\n".join(body), source)
    if first.startswith("<"):
        # XML formats (virsh capabilities, domcapabilities, libvirt CPUID data) live in their own module.
        from cpudb.parse_xml import parse_xml_dump

        return parse_xml_dump("\n".join(body), source)
    if re.match(r"^CPU \d+:$", first) or _CPUID_R.match(first):
        from cpudb.parse_xml import parse_cpuid_r

        return parse_cpuid_r("\n".join(body), source)
    # /proc/cpuinfo keys are lower case ("model name\t: ..."), lscpu's are not ("Model name:"); tools
    # often print only some of its lines (model name and flags), without "processor".
    text = "\n".join(body)
    if _CPUINFO_KEY.search(text):
        from cpudb.parse_cpuinfo import parse_cpuinfo

        return parse_cpuinfo(body, source, offset)
    if _ANY_LSCPU_LINE.search(text):
        return _parse_lscpu_text(body, source, offset, known_flags)
    return _parse_flag_list(body, source, offset)


_CPUINFO_KEY = re.compile(r"^(processor|flags|model name|vendor_id|cpu family)[^\S\n]*:", re.MULTILINE)
_ANY_LSCPU_LINE = re.compile(r"^[^:\n]+:", re.MULTILINE)  # a line _LSCPU_LINE matches


def _last_line_is_flags(body: list[str]) -> bool:
    last = next((line for line in reversed(body) if line.strip()), "")
    return bool(re.match(r"^\s*flags\s*:", last, re.IGNORECASE))


class Memo(dict):
    """Results per distinct input text, kept while the texts kept are under ``budget`` characters
    in all (then it starts again): a fleet repeats its lines and flag sets, so each distinct one is
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
_CHECKED = Memo(4_000_000)


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


def _check_x86_flags(flags: frozenset[str], source: str) -> None:
    if flags in _CHECKED:
        return
    _check_flag_words(flags, source)
    _CHECKED.keep(flags, True)


def _check_flag_words(flags: frozenset[str], source: str) -> None:
    if not flags:
        raise DumpParseError(source, "the flags line is empty (a guest whose hypervisor hides CPUID?)")
    if {"fp", "asimd"} <= flags or "evtstrm" in flags:
        raise DumpParseError(source, "aarch64 flags (fp asimd ...): cpudb analyses x86-64 hosts only")
    if not _FLAG_WORDS.fullmatch(" ".join(flags)):  # one regex over the set, not one per flag
        bad = sorted(flag for flag in flags if not _FLAG_TOKEN.match(flag))
        raise DumpParseError(source, f"malformed flag {bad[0]!r} (flags are lower-case words)")
    if "fpu" not in flags and "lm" not in flags:
        raise DumpParseError(source, "no x86 base flags (fpu, lm) in the flags line; is this an x86-64 dump?")


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


def _non_x86(arch: str | None, source: str) -> None:
    if arch and arch.strip().lower() in _NON_X86:
        name = _NON_X86[arch.strip().lower()]
        raise DumpParseError(source, f"{name} dump: cpudb analyses x86-64 hosts only")


# --- lscpu text ----------------------------------------------------------------------------


_LSCPU_SPLITS = Memo(8_000_000)  # (indent, key, value) per distinct line, None for no match
_UNSEEN, _BLANK = object(), (0, "", "")  # not in the memo yet; a blank line


def split_lscpu_line(line: str) -> tuple[int, str, str] | None:
    """(indent, key, value) of a "Key: value" line as _LSCPU_LINE splits it, None where it does not
    match; with str methods, at a third of the cost of the regex."""
    before, colon, after = line.partition(":")
    if not colon or not before:
        return None
    key = before.strip()
    return len(before) - len(before.lstrip()) - (not key), key, after.strip()


def _parse_lscpu_text(body: list[str], source: str, offset: int, known_flags: frozenset[str]) -> _Fields:
    values: dict[str, str] = {}
    extra: list[ExtraLine] = []
    flags_line: int | None = None
    flag_chunks: list[str] = []
    section: str | None = None
    previous_key: str | None = None
    previous_extra: int | None = None
    splits = _LSCPU_SPLITS
    for number, line in enumerate(body, offset + 1):
        split = splits.get(line, _UNSEEN)
        if split is _UNSEEN:
            split = splits.keep(line, _BLANK if not line.strip() else split_lscpu_line(line))
        if split is _BLANK:
            previous_key = previous_extra = None
            continue
        if split is None:
            # A value wrapped onto the next line (lscpu at a narrow terminal, or a wiki copy).
            if previous_key == "Flags":
                flag_chunks.append(line)
            elif previous_extra is not None:
                kept = extra[previous_extra]
                extra[previous_extra] = ExtraLine(kept.kind, kept.name, f"{kept.value} {line.strip()}")
            elif previous_key is None:
                raise DumpParseError(source, f"unexpected line {line.strip()[:60]!r} in lscpu output", number)
            continue
        indent, key, value = split
        previous_extra = None
        if indent == 0:
            section = key if not value else None
        if key == "Flags":
            if flags_line is not None:
                raise DumpParseError(
                    source, f"two Flags: lines (lines {flags_line} and {number}); two dumps in one file?", number
                )
            flags_line = number
            flag_chunks = [value]
        elif key.startswith("Vulnerability ") or (section == _VULNERABILITY_SECTION and indent > 0):
            extra.append(ExtraLine("vulnerability", key.removeprefix("Vulnerability "), value))
            previous_extra = len(extra) - 1
        values.setdefault(key, value)
        previous_key = key
    _non_x86(values.get("Architecture"), source)
    if flags_line is None:
        if _looks_localized(values):
            raise DumpParseError(source, "lscpu output in another language (collect it with LC_ALL=C lscpu)")
        fields = ", ".join(repr(k) for k in list(values)[:3]) + (", ..." if len(values) > 3 else "")
        found = f"{len(values)} other field(s): {fields}" if values else "no 'Name: value' field"
        raise DumpParseError(source, f'no "Flags:" line, found {found} (is this lscpu output from an x86-64 host?)')
    return _Fields(
        source_format="lscpu",
        flags=flag_set(flag_chunks[0]) if len(flag_chunks) == 1 else frozenset(_join_flag_chunks(flag_chunks, known_flags)),
        vendor=values.get("Vendor ID") or None,
        model_name=values.get("Model name") or None,
        family=_int(values.get("CPU family")),
        model=_int(values.get("Model")),
        stepping=_int(values.get("Stepping")),
        sockets=_int(values.get("Socket(s)")),
        cores_per_socket=_int(values.get("Core(s) per socket")),
        threads_per_core=_int(values.get("Thread(s) per core")),
        hypervisor_vendor=values.get("Hypervisor vendor") or None,
        extra=extra,
    )


# Values a translated lscpu still prints untranslated: only then is a keyless file "localized".
_LSCPU_VALUE = re.compile(r"^(x86_64|i[3-6]86|GenuineIntel|AuthenticAMD|HygonGenuine)$|Endian")


def _looks_localized(values: dict[str, str]) -> bool:
    keys = values.keys()
    if not any(_LSCPU_VALUE.search(value) for value in values.values()):
        return False  # key: value text, but not lscpu at all (a YAML file, notes)
    return bool(
        _LOCALIZED_FLAGS & keys
        or any(not key.isascii() for key in keys)
        or not (_LSCPU_ENGLISH_KEYS & keys)
    )


def _join_flag_chunks(chunks: list[str], known_flags: frozenset[str]) -> list[str]:
    """Rejoin a Flags value wrapped over several lines.

    lscpu itself wraps at the terminal width in the middle of a word, and copies in
    tickets lose the spaces at line ends, so a line break may or may not separate two
    flags. The pieces either side are glued into one flag when that gives a known flag
    and one of the pieces alone is not a known flag.
    """
    tokens: list[str] = chunks[0].split()
    for chunk in chunks[1:]:
        pieces = chunk.split()
        if tokens and pieces:
            glued = tokens[-1] + pieces[0]
            if glued in known_flags and (tokens[-1] not in known_flags or pieces[0] not in known_flags):
                tokens[-1] = glued
                pieces = pieces[1:]
        tokens.extend(pieces)
    return tokens


# --- lscpu -J ------------------------------------------------------------------------------


def _parse_lscpu_json(text: str, source: str) -> _Fields:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DumpParseError(source, f"invalid or truncated JSON ({exc.msg})", exc.lineno) from None
    except RecursionError:
        raise DumpParseError(source, "JSON nested too deeply (lscpu -J nests three levels)") from None
    if not isinstance(document, dict) or not isinstance(document.get("lscpu"), list):
        raise DumpParseError(source, 'JSON without an "lscpu" list (expected lscpu -J output)')
    values: dict[str, str] = {}
    extra: list[ExtraLine] = []

    def walk(entries: list, parent: str | None, depth: int = 1) -> None:
        if depth > 8:
            raise DumpParseError(source, "JSON nested too deeply (lscpu -J nests three levels)")
        for entry in entries:
            if not isinstance(entry, dict) or "field" not in entry:
                raise DumpParseError(source, 'lscpu -J entry without "field"')
            key = str(entry["field"]).strip().rstrip(":").strip()
            data = entry.get("data")
            value = "" if data is None else str(data).strip()
            if key.startswith("Vulnerability ") or parent == _VULNERABILITY_SECTION:
                extra.append(ExtraLine("vulnerability", key.removeprefix("Vulnerability "), value))
            if key == "Flags" and key in values:
                raise DumpParseError(source, "two Flags fields; two dumps in one file?")
            values.setdefault(key, value)
            children = entry.get("children")
            if isinstance(children, list):
                walk(children, key, depth + 1)

    walk(document["lscpu"], None)
    _non_x86(values.get("Architecture"), source)
    if "Flags" not in values:
        if _looks_localized(values):
            raise DumpParseError(source, "lscpu -J output in another language (collect it with LC_ALL=C lscpu -J)")
        raise DumpParseError(source, 'no "Flags" field (is this lscpu output from an x86-64 host?)')
    return _Fields(
        source_format="lscpu-json",
        flags=frozenset(values["Flags"].split()),
        vendor=values.get("Vendor ID") or None,
        model_name=values.get("Model name") or None,
        family=_int(values.get("CPU family")),
        model=_int(values.get("Model")),
        stepping=_int(values.get("Stepping")),
        sockets=_int(values.get("Socket(s)")),
        cores_per_socket=_int(values.get("Core(s) per socket")),
        threads_per_core=_int(values.get("Thread(s) per core")),
        hypervisor_vendor=values.get("Hypervisor vendor") or None,
        extra=extra,
    )


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
