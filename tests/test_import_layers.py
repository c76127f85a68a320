"""The package's floors: every import (module level or inside a function) goes to the same floor or one below, and
no module imports another that imports it back, however indirectly. Imports under ``if TYPE_CHECKING:`` are
annotations only and are left out."""

from __future__ import annotations

import ast
from pathlib import Path

import photossl

# Bottom first. A module may import its own floor and the floors below it. "__init__" is the package's own
# __init__.py, which holds the version and imports nothing.
FLOORS = (
    ("__init__", "errors", "files", "provenance", "config", "runtime", "cluster", "distributed"),
    ("physics", "symmetry", "losses", "vision"),
    ("models",),
    ("data",),
    ("evaluation",),
    ("training",),
    ("finetune",),
    ("study",),
    ("cli", "__main__"),
)
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
PACKAGE = Path(photossl.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _runtime_imports(tree: ast.AST) -> list[ast.AST]:
    annotations_only = {id(node) for test in ast.walk(tree)
                        if isinstance(test, ast.If) and "TYPE_CHECKING" in ast.unparse(test.test)
                        for node in ast.walk(test)}
    return [node for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in annotations_only]


def _imported(name: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    """The photossl modules an import statement loads (a name that is a submodule counts as that module)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    base = node.module or ""
    if node.level:
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
    if base not in modules:
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = {target for node in _runtime_imports(tree)
                       for target in _imported(name, path, node, modules) if target != name}
    return graph


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_room_has_a_floor():
    rooms = {_room(name) for name in _graph()}
    assert rooms - FLOOR.keys() == set(), "place the new room in FLOORS"


def test_no_module_imports_upward():
    upward = sorted(f"{source} -> {target}" for source, targets in _graph().items() for target in targets
                    if FLOOR[_room(target)] > FLOOR[_room(source)])
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_even_through_function_local_imports():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle_and_an_upward_import():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert FLOOR[_room("photossl.study.plan")] > FLOOR[_room("photossl.models.heads")]
