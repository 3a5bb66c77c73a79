"""Build data/reference_cpus/references.json: one CPU profile per server generation, from evidence.

data/reference_cpus/generations.yaml lists the generations and, for each, its evidence: raw
CPUID dumps (decoded through the flag dictionary) and bare-metal dumps. The first evidence is
the primary one; a flag added beyond it must be listed under `inferred` with the reason, and
every difference in visible guest features between the primary and another evidence must be
explained under `differences`, or the build fails. A generation without evidence is written
as missing, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cpudb.catalog.cpuid import read_libvirt_cpudata
from cpudb.catalog.dictionary import VENDOR_GROUPS, Catalog
from cpudb.catalog.libvirt_map import parse_xml_file
from cpudb.catalog.references import read_references  # noqa: F401 - the reader beside the writer
from cpudb.errors import CatalogError
from cpudb.inputs.decode import decode
from cpudb.inputs.parse import parse_file

REFERENCES_FILE = "references.json"
GENERATIONS_FILE = "generations.yaml"
_GENERATION_KEYS = {"id", "name", "vendor", "launched", "microarchitecture", "evidence", "inferred", "removed", "differences"}


@dataclass(frozen=True)
class Evidence:
    source: str  # "cpuid:FILE" or "fixture:FILE"
    vendor: str
    family: int | None
    model: int | None
    stepping: int | None
    model_name: str
    flags: frozenset[str]
    msr_features: frozenset[str]


def _evidence(item: dict, reference: Path, fixtures: Path, catalog: Catalog, where: str) -> Evidence:
    if set(item) == {"cpuid"}:
        path = reference / "cpuid-dumps" / item["cpuid"]
        try:
            dump = read_libvirt_cpudata(parse_xml_file(path), str(path))
        except ValueError as exc:
            raise CatalogError(str(exc)) from None
        decoded = decode(dump, catalog)
        return Evidence(f"cpuid:{item['cpuid']}", decoded.vendor, decoded.family, decoded.model, decoded.stepping,
                        decoded.model_name, decoded.flags, decoded.msr_features)
    if set(item) == {"fixture"}:
        dump = parse_file(fixtures / item["fixture"])
        if dump.is_guest:
            raise CatalogError(f"{where}: {item['fixture']} was taken inside a guest; references need bare metal")
        return Evidence(f"fixture:{item['fixture']}", dump.vendor or "", dump.family, dump.model, dump.stepping,
                        dump.model_name or "", dump.flags, frozenset())
    raise CatalogError(f"{where}: evidence must be {{cpuid: FILE}} or {{fixture: FILE}}, not {item}")


def _visible_features(flags: frozenset[str], vendor: str, catalog: Catalog) -> dict[str, str]:
    """The guest features these flags show that current kernels print, with a kernel name for each."""
    group = VENDOR_GROUPS.get(vendor, "intel")
    rows = {row[0]: row for row in catalog.feature_rows()}
    shown: dict[str, str] = {}
    for flag, vendor_group, feature, current in catalog.flag_features():
        if flag not in flags or vendor_group not in ("any", group):
            continue
        row = rows.get(feature)
        visible = row and (row[7] if group == "intel" else row[8])
        if visible and row[1] in ("guest", "unmigratable"):
            shown.setdefault(feature, row[4] or flag)
    return shown


def build_references(data_dir: Path, reference: Path, fixtures: Path, catalog: Catalog) -> list[dict]:
    path = data_dir / "reference_cpus" / GENERATIONS_FILE
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    results = []
    problems = []
    for number, generation in enumerate(document["generations"], 1):
        where = f"{path.name}: generation {generation.get('id', number)}"
        if set(generation) != _GENERATION_KEYS:
            raise CatalogError(f"{where}: keys must be exactly {sorted(_GENERATION_KEYS)}")
        inferred = {str(k): str(v) for k, v in (generation["inferred"] or {}).items()}
        removed = {str(k): str(v) for k, v in (generation["removed"] or {}).items()}
        explained = {str(k): str(v) for k, v in (generation["differences"] or {}).items()}
        base = {k: generation[k] for k in ("id", "name", "vendor", "launched", "microarchitecture")}
        if not generation["evidence"]:
            results.append({**base, "missing": True, "evidence": [], "family": None, "model": None,
                            "stepping": None, "model_name": "", "flags": [], "inferred": {}, "removed": {},
                            "differences": [], "msr_features": []})
            continue
        evidence = [_evidence(item, reference, fixtures, catalog, where) for item in generation["evidence"]]
        primary = evidence[0]
        if any(e.vendor != generation["vendor"] for e in evidence):
            raise CatalogError(f"{where}: evidence vendors {[e.vendor for e in evidence]} are not {generation['vendor']}")
        absent = set(removed) - primary.flags
        if absent:
            raise CatalogError(f"{where}: removed flag(s) {sorted(absent)} are not in the primary evidence")
        flags = (primary.flags | frozenset(inferred)) - frozenset(removed)
        ours = _visible_features(flags, primary.vendor, catalog)
        differences = []
        for other in evidence[1:]:
            theirs = _visible_features(other.flags, other.vendor, catalog)
            for feature in sorted(set(ours) ^ set(theirs)):
                name = ours.get(feature) or theirs[feature]
                reason = explained.get(name)
                if reason is None:
                    problems.append(f"{where}: {name} is {'only in the reference' if feature in ours else 'only in ' + other.source}, unexplained")
                    continue
                differences.append({"flag": name, "in_reference": feature in ours, "other": other.source, "reason": reason})
        unused = set(explained) - {d["flag"] for d in differences}
        if unused:
            problems.append(f"{where}: differences explained but not found: {', '.join(sorted(unused))}")
        results.append(
            {
                **base,
                "missing": False,
                "evidence": [e.source for e in evidence],
                "family": primary.family,
                "model": primary.model,
                "stepping": primary.stepping,
                "model_name": primary.model_name,
                "flags": sorted(flags),
                "inferred": inferred,
                "removed": removed,
                "differences": differences,
                "msr_features": sorted(primary.msr_features),
            }
        )
    if problems:
        raise CatalogError("reference CPUs do not agree with their evidence: " + "; ".join(problems))
    return results


def write_references(data_dir: Path, reference: Path, fixtures: Path, catalog: Catalog) -> int:
    from cpudb.build.common import GENERATED_BY, write_json

    references = build_references(data_dir, reference, fixtures, catalog)
    write_json(
        data_dir / "reference_cpus" / REFERENCES_FILE,
        {"generated_by": GENERATED_BY + "; from data/reference_cpus/generations.yaml and its evidence",
         "references": references},
    )
    return sum(1 for r in references if not r["missing"])
