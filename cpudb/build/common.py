"""What every generated data file carries: how to regenerate it, and an atomic JSON writer."""

from __future__ import annotations

import json
from pathlib import Path

GENERATED_BY = (
    "cpudb catalog build --reference ../shared/reference: generated, do not edit; "
    "change data/flag_overrides.yaml or data/proxmox_models.yaml and regenerate"
)


def write_json(path: Path, document: dict) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    temp.replace(path)
