"""x86-64 psABI levels (v2, v3, v4) and micro-architecture names, through archspec.

archspec knows both in kernel flag names, so a host's flags (or the flags a guest will see)
can be placed directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from cpudb.errors import CatalogError
from cpudb.resources import data_path, data_yaml

LEVELS = ("x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4")
_ARCHSPEC_LEVELS = {"x86_64": "x86-64", "x86_64_v2": "x86-64-v2", "x86_64_v3": "x86-64-v3", "x86_64_v4": "x86-64-v4"}
_VENDORS = {"GenuineIntel": "GenuineIntel", "AuthenticAMD": "AuthenticAMD"}


@dataclass(frozen=True)
class LevelInfo:
    level: str  # x86-64, x86-64-v2, ...
    microarchitecture: str | None  # archspec's name (icelake, zen3), or None
    missing_for_next: tuple[str, ...]  # flags lacking for the next level


def _archspec():
    import archspec.cpu  # imported on demand: it loads a JSON database

    return archspec.cpu


def _partial(flags: frozenset[str], vendor: str | None):
    from archspec.cpu.detect import partial_uarch

    return partial_uarch(vendor=_VENDORS.get(vendor or "", "generic"), features=set(flags))


def level_of(flags: Iterable[str], vendor: str | None = None) -> LevelInfo:
    """The highest psABI level these kernel flags satisfy, and archspec's micro-architecture name."""
    cpu = _archspec()
    from archspec.cpu.detect import compatibility_check_for_x86_64

    info = _partial(frozenset(flags), vendor)
    targets = cpu.TARGETS
    level = "x86-64"
    for name in ("x86_64_v2", "x86_64_v3", "x86_64_v4"):
        if compatibility_check_for_x86_64(info, targets[name]):
            level = _ARCHSPEC_LEVELS[name]
    named = [
        t for t in targets.values()
        if t.vendor != "generic" and compatibility_check_for_x86_64(info, t)
    ]
    best = max(named, key=lambda t: (len(t.ancestors), len(t.features))).name if named else None
    missing: tuple[str, ...] = ()
    position = LEVELS.index(level)
    if position + 1 < len(LEVELS):
        wanted = targets[next(k for k, v in _ARCHSPEC_LEVELS.items() if v == LEVELS[position + 1])]
        missing = tuple(sorted(f for f in wanted.features if f not in info))
    return LevelInfo(level, best, missing)


@cache
def guest_systems() -> tuple[dict[str, tuple[str, ...]], str]:
    """Guest operating systems that need each level, from data/guest_os.yaml."""
    path = data_path("guest_os.yaml")
    document = data_yaml("guest_os.yaml")
    if not isinstance(document, dict) or set(document) != {"levels", "baseline"}:
        raise CatalogError(f"{path}: expected the keys 'levels' and 'baseline'")
    levels = document["levels"]
    if set(levels) != set(LEVELS[1:]) or not all(isinstance(v, list) for v in levels.values()):
        raise CatalogError(f"{path}: 'levels' must list {', '.join(LEVELS[1:])}")
    return {k: tuple(v) for k, v in levels.items()}, str(document["baseline"])


def systems_allowed(level: str) -> tuple[str, ...]:
    """The guest systems a CPU of this level can run (those needing a higher level excluded)."""
    needs, baseline = guest_systems()
    allowed = [baseline]
    for name in LEVELS[1 : LEVELS.index(level) + 1]:
        allowed += needs[name]
    return tuple(allowed)


def systems_excluded(level: str) -> tuple[str, ...]:
    needs, _ = guest_systems()
    return tuple(s for name in LEVELS[LEVELS.index(level) + 1 :] for s in needs[name])
