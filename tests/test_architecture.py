"""The package's import structure, read from the source: no module pair may import each other (directly or round
a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "painterly"

#: Import loops allowed to exist: none.  The last one (encoder/normalization/weights, issue 17) was cut by measuring
#: channel means with an encoder handed to normalization, and by handing the weights' conversion its measurer from
#: above (painterly.nets_registry); a loop that reappears must be cut, not listed here.
KNOWN_LOOPS: list[frozenset[str]] = []


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, counting imports inside functions too (they are still
    a dependency, only a deferred one)."""
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "painterly":
                parts = node.module.split(".")
                imported |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                imported |= {a.name.split(".")[1] for a in node.names if a.name.startswith("painterly.")}
        graph[path.stem] = (imported & modules) - {path.stem}
    return graph


def loops(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_loop_and_no_false_ones() -> None:
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert loops({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_loops() -> None:
    graph = import_graph()
    assert graph["run"] and "losses" in graph["style_losses"], "the graph was read"
    assert sorted(map(sorted, loops(graph))) == sorted(map(sorted, KNOWN_LOOPS))
