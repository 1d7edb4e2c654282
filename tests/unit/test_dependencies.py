"""Every package sovstack imports is declared, in the extra of the machine that runs it.

Starting from the CLI group each kind of machine runs, the imports of every
sovstack module it reaches (at module level or inside a function) are
collected; each third-party one must be a distribution that the base
dependencies or that extra declare in pyproject.toml. The dev extra must
declare everything the source tree, the tests and the benchmarks import.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
# Import name -> distribution name, where they differ.
DISTRIBUTION = {
    "jwt": "pyjwt",
    "yaml": "pyyaml",
    "prometheus_client": "prometheus-client",
    "pydantic_settings": "pydantic-settings",
    "keycloak": "python-keycloak",
    "testinfra": "pytest-testinfra",
    "trestle": "compliance-trestle",
}
# Only the vLLM environment has these (the tiny model generator runs there).
ELSEWHERE = {"torch", "transformers", "tokenizers"}
# What each extra's machine runs: (CLI modules,).
ENTRY_POINTS = {
    "gateway": ("sovstack.cli.gateway", "sovstack.cli.audit", "sovstack.cli.pki",
                "sovstack.cli.usage"),
    "control": ("sovstack.cli.bundle",),
    "build": ("sovstack.cli.bundle", "sovstack.cli.policy", "sovstack.cli.deps",
              "sovstack.cli.cluster"),
    "audit-report": ("sovstack.cli.report",),
}  # fmt: skip


def _declared(extra: str | None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names: set[str] = set()
    specs = list(project["dependencies"])
    if extra is not None:
        specs += project["optional-dependencies"][extra]
    for spec in specs:
        match = re.match(r"([A-Za-z0-9_.-]+)(\[([^\]]+)\])?", spec)
        assert match is not None, spec
        if match.group(1) == "sovstack":
            for included in (match.group(3) or "").split(","):
                names |= _declared(included)
        else:
            names.add(match.group(1).lower())
    return names


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def _module_file(name: str) -> Path | None:
    base = SERVICES.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def third_party(start: Iterable[str]) -> set[str]:
    """The distributions the sovstack modules reachable from ``start`` import."""
    todo, seen, found = list(start), set[str](), set[str]()
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        parents = name.split(".")
        todo += [".".join(parents[:i]) for i in range(2, len(parents))]  # package __init__s
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top == "sovstack":
                todo.append(imported)
            elif top not in sys.stdlib_module_names and top not in {"__future__", *ELSEWHERE}:
                found.add(DISTRIBUTION.get(top, top).lower())
    return found


@pytest.mark.parametrize("extra", sorted(ENTRY_POINTS))
def test_each_extra_declares_what_its_commands_import(extra: str) -> None:
    assert third_party(ENTRY_POINTS[extra]) - _declared(extra) == set()


def test_the_gateway_extra_leaves_the_builder_and_the_dev_stack_out() -> None:
    gateway = _declared("gateway")
    assert not gateway & {"ansible-core", "jinja2", "packaging", "python-keycloak", "pytest"}


def test_the_dev_extra_declares_every_import_of_the_tree_tests_and_benchmarks() -> None:
    modules = {
        ".".join(p.relative_to(SERVICES).with_suffix("").parts) for p in SERVICES.rglob("*.py")
    }
    used = third_party(modules)
    for folder in ("tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            tops = {i.split(".")[0] for i in _imports(path)}
            used |= {
                DISTRIBUTION.get(t, t).lower()
                for t in tops
                if t not in sys.stdlib_module_names
                and t not in {"__future__", "sovstack", "tests", *ELSEWHERE}
            }
    assert used - _declared("dev") == set()
