"""The package's import graph has no cycles, at module level and at sub-package level, and the result schema is a leaf.

The graph is read from the source with :mod:`ast` (nothing is imported): every ``import`` / ``from ... import`` of
an ``egostream`` module, at module level and inside functions and methods, relative imports resolved against the
importing module's package. Importing ``a.b.c`` runs the ``__init__`` of ``a.b`` first, so an import also reaches
the packages that enclose its target, except those that already enclose the importer (Python has started them).

Two graphs are checked:

* **module graph**: one node per module (a package is its ``__init__``);
* **sub-package graph**: the modules of ``egostream.<sub>`` collapse into one node ``egostream.<sub>``, a top-level
  module (``egostream.model``) is its own node, and a *leaf* module (one whose ``egostream`` imports all reach
  leaves, e.g. ``egostream.errors``, ``egostream.io.atomic``) stays its own node: a leaf cannot close a cycle, and
  tools of that kind may be imported from any layer.

The layer order of DESIGN §11 (cli -> actors/train/replay -> io -> stream -> model -> tasks/backpack -> backbone ->
kernels) is checked on the sub-package graph: no edge points from a lower layer to a higher one.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

import egostream

PACKAGE_DIR = Path(egostream.__file__).parent
PACKAGE = "egostream"

Graph = Mapping[str, frozenset[str]]


def module_files(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> its source file (``pkg/__init__.py`` is the module ``pkg``)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The ``egostream`` modules ``name`` imports anywhere in its source (see the module docstring)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # ``from a import b``: the submodule a.b when there is one, else a name defined in a
                targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    found: set[str] = set()
    own = set(_ancestors(name))
    for target in targets:
        if target != PACKAGE and not target.startswith(PACKAGE + "."):
            continue
        if target not in modules:
            raise AssertionError(f"{path}: imports {target}, which is not a module of the package")
        found.update(t for t in (*_ancestors(target), target) if t not in own and t != name)
    return found


def module_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, frozenset[str]]:
    modules = module_files(package_dir)
    return {name: frozenset(imported_modules(name, path, modules)) for name, path in modules.items()}


def leaves(graph: Graph) -> set[str]:
    """The leaf modules: everything a leaf imports, directly or not, is a module that imports no ``egostream``
    module or a single-file module directly under ``egostream`` (``errors``, ``config``, ``registry``). A package
    whose ``__init__`` imports something is never reached by a leaf."""
    reach: dict[str, set[str]] = {}

    def closure(name: str) -> set[str]:
        if name not in reach:
            reach[name] = set()
            for target in graph[name]:
                reach[name] |= {target, *closure(target)}
        return reach[name]

    packages = {name.rpartition(".")[0] for name in graph}

    def base(name: str) -> bool:
        return not graph[name] or (name.count(".") == 1 and name not in packages)

    return {name for name in graph if all(base(t) for t in closure(name))}


def unit(name: str, leaf: set[str], packages: set[str]) -> str:
    """The sub-package graph node of module ``name`` (a leaf package's ``__init__`` is ``<package>.__init__``, apart
    from the node of its package's other modules)."""
    parts = name.split(".")
    if name in leaf:
        return f"{name}.__init__" if name in packages else name
    return name if len(parts) <= 2 else ".".join(parts[:2])


def subpackage_graph(graph: Graph) -> dict[str, frozenset[str]]:
    leaf = leaves(graph)
    packages = {name.rpartition(".")[0] for name in graph}
    edges: dict[str, set[str]] = {}
    for name, targets in graph.items():
        source = unit(name, leaf, packages)
        edges.setdefault(source, set()).update(
            node for node in (unit(t, leaf, packages) for t in targets) if node != source)
    return {name: frozenset(targets) for name, targets in edges.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted; ``[]`` when acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(root: str) -> None:
        # iterative DFS: (node, iterator over its targets)
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
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

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def witness(graph: Graph, component: list[str]) -> list[str]:
    """One closed path through ``component`` (for the failure message)."""
    members = set(component)
    path = [component[0]]
    while True:
        step = min(t for t in graph[path[-1]] if t in members)
        if step in path:
            return path[path.index(step):] + [step]
        path.append(step)


# ------------------------------------------------------------------------------------------- the helpers themselves


def _write_package(root: Path, files: Mapping[str, str]) -> Path:
    for relative, source in files.items():
        path = root / PACKAGE / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / PACKAGE


def test_graph_reader_sees_function_level_relative_and_package_init_imports(tmp_path: Path) -> None:
    package = _write_package(tmp_path, {
        "__init__.py": "",
        "a/__init__.py": "from egostream.a.x import X\n",
        "a/x.py": "def f():\n    from ..b import y\n",
        "a/z.py": "from . import x\n",
        "b/__init__.py": "",
        "b/y.py": "import egostream.a.z\n",
        "c.py": "from egostream.b.y import name_in_y\n",
    })
    graph = module_graph(package)
    # a function-level relative import; the target's package b (its __init__) comes with it
    assert graph["egostream.a.x"] == {"egostream.b", "egostream.b.y"}
    # ``from . import x`` is the sibling module; egostream.a is the importer's own package (already running)
    assert graph["egostream.a.z"] == {"egostream.a.x"}
    # importing egostream.a.z runs egostream.a's __init__ first
    assert graph["egostream.b.y"] == {"egostream.a", "egostream.a.z"}
    assert graph["egostream.c"] == {"egostream.b", "egostream.b.y"}
    # a.x -> b.y -> a.z -> a.x
    assert cycles(graph) == [["egostream.a", "egostream.a.x", "egostream.a.z", "egostream.b.y"]]
    assert leaves(graph) == {"egostream", "egostream.b"}
    assert subpackage_graph(graph)["egostream.c"] == {"egostream.b.__init__", "egostream.b"}


def test_cycle_finder_on_hand_made_graphs() -> None:
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset()}) == []
    graph = {"a": frozenset({"b"}), "b": frozenset({"a", "c"}), "c": frozenset({"d"}), "d": frozenset({"c"}),
             "e": frozenset({"a"})}
    assert sorted(cycles(graph)) == [["a", "b"], ["c", "d"]]
    assert witness(graph, ["a", "b"]) == ["a", "b", "a"]


