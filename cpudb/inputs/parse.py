"""Read host dumps (lscpu text and JSON, /proc/cpuinfo, sorted flag lists) into HostDump records.

The format is detected from the content, never from the file name. Every problem
raises DumpParseError naming the file (and the line where one is to blame).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cpudb.errors import DumpParseError
from cpudb.inputs.flaglist import _parse_flag_list
from cpudb.inputs.lscpu import _parse_lscpu_json, _parse_lscpu_text
from cpudb.inputs.records import (  # noqa: F401 - ExtraLine and HostDump are read from here too
    _FLAG_TOKEN, FACTS, ExtraLine, HostDump, Memo, _Fields,
)

MAX_DUMP_BYTES = 8 * 1024 * 1024  # /proc/cpuinfo of a 1,000-CPU host is about 3 MB
MAX_LINE_CHARS = 64 * 1024  # the longest real Flags line is about 2.5 KB

# Suffixes that name a dump's format rather than its host.
DUMP_SUFFIXES = (
    ".sorted", ".flags-lscpu", ".lscpu", ".cpuinfo", ".txt", ".json", ".xml", ".cpuid", ".dump",
    ".domcaps", ".domcapabilities", ".caps", ".capabilities",
)

_FLAG_WORDS = re.compile(r"[a-z0-9_]+(?: [a-z0-9_]+)*")  # a whole flag set, joined by spaces
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0e-\x1f]")  # control characters but tab, newlines, form feed
_CONTROL_BYTES = bytes([*range(0x00, 0x09), *range(0x0E, 0x20)])  # the same, as bytes of UTF-8 text
HEADER_LINE = re.compile(r"^(hostname|collected|kernel|collector|qemu|libvirt|nova)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_STACK_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_CPUID_R = re.compile(r"^\s*0x[0-9a-f]{8} 0x[0-9a-f]{2}: eax=0x", re.IGNORECASE)
_HOST_NAME = re.compile(r"^[^\s,]{1,253}$")
_INVISIBLE = {"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"}  # control, format (bidi, zero-width), private, unassigned


@dataclass
class _Header:
    host: str | None = None
    collected_at: datetime | None = None
    kernel: str | None = None
    qemu: str | None = None
    libvirt: str | None = None
    nova: str | None = None


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
    from cpudb.inputs import bundle

    if bundle.is_bundle(body):
        # A bundle's sections are dumps themselves: each is read by this function again.
        return bundle.parse_bundle(body, source, offset, known_flags, _parse_body)
    if first[0] in "{[":
        return _parse_lscpu_json("\n".join(body), source)
    if first.startswith("<"):
        # XML formats (virsh capabilities, domcapabilities, libvirt CPUID data) live in their own module.
        from cpudb.inputs.xml import parse_xml_dump

        return parse_xml_dump("\n".join(body), source)
    if re.match(r"^CPU \d+:$", first) or _CPUID_R.match(first):
        from cpudb.inputs.xml import parse_cpuid_r

        return parse_cpuid_r("\n".join(body), source)
    # /proc/cpuinfo keys are lower case ("model name\t: ..."), lscpu's are not ("Model name:"); tools
    # often print only some of its lines (model name and flags), without "processor".
    text = "\n".join(body)
    if _CPUINFO_KEY.search(text):
        from cpudb.inputs.cpuinfo import parse_cpuinfo

        return parse_cpuinfo(body, source, offset)
    if _ANY_LSCPU_LINE.search(text):
        return _parse_lscpu_text(body, source, offset, known_flags)
    return _parse_flag_list(body, source, offset)


_CPUINFO_KEY = re.compile(r"^(processor|flags|model name|vendor_id|cpu family)[^\S\n]*:", re.MULTILINE)
_ANY_LSCPU_LINE = re.compile(r"^[^:\n]+:", re.MULTILINE)  # a line _LSCPU_LINE matches


def _last_line_is_flags(body: list[str]) -> bool:
    last = next((line for line in reversed(body) if line.strip()), "")
    return bool(re.match(r"^\s*flags\s*:", last, re.IGNORECASE))


_CHECKED = Memo(4_000_000)


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


# --- lscpu text ----------------------------------------------------------------------------


# --- lscpu -J ------------------------------------------------------------------------------


