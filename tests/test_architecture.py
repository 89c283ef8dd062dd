"""The package's structure, read from the source: no import loops, each layer imports only the layers below it
(docs/architecture.md), every sub-package re-exports its modules' public names, and no module, test or bench uses
another module's private name."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "painterly"

#: Import loops allowed to exist: none.  The last one (encoder/normalization/weights, issue 17) was cut by measuring
#: channel means with an encoder handed to normalization, and by handing the weights' conversion its measurer from
#: above (painterly.nets.registry); a loop that reappears must be cut, not listed here.
KNOWN_LOOPS: list[frozenset[str]] = []

#: What each layer may import: a sub-package (``nets``) or a top-level module (``run``) names a layer.  Read off the
#: import graph when the package was cut into sub-packages (issue 17); docs/architecture.md shows the same table, and
#: a test checks that the two agree.  A new import that is not listed here fails: if it points upwards, move the code
#: (or hand the lower layer what it needs from above) instead of widening the table.
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "errors": set(),
    "io": {"errors"},
    "losses": {"errors"},
    "records": {"io"},
    "nets": {"errors", "io"},
    "events": {"records"},
    "control": {"errors", "io", "nets"},
    "engine": {"errors", "io", "nets"},
    "progress": {"events", "records"},
    "objective": {"control", "engine", "errors", "losses", "nets"},
    "config": {"control", "engine", "errors", "io", "losses", "nets", "objective"},

    "plan": {"config", "engine", "errors", "nets"},
    "provenance": {"_version", "config", "errors", "io", "nets"},
    "run": {
        "config", "control", "engine", "errors", "events", "io", "losses", "nets", "objective", "plan", "progress",
        "provenance", "records",
    },
    "session": {"config", "events", "io", "nets", "objective", "provenance", "records", "run"},
    "stylize": {"config", "control", "engine", "errors", "events", "io", "nets", "plan", "records", "run", "session"},
    "sketch": {
        "config", "control", "errors", "events", "io", "nets", "provenance", "records", "run", "session", "stylize",
    },
    "reproduction": {"_version", "config", "errors", "events", "provenance", "records", "session", "sketch"},
    "video": {"config", "errors", "io", "losses", "objective", "session"},
    "batch": {"config", "errors", "events", "io", "plan", "provenance", "records", "run", "session", "sketch"},
    "web": {"batch", "config", "errors", "events", "io", "records", "run", "session", "sketch"},
    "apps": {
        "batch", "config", "engine", "errors", "events", "io", "nets", "provenance", "records", "reproduction",
        "run", "sketch", "stylize", "video", "web",
    },
    "__init__": {"_version", "config", "errors", "reproduction", "run", "sketch", "stylize"},
    "__main__": {"apps"},
}  # fmt: skip

#: Private names used across modules on purpose, each with its reason: ``(file, what) -> why``.
PRIVATE_ALLOWED: dict[tuple[str, str], str] = {
    (f"src/painterly/{name}.py", "painterly._version"): "the version's one home, read where the package itself needs "
    "it (its modules cannot import painterly/__init__, which imports them)"
    for name in ("__init__", "provenance", "reproduction")
}


def module_paths() -> dict[str, Path]:
    """``{node: file}`` for every module of the package: ``run``, ``losses.core``; a package's ``__init__.py`` is
    the node of the package's name (``losses``), the top one's ``__init__``."""
    nodes: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        nodes[".".join(parts)] = path
    return nodes


def _imported(node: str, path: Path, nodes: set[str]) -> set[str]:
    """The modules of the package that ``node`` imports, counting imports inside functions too (they are still a
    dependency, only a deferred one), and the packages whose ``__init__`` such an import runs first: importing
    ``painterly.losses.core`` from outside ``losses`` runs ``losses/__init__.py``, which imports every module of
    ``losses``; from inside, the package is already being imported, so that is no edge."""

    def resolve(dotted: str) -> str | None:  # "losses.core.GramLoss" -> "losses.core": the longest module prefix
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in nodes:
                return ".".join(parts[:end])
        return None

    targets: set[str] = set()
    for statement in ast.walk(ast.parse(path.read_text())):
        if isinstance(statement, ast.ImportFrom):  # (relative imports are refused by a test of their own)
            if statement.level or not statement.module or statement.module.split(".")[0] != "painterly":
                continue
            module = statement.module.partition(".")[2]
            for alias in statement.names:
                submodule = f"{module}.{alias.name}" if module else alias.name
                if submodule in nodes:  # `from painterly.engine import precision` imports a module
                    targets.add(submodule)
                elif not module:  # a name from painterly/__init__.py
                    targets.add("__init__")
                elif resolve(module):
                    targets.add(str(resolve(module)))
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                if alias.name.startswith("painterly."):
                    found = resolve(alias.name.partition(".")[2])
                    if found:
                        targets.add(found)
    for target in list(targets):
        parts = target.split(".")
        for end in range(1, len(parts)):  # the packages above the target, whose __init__ runs first
            package = ".".join(parts[:end])
            if node != package and not node.startswith(package + "."):
                targets.add(package)
    return targets - {node}


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` (see :func:`_imported`)."""
    paths = module_paths()
    return {node: _imported(node, path, set(paths)) for node, path in paths.items()}


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


