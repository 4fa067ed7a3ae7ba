"""The layering rules of DESIGN.md §2, read off the source: lower layers never import higher ones (not even inside a
function), and no package has an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "loaderbench"
#: layer -> the packages it must never import: the report knows results, never who produced them
FORBIDDEN = {
    "loaderbench.report": ("loaderbench.profile", "loaderbench.sparse", "loaderbench.tracks", "loaderbench.loaders"),
    "loaderbench.results": ("loaderbench.report", "loaderbench.profile", "loaderbench.sparse", "loaderbench.tracks"),
    "loaderbench.formats": ("loaderbench.loaders", "loaderbench.tracks", "loaderbench.report"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``loaderbench`` module ``path`` imports, at any depth (lazy imports inside functions count too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up (level - 1) packages from this one
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("loaderbench")}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_lower_layers_never_import_higher_ones(graph: dict[str, set[str]]) -> None:
    wrong = [f"{module} imports {target}" for module, targets in graph.items() for layer, banned in FORBIDDEN.items()
             if module == layer or module.startswith(layer + ".")
             for target in targets if target.startswith(banned)]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_inside_a_package(graph: dict[str, set[str]]) -> None:
    """Within each sub-package (profile, sparse, report, ...), the import graph is acyclic."""

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if package(nxt) != package(node) or nxt == package(node):
                continue  # a package's __init__ is its namespace, not a layer
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)
