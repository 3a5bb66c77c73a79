"""The package layout follows the pipeline (issue 15): imports go one way, from the command line
down to the catalog, and the build-time generators stay out of the runtime."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "cpudb"
# Lower stages never import higher ones. The base modules (errors, resources, queries, files and
# the package itself) sit under every stage; the build tools may import any stage, and only the
# command line (their commands) and the tests import them.
STAGES = {"base": 0, "catalog": 1, "inputs": 2, "store": 3, "analysis": 4, "outputs": 5, "cli": 6}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """Every cpudb module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "cpudb":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "cpudb"}
    return {name for name in found if name in MODULES}


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in STAGES | {"build": 0}) else "base"


def test_every_module_is_in_a_stage_package_or_the_base():
    loose = {m for m in MODULES if _stage(m) == "base"}
    assert loose == {"cpudb", "cpudb.__main__", "cpudb.errors", "cpudb.resources", "cpudb.queries", "cpudb.files"}


def test_the_import_graph_has_no_cycle():
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(GRAPH[module]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_imports_follow_the_stage_order():
    against = []
    for module, deps in GRAPH.items():
        here = _stage(module)
        for dep in deps:
            there = _stage(dep)
            if here == "build" or there == "build" or dep in ("cpudb", "cpudb.__main__"):
                continue
            if module == "cpudb.__main__":
                continue
            if STAGES[there] > STAGES[here]:
                against.append(f"{module} ({here}) imports {dep} ({there})")
    assert against == []


def test_the_runtime_never_imports_the_build_tools():
    # Only the commands that run them (cpudb catalog build) may; the tests and bench do too.
    allowed = {"cpudb.cli.catalog"}
    offenders = [f"{m} imports {d}" for m, deps in GRAPH.items() if _stage(m) != "build" and m not in allowed
                 for d in deps if _stage(d) == "build"]
    assert offenders == []


def test_no_module_is_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_says_what_its_stage_takes_and_returns():
    for package in [*STAGES, "build"]:
        if package == "base":
            continue
        doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
        assert doc and len(doc.splitlines()) <= 4, package


def test_no_module_is_hidden_from_git():
    # A module the .gitignore hides works in the checkout that wrote it and is missing from
    # every clone (cpudb/build/ once fell under the ignore rule for make report's build/).
    import shutil
    import subprocess

    import pytest

    if not (ROOT / ".git").exists() or not shutil.which("git"):
        pytest.skip("not a git checkout")
    paths = [str(path.relative_to(ROOT)) for path in MODULES.values()]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.split() == []