# ------------------------------------------------------------------------------------------------- the package


def test_module_graph_has_no_cycles() -> None:
    graph = module_graph()
    found = cycles(graph)
    assert not found, "import cycles between modules: " + "; ".join(" -> ".join(witness(graph, c)) for c in found)


def test_subpackage_graph_has_no_cycles() -> None:
    graph = subpackage_graph(module_graph())
    found = cycles(graph)
    assert not found, "import cycles between sub-packages: " + "; ".join(
        " -> ".join(witness(graph, c)) for c in found)


# DESIGN §11, highest first; a node may import its own layer or any lower one.
LAYERS = (("egostream.cli",), ("egostream.actors", "egostream.train", "egostream.replay"), ("egostream.io",),
          ("egostream.stream",), ("egostream.model",), ("egostream.tasks", "egostream.backpack"),
          ("egostream.backbone",), ("egostream.kernels",))


def test_layers_point_downward() -> None:
    rank = {name: level for level, names in enumerate(LAYERS) for name in names}
    graph = subpackage_graph(module_graph())
    upward = sorted(f"{source} -> {target}" for source, targets in graph.items() if source in rank
                    for target in targets if target in rank and rank[target] < rank[source])
    assert not upward, f"imports against the layer order of DESIGN §11: {upward}"


@pytest.mark.parametrize("name", ["egostream.stream.schema"])
def test_result_schema_is_a_leaf(name: str) -> None:
    graph = module_graph()
    assert name in leaves(graph), f"{name} imports non-leaf modules {sorted(graph[name] - leaves(graph))}"
