"""The package's shape: one import package, layers that point one way, no import cycles, short modules.

The import graph is built from the source (every ``import`` statement, at module level or inside a function), so a
cycle cannot hide behind a function-level import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("envs", "constitutions", "feedback", "agents", "curriculum")
LOWER = ("envs", "constitutions", "feedback")  # import nothing above them


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["upbringing", *parts])


def _sources() -> dict[str, Path]:
    files = [ROOT / "__init__.py", *ROOT.glob("*.py")]
    for sub in SUBPACKAGES:
        files += (ROOT / sub).rglob("*.py")
    return {_module_name(f): f for f in sorted(set(files))}


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """Project modules imported by one module (the longest known prefix of each imported name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in names:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    modules = set(sources)
    return {name: _imports(name, path, modules) for name, path in sources.items()}


def test_no_import_cycles() -> None:
    graph = _graph()
    # An edge to a package's __init__ is only followed where the importer is outside that package: importing
    # upbringing.envs.physics.base runs upbringing.envs.physics.__init__ first, which is not a cycle of the layout.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if node.startswith(dep + "."):
                continue  # a module importing its own package's __init__ (or the root package)
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_import_nothing_above_them(lower: str) -> None:
    graph = _graph()
    above = ("upbringing.curriculum", "upbringing.agents")
    bad = {
        f"{name} imports {dep}"
        for name, deps in graph.items()
        if name.startswith(f"upbringing.{lower}")
        for dep in deps
        if dep.startswith(above)
    }
    assert not bad, "\n".join(sorted(bad))


def test_agents_import_no_curriculum() -> None:
    graph = _graph()
    bad = {
        f"{n} imports {d}"
        for n, deps in graph.items()
        if n.startswith("upbringing.agents")
        for d in deps
        if d.startswith("upbringing.curriculum")
    }
    assert not bad, "\n".join(sorted(bad))


def test_pyproject_lists_every_subpackage() -> None:
    """`pip install .` installs one top-level package, `upbringing`, with every folder that holds an __init__.py."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = project["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"upbringing": "."}
    listed = set(setuptools["packages"])
    expected = {"upbringing"} | {_module_name(init) for s in SUBPACKAGES for init in (ROOT / s).rglob("__init__.py")}
    assert listed == expected
    assert all(p == "upbringing" or p.startswith("upbringing.") for p in listed)


MAX_LINES = 500
PURE_DATA: frozenset[str] = frozenset()  # modules that are only data (tables, page text) may be longer; none is yet


def test_no_module_over_max_lines() -> None:
    """One job per module: no module of the package is over MAX_LINES lines (split it along a real seam)."""
    long = {
        f"{path.relative_to(ROOT)}: {n} lines"
        for name, path in _sources().items()
        if name not in PURE_DATA and (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(sorted(long))
