"""Families of kernel flags (data/flag_families.yaml): how reports group flags, which families a
workload notices (notable) and which are security features (speculation controls, MDS, SSB)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from cpudb.errors import CatalogError
from cpudb.resources import data_path, load_yaml


@dataclass(frozen=True)
class Family:
    name: str
    notable: bool
    security: bool
    patterns: tuple[str, ...]


@cache
def families() -> tuple[Family, ...]:
    import yaml

    path = data_path("flag_families.yaml")
    document = load_yaml(path.read_text(encoding="utf-8"))
    try:
        raw = document["families"]
        found = tuple(
            Family(str(f["name"]), bool(f["notable"]), bool(f.get("security", False)), tuple(str(p) for p in f["patterns"]))
            for f in raw
            if {"name", "notable", "patterns"} <= set(f) <= {"name", "notable", "security", "patterns"}
        )
    except (KeyError, TypeError) as exc:
        raise CatalogError(f"{path}: expected 'families' with name, notable and patterns ({exc})") from None
    if len(found) != len(raw) or not found or found[-1].patterns != ("*",):
        raise CatalogError(
            f"{path}: every family needs name, notable, patterns (and may say security); the last must be '*'"
        )
    return found


@cache
def family_of(flag: str) -> Family:
    return next(f for f in families() if any(fnmatch.fnmatchcase(flag, p) for p in f.patterns))


def security_first(flags: Iterable[str]) -> tuple[str, ...]:
    """The flags sorted with the security ones first."""
    return tuple(sorted(flags, key=lambda f: (not family_of(f).security, f)))


def notable_groups(flags: Iterable[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(family, flags) for the notable families among ``flags``, in file order."""
    grouped: dict[str, list[str]] = {}
    for flag in sorted(flags):
        family = family_of(flag)
        if family.notable:
            grouped.setdefault(family.name, []).append(flag)
    order = [f.name for f in families()]
    return tuple((name, tuple(grouped[name])) for name in order if name in grouped)
