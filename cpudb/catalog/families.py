"""Families of kernel flags (data/flag_families.yaml): how reports group flags, which families a
workload notices (notable) and which are security features (speculation controls, MDS, SSB)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from cpudb.errors import CatalogError
from cpudb.resources import data_path, data_yaml


@dataclass(frozen=True)
class Family:
    name: str
    notable: bool
    security: bool
    patterns: tuple[str, ...]


@cache
def families() -> tuple[Family, ...]:
    path = data_path("flag_families.yaml")
    document = data_yaml("flag_families.yaml")
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
def _matchers() -> tuple[tuple[re.Pattern, Family], ...]:
    """One regex per family for all its patterns: a flag is matched against each family once,
    and no shell pattern is translated twice."""
    return tuple((re.compile("|".join(fnmatch.translate(p) for p in f.patterns)), f) for f in families())


@cache
def family_of(flag: str) -> Family:
    return next(f for matcher, f in _matchers() if matcher.match(flag))


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
