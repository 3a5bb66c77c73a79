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


# The curated YAML files cpudb reads on every analysis, parsed at build time into one JSON file
# with each source's digest (`cpudb catalog build` writes it). A source whose digest differs, as
# after a hand edit, is parsed from YAML instead, so the mirror can be stale but never wrong.
YAML_MIRROR = "yaml-mirror.json"
MIRRORED_YAML = ("targets.yaml", "flag_families.yaml", "kernel_blind_spots.yaml", "kvm_given.yaml",
                 "cpu_signatures.yaml", "guest_os.yaml")


@cache
def _yaml_mirror() -> dict:
    import json

    try:
        return json.loads(data_path(YAML_MIRROR).read_bytes())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def data_yaml(name: str):
    """The document of data/``name`` (YAML), from the build-time mirror when it matches the file;
    a file that cannot be read or parsed is a CatalogError naming it."""
    import hashlib

    from cpudb.errors import CatalogError

    path = data_path(name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from None
    entry = _yaml_mirror().get(name)
    if isinstance(entry, dict) and entry.get("sha256") == hashlib.sha256(data).hexdigest():
        return entry["document"]
    import yaml

    try:
        return load_yaml(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
