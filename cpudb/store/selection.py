"""Host selections: the one parser every command (and ``make report HOSTS=``) uses.

A selection is a comma- or space-separated list of items:

- ``cmp-rome-01``   an exact host name
- ``cmp-*``         a shell glob
- ``@rome``         a group from the inventory file (name -> list of items)
- ``!cmp-rome-02``  exclude what the pattern matches (applied after the includes)
- ``ref:genoa``     a reference CPU; ``ref:genoa*8`` counts it as 8 planned hosts

An empty selection means every (non-reference) host.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import NamedTuple
from pathlib import Path

from cpudb.errors import SelectionError, UnknownHostError

_SPLIT = re.compile(r"[\s,]+")
_REFERENCE = re.compile(r"^ref:([a-z0-9][a-z0-9_.-]*)(?:\*(\d+))?$")
_GLOB_CHARS = set("*?[")


class Selection(NamedTuple):
    """A resolved selection: real host names, then reference CPUs with their planned counts."""

    text: str
    hosts: tuple[str, ...]
    references: tuple[tuple[str, int], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.hosts and not self.references

    def describe(self) -> str:
        return self.text.strip() or "all hosts"


def split_items(text: str) -> list[str]:
    return [item for item in _SPLIT.split(text.strip()) if item]


def load_inventory(path: Path) -> dict[str, list[str]]:
    """Read group definitions: a YAML mapping of group name to a list of selection items."""
    import yaml  # only selections with @group need it

    from cpudb.resources import load_yaml

    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SelectionError(f"{path}: cannot read the inventory ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SelectionError(f"{path}: the inventory is not UTF-8 text (invalid byte at offset {exc.start})") from None
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise SelectionError(f"{path}: not a valid inventory ({problem})") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, dict) or not all(
        isinstance(name, str) and isinstance(items, list) and all(isinstance(i, str) for i in items)
        for name, items in groups.items()
    ):
        raise SelectionError(f"{path}: expected 'groups:' mapping each group name to a list of host patterns")
    return groups


def resolve(
    text: str,
    known_hosts: Sequence[str],
    groups: dict[str, list[str]] | None = None,
    known_references: Sequence[str] = (),
) -> Selection:
    """Resolve selection ``text`` against the known host names (kept in their given order)."""
    includes: list[str] = []
    excludes: list[str] = []
    references: dict[str, int] = {}
    for item in _expand_groups(split_items(text), groups or {}, ()):
        target = excludes if item.startswith("!") else includes
        item = item.removeprefix("!")
        if not item:
            raise SelectionError("'!' must be followed by a host pattern")
        reference = _REFERENCE.match(item)
        if reference:
            name, count = reference.group(1), int(reference.group(2) or 1)
            if f"ref:{name}" not in known_references:
                raise SelectionError(unknown_message("reference CPU", f"ref:{name}", known_references))
            if count < 1:
                raise SelectionError(f"{item}: a planned host count must be at least 1")
            if target is excludes:
                references.pop(f"ref:{name}", None)
            else:
                references[f"ref:{name}"] = references.get(f"ref:{name}", 0) + count
            continue
        if item.startswith("ref:"):
            raise SelectionError(f"{item}: write a reference CPU as ref:<id> or ref:<id>*<count>")
        target.append(item)

    host_set = set(known_hosts)
    if includes:
        chosen: set[str] = set()
        for pattern in includes:
            matched = _match(pattern, known_hosts, host_set)
            if not matched:
                raise _no_match(pattern, known_hosts)
            chosen.update(matched)
    elif references:
        chosen = set()
    else:
        chosen = set(host_set)
    for pattern in excludes:
        matched = _match(pattern, known_hosts, host_set)
        if not matched:
            raise _no_match(pattern, known_hosts)
        chosen.difference_update(matched)
    hosts = tuple(host for host in known_hosts if host in chosen)
    selection = Selection(text, hosts, tuple(sorted(references.items())))
    if selection.is_empty:
        if not known_hosts:
            raise SelectionError("the database holds no hosts (run 'cpudb ingest DUMPS...' first)")
        raise SelectionError(f"selection {text.strip()!r} leaves no hosts")
    return selection


# A selection item list no real inventory reaches; a "group bomb" (each group naming the one
# before several times) would otherwise grow without bound.
MAX_EXPANDED_ITEMS = 200_000


def _expand_groups(items: list[str], groups: dict[str, list[str]], stack: tuple[str, ...],
                   memo: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """Items with every @group replaced by its members: each group is expanded once (memoized) and
    its members kept once each, in order."""
    memo = {} if memo is None else memo
    expanded: list[str] = []
    for item in items:
        negate = item.startswith("!")
        name = item.removeprefix("!")
        if not name.startswith("@"):
            expanded.append(item)
            continue
        group = name[1:]
        if group not in groups:
            raise SelectionError(unknown_message("group", f"@{group}", [f"@{g}" for g in groups]))
        if group in stack:
            raise SelectionError(f"group @{group} includes itself (via {' -> '.join('@' + g for g in stack)})")
        if group not in memo:
            memo[group] = tuple(dict.fromkeys(_expand_groups(groups[group], groups, stack + (group,), memo)))
        members = memo[group]
        if negate:
            expanded.extend(m if m.startswith("!") else "!" + m for m in members)
        else:
            expanded.extend(members)
        if len(expanded) > MAX_EXPANDED_ITEMS:
            raise SelectionError(f"group @{group} expands to more than {MAX_EXPANDED_ITEMS:,} items: "
                                 "check the inventory for groups that repeat each other")
    return expanded


def _match(pattern: str, known_hosts: Sequence[str], host_set: set[str]) -> list[str]:
    if not _GLOB_CHARS & set(pattern):
        return [pattern] if pattern in host_set else []
    return fnmatch.filter(known_hosts, pattern)


def _no_match(pattern: str, known_hosts: Sequence[str]) -> SelectionError:
    if not _GLOB_CHARS & set(pattern):
        return UnknownHostError(unknown_message("host", pattern, known_hosts))
    return SelectionError(unknown_message("host pattern", pattern, known_hosts, verb="matches no host"))


def unknown_message(what: str, name: str, known: Sequence[str], verb: str = "is not known") -> str:
    import difflib  # only a misspelt name needs it

    close = difflib.get_close_matches(name.replace("*", ""), list(known), n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    if not known:
        hint = f" (there is no {what} at all)"
    return f"{what} {name!r} {verb}{hint}"
