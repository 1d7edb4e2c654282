"""Imports between sovstack's packages point down only (ARCHITECTURE.md, "Components").

``core`` imports nothing of sovstack; ``audit`` and ``pki`` import only
``core``; ``devstack`` and ``cli`` are imported by nothing but ``cli`` (and
``bench/``, which is not a package); ``deploy`` by nothing but ``cli``; and no
two packages import each other, directly or around a loop. The rules are
checked on the real source tree and, so that the check itself cannot pass
vacuously, on small graphs that break each one.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Set
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "services" / "sovstack"

# Who may import each package, where that is limited.
ONLY_IMPORTED_BY = {"cli": {"cli"}, "devstack": {"cli"}, "deploy": {"cli"}}
# What each package may import, where that is limited.
# usage reads the audit log alone: what it reports never comes from the gateway's memory.
MAY_IMPORT_ONLY = {
    "core": set[str](),
    "audit": {"core"},
    "pki": {"core"},
    "usage": {"core", "audit"},
}

Graph = Mapping[str, Set[str]]


def package_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Each subpackage of sovstack -> the other subpackages its modules import."""
    graph: dict[str, set[str]] = {}
    for module in root.rglob("*.py"):
        parts = module.relative_to(root).parts
        if len(parts) < 2:
            continue  # sovstack/__init__.py is the distribution, not a layer
        imported = graph.setdefault(parts[0], set())
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                words = name.split(".")
                if words[0] == "sovstack" and len(words) > 1 and (root / words[1]).is_dir():
                    imported.add(words[1])
        imported.discard(parts[0])
    return graph


def _cycle(graph: Graph) -> list[str] | None:
    """One loop of imports between packages, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def violations(graph: Graph) -> list[str]:
    """Every broken rule, each said as one line naming the packages."""
    found: list[str] = []
    for pkg, imported in sorted(graph.items()):
        if pkg in MAY_IMPORT_ONLY and imported - MAY_IMPORT_ONLY[pkg]:
            allowed = ", ".join(sorted(MAY_IMPORT_ONLY[pkg])) or "nothing of sovstack"
            found.append(f"{pkg} imports {', '.join(sorted(imported))}; it may import {allowed}")
        for target in sorted(imported):
            if target in ONLY_IMPORTED_BY and pkg not in ONLY_IMPORTED_BY[target]:
                found.append(f"{pkg} imports {target}, which only cli may import")
    loop = _cycle(graph)
    if loop:
        found.append("import cycle: " + " -> ".join(loop))
    return found


def test_the_source_tree_keeps_every_import_rule() -> None:
    assert violations(package_graph()) == []


def test_the_graph_sees_the_packages_and_their_imports() -> None:
    graph = package_graph()
    assert {"core", "audit", "gateway", "cli"} <= graph.keys()
    assert "audit" in graph["gateway"] and "devstack" in graph["cli"]


@pytest.mark.parametrize(
    ("graph", "broken"),
    [
        ({"core": {"audit"}, "audit": set()}, "core imports audit; it may import nothing"),
        ({"pki": {"core", "gateway"}, "gateway": set()}, "pki imports core, gateway; it may"),
        ({"audit": {"policy"}, "policy": set()}, "audit imports policy; it may import core"),
        ({"bundle": {"devstack"}, "devstack": set()}, "bundle imports devstack, which only cli"),
        ({"gateway": {"cli"}, "cli": set()}, "gateway imports cli, which only cli"),
        ({"bundle": {"deploy"}, "deploy": set()}, "bundle imports deploy, which only cli"),
        ({"policy": {"bundle"}, "bundle": {"policy"}}, "import cycle: bundle -> policy -> bundle"),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "import cycle: a -> b -> c -> a"),
    ],
)
def test_each_rule_fails_on_a_graph_that_breaks_it(graph: Graph, broken: str) -> None:
    assert any(line.startswith(broken) for line in violations(graph)), violations(graph)


def test_what_the_rules_allow_passes() -> None:
    allowed = {
        "core": set(),
        "audit": {"core"},
        "deploy": {"core", "bundle", "cluster", "pki", "policy"},
        "cli": {"deploy", "devstack", "core"},
        "devstack": {"core", "policy"},
    }
    assert violations(allowed) == []
