"""The package's import graph: no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import openivr

SRC = Path(openivr.__file__).parent


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run, in functions too; those under `if TYPE_CHECKING:` never do."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    """Each module of the package and the modules of the package it imports when it runs."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _runtime_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # A module's own packages are imported first anyway: not an edge.
                if target and target != name and not name.startswith(target + "."):
                    deps.add(target)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_graph_sees_the_imports_that_run() -> None:
    graph = import_graph()
    assert "openivr.sip.transaction" in graph["openivr.sip.server"]
    assert "openivr.sip.message" in graph["openivr.sip.transaction"]
    # dialog.py names the call's types only for the type checker.
    assert "openivr.sip.call" not in graph["openivr.sip.dialog"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph()) == []


# The layers below HTTP: none of them may reach up into the API.
BELOW_API = ("engine", "audio", "store", "apps", "sip", "context", "security", "settings")


def _imports_of(graph: dict[str, set[str]], prefix: str) -> dict[str, set[str]]:
    """What each module of a package (or a single module) imports, by importing module."""
    return {
        name: deps
        for name, deps in graph.items()
        if name == f"openivr.{prefix}" or name.startswith(f"openivr.{prefix}.")
    }


def test_the_engine_imports_nothing_of_the_rest_of_the_project() -> None:
    graph = import_graph()
    outside = {
        name: sorted(dep for dep in deps if not dep.startswith("openivr.engine"))
        for name, deps in _imports_of(graph, "engine").items()
    }
    assert {name: deps for name, deps in outside.items() if deps} == {}


def test_the_layers_below_the_api_never_import_it() -> None:
    graph = import_graph()
    reaching_up = {
        name: sorted(dep for dep in deps if dep.startswith("openivr.api"))
        for layer in BELOW_API
        for name, deps in _imports_of(graph, layer).items()
    }
    assert {name: deps for name, deps in reaching_up.items() if deps} == {}


def test_delivery_and_calls_reach_the_api_only_to_add_their_routes() -> None:
    graph = import_graph()
    reaching_up = {
        name: sorted(dep for dep in deps if dep.startswith("openivr.api"))
        for layer in ("delivery", "calls")
        for name, deps in _imports_of(graph, layer).items()
    }
    # A layer's installer adds its routers to the API (delivery: the voicemail API).
    assert {name: deps for name, deps in reaching_up.items() if deps} == {
        "openivr.delivery.layer": ["openivr.api", "openivr.api.voicemail"]
    }