def layer_of(node: str) -> str:
    """The layer a module belongs to: its sub-package (``losses`` for ``losses.core``), or itself at the top."""
    return node.split(".")[0]


def layer_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """``{layer: the other layers its modules import}``."""
    layers: dict[str, set[str]] = {}
    for node, targets in graph.items():
        layers.setdefault(layer_of(node), set()).update(layer_of(t) for t in targets if layer_of(t) != layer_of(node))
    return layers


def test_the_finder_sees_a_loop_and_no_false_ones() -> None:
    assert loops({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset("abc")]
    assert loops({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_reads_submodules_packages_and_deferred_imports() -> None:
    graph = import_graph()
    assert "losses.core" in graph["losses.style"], "a sibling by its own name"
    assert "losses" not in graph["losses.style"], "a module inside a package does not import its own __init__"
    assert {"objective.tiled", "objective"} <= graph["config"], "deferred, and through the package's __init__"
    assert {"engine.precision", "engine"} <= graph["apps.cli"], "`from painterly.engine import precision`"
    assert set(graph["losses"]) == {"losses.core", "losses.registry", "losses.style"}, "an __init__ re-exports"


def test_no_import_loops() -> None:
    graph = import_graph()
    assert graph["run"] and "losses.core" in graph["losses.style"], "the graph was read"
    assert sorted(map(sorted, loops(graph))) == sorted(map(sorted, KNOWN_LOOPS))


def test_the_package_imports_itself_by_absolute_names() -> None:
    """``from painterly.losses.core import ...``, never ``from .core import ...``: the graph above reads only the
    absolute form, and a reader sees where a name comes from without knowing which file they are in."""
    relative = [
        f"{node}:{statement.lineno}"
        for node, path in module_paths().items()
        for statement in ast.walk(ast.parse(path.read_text()))
        if isinstance(statement, ast.ImportFrom) and statement.level
    ]
    assert relative == []


def test_no_module_imports_its_own_package_init() -> None:
    """Inside a package, modules import each other by their own names; the package's ``__init__`` is for users."""
    graph = import_graph()
    offenders = [node for node, targets in graph.items() for target in targets if node.startswith(target + ".")]
    assert offenders == []


def test_each_layer_imports_only_the_layers_it_may() -> None:
    graph = import_graph()
    assert set(layer_graph(graph)) == set(ALLOWED), "every layer is in the table, and nothing else"
    upward = {
        f"{node} imports {target}"
        for node, targets in graph.items()
        for target in targets
        if layer_of(target) != layer_of(node) and layer_of(target) not in ALLOWED[layer_of(node)]
    }
    assert sorted(upward) == [], "move the code down, or hand it what it needs from above (docs/architecture.md)"


def test_the_table_is_the_real_graph() -> None:
    """Every allowance is used by some import: the table (and docs/architecture.md) describes the code, not a wish.
    An import removed from a layer takes its row's entry with it."""
    real = layer_graph(import_graph())
    unused = {layer: sorted(allowed - real[layer]) for layer, allowed in ALLOWED.items() if allowed - real[layer]}
    assert unused == {}


def test_the_layers_have_an_order() -> None:
    """The table itself has no loop: the layers can be drawn one above another, each importing only downwards."""
    assert loops(ALLOWED) == []
    assert all(layer not in allowed for layer, allowed in ALLOWED.items())


def test_the_architecture_document_shows_the_same_table() -> None:
    """docs/architecture.md lists what each layer may import (``| `layer` | `a`, `b` |``); it says what the test
    checks."""
    documented: dict[str, set[str]] = {}
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        row = re.fullmatch(r"\|\s*`([\w.]+)`\s*\|([^|]*)\|.*", line.strip())
        if row:
            documented[row[1]] = set(re.findall(r"`([\w.]+)`", row[2]))
    assert documented == ALLOWED


def _public_names(module: object) -> list[str]:
    return list(getattr(module, "__all__", []))


def test_each_sub_package_re_exports_its_modules_public_names() -> None:
    """``from painterly.losses import GramLoss`` works: a sub-package's ``__all__`` is the union of its modules'."""
    for node, path in module_paths().items():
        if path.name != "__init__.py" or node == "__init__":
            continue
        package = importlib.import_module(f"painterly.{node}")
        expected: set[str] = set()
        for module_path in path.parent.glob("*.py"):
            if module_path.name == "__init__.py":
                continue
            module = importlib.import_module(f"painterly.{node}.{module_path.stem}")
            assert hasattr(module, "__all__"), f"painterly.{node}.{module_path.stem} says what it exports"
            missing = [name for name in _public_names(module) if not hasattr(package, name)]
            assert missing == [], f"painterly.{node} re-exports painterly.{node}.{module_path.stem}'s names"
            expected |= set(_public_names(module))
        assert set(_public_names(package)) == expected, node


def _sources() -> Iterator[Path]:
    for folder in ("src", "tests", "bench"):
        yield from sorted((REPO / folder).rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for every use of a private name that is not the code's own: a private name (or module)
    imported from painterly, ``x._name`` on anything but ``self``, ``cls`` or ``super()``, and ``getattr``,
    ``setattr``, ``hasattr``, ``delattr`` (``monkeypatch.setattr`` too) given a private name as a literal."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "painterly":
            for part in node.module.split("."):
                if _private(part):
                    yield node.lineno, node.module
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "painterly" and any(map(_private, alias.name.split("."))):
                    yield node.lineno, alias.name
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            own = isinstance(base, ast.Name) and base.id in ("self", "cls")
            own |= isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
            if not own:
                yield node.lineno, ast.unparse(node)
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            function = node.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
            key = node.args[1]
            literal = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else ""
            if name in ("getattr", "setattr", "hasattr", "delattr") and _private(literal):
                yield node.lineno, f"{name}(..., {literal!r})"


def test_the_private_name_finder_sees_each_kind() -> None:
    source = """
from painterly.objective.tiled import _flat_core
from painterly._version import __version__
import painterly._version
run._objective(256)
self._bar, cls._cache, super()._apply(fn)
monkeypatch.setattr(allocator, "_active", 0)
getattr(handler, "_painterly", False)
obj.__dict__
"""
    found = [what for _, what in sorted(private_uses(ast.parse(source)))]
    assert found == [
        "painterly.objective.tiled._flat_core", "painterly._version", "painterly._version", "run._objective",
        "setattr(..., '_active')", "getattr(..., '_painterly')",
    ]  # fmt: skip


def test_no_module_test_or_bench_uses_another_modules_private_name() -> None:
    """A private call from outside marks a missing seam: give the owner a public, documented method instead."""
    found = [
        f"{path.relative_to(REPO)}:{line}: {what}"
        for path in _sources()
        for line, what in private_uses(ast.parse(path.read_text()))
        if (str(path.relative_to(REPO)), what) not in PRIVATE_ALLOWED
    ]
    assert found == []
    used = {
        (str(path.relative_to(REPO)), what)
        for path in _sources()
        for _, what in private_uses(ast.parse(path.read_text()))
    }
    assert set(PRIVATE_ALLOWED) <= used, "an allowance nothing needs any more is removed"
