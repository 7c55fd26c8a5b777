"""No runtime import cycle among the modules of xbar, xbar.devices and xbar.mapping.

The graph is read from the source with :mod:`ast`, never by importing: an edge A -> B for
every import A runs of B, at module level or inside a function (a function's import runs when
it is called, and a cycle through it still ties the two modules into one), with relative
imports resolved and ``from package import name`` pointing at the submodule when ``name`` is
one. Imports under ``if TYPE_CHECKING:`` never run and are left out. A package's implicit
import of its parent (``import a.b`` runs ``a/__init__``) is not an edge: it is the same for
every submodule and ties nothing together.

When two modules need each other, what both need goes to a leaf module they both import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {"xbar": "xbar", "devices": "xbar.devices", "mapping": "xbar.mapping"}
"""Source folder -> the package it installs as (setup.cfg's package_dir)."""


def source_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every source module by its dotted name (``devices/fit.py`` -> ``xbar.devices.fit``)."""
    out = {}
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package] + parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    text = ast.unparse(test)
    return text in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def _runtime_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``body`` and everything nested in it (functions, classes,
    if/try/with/loops), except the branch of an ``if TYPE_CHECKING:``."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return sorted(out, key=lambda n: n.lineno)


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {imported project module: line of the first such import}}``."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree.body):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[:len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target in modules and target != name:
                    edges.setdefault(target, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle through each strongly connected component of more than one module
    (Tarjan's algorithm, iterative), as ``[a, b, ..., a]``; sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
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
                    components.append(sorted(component))
    return sorted(_one_cycle(graph, set(c)) for c in components)


def _one_cycle(graph: dict[str, dict[str, int]], members: set[str]) -> list[str]:
    """A shortest cycle through the first member of a strongly connected component."""
    first = min(members)
    parent: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in members:
                    continue
                if child == first:
                    path = [node]
                    while path[-1] != first:
                        path.append(parent[path[-1]])
                    return [first] + path[::-1][1:] + [first]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {first}")  # pragma: no cover


def describe(graph: dict[str, dict[str, int]], modules: dict[str, Path],
             cycle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:])]
    return " -> ".join(steps + [cycle[-1]])


def test_no_import_cycle() -> None:
    modules = source_modules()
    graph = import_graph(modules)
    found = cycles(graph)
    assert not found, ("runtime import cycles (imports inside functions count); move what "
                       "both sides need into a leaf module both import:\n" + "\n".join(
                           describe(graph, modules, c) for c in found))


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_cycles_through_functions_and_relative_imports(
        tmp_path: Path) -> None:
    """The checker itself, on a made-up tree: a cycle closed by an import inside a function
    and a ``from . import x``, a three-module cycle with ``from package import module``, and
    an ``if TYPE_CHECKING:`` import that closes nothing."""
    _write(tmp_path, {
        "xbar/__init__.py": "",
        "xbar/a.py": "from xbar.b import f\n",
        "xbar/b.py": "def f():\n    from . import a\n    return a\n",
        "xbar/sub/__init__.py": "",
        "xbar/sub/x.py": "from xbar.sub import y\n",
        "xbar/sub/y.py": "import xbar.sub.z as zz\n",
        "xbar/sub/z.py": "def g():\n    from ..sub.x import h\n",
        "xbar/t.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from xbar.u import U\nelse:\n    U = None\n",
        "xbar/u.py": "from xbar.t import U\n",
        "devices/__init__.py": "", "mapping/__init__.py": "",
    })
    modules = source_modules(tmp_path)
    graph = import_graph(modules)
    assert graph["xbar.b"] == {"xbar.a": 2}
    assert graph["xbar.sub.z"] == {"xbar.sub.x": 2}
    assert graph["xbar.t"] == {}
    assert cycles(graph) == [["xbar.a", "xbar.b", "xbar.a"],
                             ["xbar.sub.x", "xbar.sub.y", "xbar.sub.z", "xbar.sub.x"]]
    assert describe(graph, modules, cycles(graph)[0]) == \
        "xbar.a (line 1) -> xbar.b (line 2) -> xbar.a"


@pytest.mark.parametrize("package", sorted(PACKAGE_DIRS.values()))
def test_every_package_is_walked(package: str) -> None:
    """The graph covers each of the three packages (a wrong folder would pass vacuously)."""
    graph = import_graph(source_modules())
    members = [m for m in graph if m == package or m.startswith(package + ".")]
    assert len(members) > 5 and any(graph[m] for m in members), package
