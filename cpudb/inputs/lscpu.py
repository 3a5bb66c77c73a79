"""lscpu output, as text ("Flags: ...", also wrapped or from util-linux 2.38's sections) and as
JSON (lscpu -J, nested or flat)."""

from __future__ import annotations

import json
import re

from cpudb.errors import DumpParseError
from cpudb.inputs.records import ExtraLine, Memo, _Fields, _int, flag_set


_LSCPU_LINE = re.compile(r"^(\s*)([^:]+?):\s*(.*?)\s*$")


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


def _non_x86(arch: str | None, source: str) -> None:
    if arch and arch.strip().lower() in _NON_X86:
        name = _NON_X86[arch.strip().lower()]
        raise DumpParseError(source, f"{name} dump: cpudb analyses x86-64 hosts only")


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
