"""Synthetic fleets for tests, benchmarks and demonstrations, made from real dumps.

Each generated host is a real dump (the sample fleet by default) under a new host name,
sometimes varied the way real fleets vary: TSX removed by a microcode update, a flag hidden
by a BIOS setting, an older kernel's spellings, or the dump taken inside a guest. The mix is
seeded, so the same arguments always give the same files.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cpudb.resources import data_path

# Share of hosts that get each variation.
TSX_REMOVED = 0.15
BIOS_HIDDEN = 0.05
OLD_KERNEL = 0.05
GUEST_DUMP = 0.02
BIOS_HIDEABLE = ("erms", "fsrm", "avx512_vnni", "pku", "la57")
_FLAGS_LINE = re.compile(r"(?m)^(\s*[Ff]lags\s*:\s*)(.*)$")


@dataclass(frozen=True)
class Source:
    name: str  # short profile name used in generated host names
    text: str


def sources(folder: Path | None = None) -> list[Source]:
    """The real dumps generated hosts are copies of (the sample fleet by default)."""
    folder = Path(folder) if folder else data_path("hosts")
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        name = path.name.split(".")[0]
        name = name.removeprefix("cmp-").rsplit("-", 1)[0] if name.startswith("cmp-") else name
        found.append(Source(name, path.read_text(encoding="utf-8")))
    return found


def _vary(text: str, rng: random.Random) -> tuple[str, str]:
    """A variation of one dump, and a word for it (for the host name)."""
    match = _FLAGS_LINE.search(text)
    if not match:
        return text, "plain"
    flags = match.group(2).split()
    roll = rng.random()
    kind = "plain"
    if roll < TSX_REMOVED:
        if "hle" in flags:
            flags = [f for f in flags if f not in ("hle", "rtm")]
            kind = "notsx"
    elif roll < TSX_REMOVED + BIOS_HIDDEN:
        hideable = [f for f in BIOS_HIDEABLE if f in flags]
        if hideable:
            hidden = rng.choice(hideable)
            flags = [f for f in flags if f != hidden]
            kind = "bios"
    elif roll < TSX_REMOVED + BIOS_HIDDEN + OLD_KERNEL:
        flags = [f for f in flags if f not in ("pku", "ospke", "wbnoinvd", "md_clear")] + ["eagerfpu"]
        kind = "oldkernel"
    elif roll < TSX_REMOVED + BIOS_HIDDEN + OLD_KERNEL + GUEST_DUMP:
        flags = [f for f in flags if f not in ("vmx", "svm", "monitor", "est", "tm2")] + ["hypervisor"]
        kind = "guest"
    return text[: match.start(2)] + " ".join(flags) + text[match.end(2) :], kind


def generate(count: int, out: Path, seed: int = 1, source_folder: Path | None = None,
             vendors: Sequence[str] | None = None) -> list[Path]:
    """Write ``count`` dump files into ``out``; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    pool = sources(source_folder)
    if vendors:
        pool = [s for s in pool if any(v in s.text for v in vendors)] or pool
    width = len(str(count))
    paths = []
    for index in range(count):
        source = pool[index % len(pool)]
        text, kind = _vary(source.text, rng)
        host = f"syn-{source.name}-{index:0{width}d}" + ("" if kind == "plain" else f"-{kind}")
        path = out / f"{host}.dump"
        path.write_text(f"hostname: {host}\n{text}", encoding="utf-8")
        paths.append(path)
    return paths
