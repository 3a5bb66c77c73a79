"""Locate the named queries, report templates and catalog data.

A wheel carries them under ``cpudb/_resources``; a source checkout (and an editable
install) reads them from the repository's top-level folders. Nothing depends on the
current directory.
"""

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def resource_dir(name: str) -> Path:
    """Return the folder ``name`` (``queries``, ``data`` or ``reports/templates``)."""
    for base in (_PACKAGE_DIR / "_resources", _PACKAGE_DIR.parent):
        candidate = base / name
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cpudb resource folder {name!r} is missing from the installation")


def data_path(*parts: str) -> Path:
    return resource_dir("data").joinpath(*parts)


def load_yaml(text: str):
    """Parse YAML with the safe loader, in C when PyYAML was built with libyaml (ten times faster
    than the Python one: targets.yaml alone cost a fifth of a computed baseline)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
