"""A host's CPU generation from its CPUID signature (data/cpu_signatures.yaml), not from its flags.

Flags say what a host shows, which BIOS settings and kernels change; the vendor, family, model
and stepping say what the CPU is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from cpudb.errors import CatalogError
from cpudb.resources import data_path, data_yaml


def short_cpu(name: str) -> str:
    """'Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz' -> 'Xeon Gold 6230'; 'AMD EPYC 7742 64-Core Processor' -> 'EPYC 7742'."""
    text = re.sub(r"\((R|TM|tm)\)", "", name)
    text = re.sub(r"\s+@.*$", "", text)
    text = re.sub(r"\b(Intel|AMD|CPU|Processor|\d+-[Cc]ore)\b", "", text)
    return re.sub(r"\s+", " ", text).strip() or name


def cpu_label(model_name: str | None, stepping: int | None) -> str:
    """How every table names a CPU model: 'Xeon Gold 6230, stepping 7'."""
    name = short_cpu(model_name or "unknown CPU")
    return f"{name}, stepping {stepping}" if stepping is not None else name


@dataclass(frozen=True)
class Generation:
    name: str  # "Cascade Lake", "Milan (Zen 3)"
    archspec: str | None  # archspec's name where it has one


@cache
def _table() -> dict[tuple[str, int, int], list[tuple[range | None, Generation]]]:
    path = data_path("cpu_signatures.yaml")
    table: dict[tuple[str, int, int], list[tuple[range | None, Generation]]] = {}
    try:
        for row in data_yaml("cpu_signatures.yaml")["signatures"]:
            if set(row) - {"vendor", "family", "models", "steppings", "name", "archspec"}:
                raise KeyError(f"unknown keys in {row}")
            steppings = None
            if "steppings" in row:
                low, high = (int(p) for p in str(row["steppings"]).split("-"))
                steppings = range(low, high + 1)
            generation = Generation(str(row["name"]), row.get("archspec"))
            for model in row["models"]:
                table.setdefault((str(row["vendor"]), int(row["family"]), int(model)), []).append((steppings, generation))
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{path}: expected 'signatures' rows with vendor, family, models, name ({exc})") from None
    return table


def generation(vendor: str | None, family: int | None, model: int | None, stepping: int | None) -> Generation | None:
    """The server generation of a CPUID signature, or None when the table does not know it."""
    if vendor is None or family is None or model is None:
        return None
    for steppings, found in _table().get((vendor, family, model), ()):
        if steppings is None or (stepping is not None and stepping in steppings):
            return found
    return None


def describe(vendor: str | None, family: int | None, model: int | None, stepping: int | None,
             flag_guess: str | None) -> str:
    """'Cascade Lake (cascadelake)' from the signature, else archspec's guess from flags, said so."""
    found = generation(vendor, family, model, stepping)
    if found:
        plain = "".join(c for c in found.name.lower() if c.isalnum())
        if found.archspec and found.archspec.replace("_", "") not in plain:
            return f"{found.name} ({found.archspec})"
        return found.name
    if flag_guess:
        return f"{flag_guess} (guessed from flags)"
    return "unknown"
