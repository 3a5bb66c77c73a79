"""The reference CPUs cpudb ships (data/reference_cpus/references.json, built by
`cpudb catalog build`): read and checked for the keys their loader needs."""

from __future__ import annotations

import json
from pathlib import Path

from cpudb.errors import CatalogError


def read_references(path: Path) -> list[dict]:
    """The generated reference CPUs, checked for the keys the loader needs."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        references = document["references"]
    except (OSError, ValueError, KeyError) as exc:
        raise CatalogError(f"{path}: not a reference CPU file ({exc})") from None
    wanted = {"id", "name", "vendor", "launched", "microarchitecture", "missing", "evidence", "family", "model",
              "stepping", "model_name", "flags", "inferred", "removed", "differences", "msr_features"}
    for item in references:
        if set(item) != wanted:
            raise CatalogError(f"{path}: reference {item.get('id')}: keys must be exactly {sorted(wanted)}")
    return references
