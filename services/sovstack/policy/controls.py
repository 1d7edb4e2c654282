"""The compliance control catalogue in ``policies/controls/``, and its consistency.

The layout follows ComplianceAsCode's ``controls/``: one header file per
framework (``<framework>.yml``: ``id``, ``title``, ``version``, ``source``,
``controls_dir``) and, in ``controls_dir``, one file per control family, each
listing its controls::

    controls:
      - id: AC-3
        title: Access Enforcement
        status: automated          # one of STATUSES
        checks:                    # what implements and proves it
          - rego: data.sovstack.decision
          - rego-test: data.sovstack_test.test_deny_audit_office_chat_completions
          - pytest: tests/integration/test_policy_bundle.py::test_a_tampered_bundle_is_refused
        notes: ...

A control that is ``automated`` or ``partial`` must name at least one check,
and every check it names must exist: a Rego rule, a Rego test, a pytest
test (host checks are pytest tests under ``tests/cluster/``), or one of the
checks ``make audit`` runs over its inputs (``audit: verify``, ``bundle:
verify``, ...: :data:`REPORT_CHECKS`). Control ids
named in the Rego ``# METADATA`` (``custom.controls``) must be in the
catalogue. The compliance report is computed from this data.
"""

from __future__ import annotations

import ast
import collections
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovstack.core.paths import Paths
from sovstack.policy.tools import PolicyError, opa_bin, run
from sovstack.policy.tree import TEST_SUFFIX, PolicyTree

__all__ = [
    "CHECK_KINDS",
    "REPORT_CHECKS",
    "STATUSES",
    "Catalogue",
    "Check",
    "Control",
    "Existing",
    "existing_checks",
    "load",
    "problems",
    "rule_path",
]

STATUSES = {
    "automated": "implemented, and the named checks prove it",
    "partial": "partly implemented; the checks prove that part, the notes say what is missing",
    "planned": "not implemented yet; the notes say where it will be",
    "manual": "met by a procedure a person follows, not by a check",
    "not-applicable": "does not apply to this system; the notes say why",
}
CHECK_KINDS = ("rego", "rego-test", "pytest", "audit", "bundle")
# What ``make audit`` checks itself, over the inputs it is given (sovstack.report runs them).
REPORT_CHECKS = {
    "audit": ("verify", "retention", "witness", "pairing", "inclusion"),
    "bundle": ("verify",),
}
_MUST_BE_CHECKED = ("automated", "partial")


@dataclass(frozen=True)
class Check:
    kind: str
    ref: str

    def __str__(self) -> str:
        return f"{self.kind} {self.ref}"


@dataclass(frozen=True)
class Control:
    framework: str
    id: str
    title: str
    status: str
    checks: tuple[Check, ...]
    notes: str
    source: Path

    @property
    def key(self) -> str:
        return f"{self.framework}/{self.id}"


@dataclass(frozen=True)
class Framework:
    id: str
    title: str
    version: str
    source: str


@dataclass(frozen=True)
class Catalogue:
    frameworks: tuple[Framework, ...]
    controls: tuple[Control, ...]

    def status_counts(self) -> dict[str, int]:
        return dict(collections.Counter(c.status for c in self.controls))

    def keys(self) -> set[str]:
        return {c.key for c in self.controls}


def _yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise PolicyError(f"{path} must hold a YAML mapping")
    return loaded


def _field(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}: '{key}' is missing or not text")
    return value


def _check(entry: Any, where: str) -> Check:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise PolicyError(f"{where}: each check is one 'kind: reference' pair, not {entry!r}")
    ((kind, ref),) = entry.items()
    if kind not in CHECK_KINDS or not isinstance(ref, str):
        raise PolicyError(f"{where}: check kind {kind!r} is not one of {', '.join(CHECK_KINDS)}")
    return Check(kind, ref)


def _control(framework: str, entry: Any, source: Path) -> Control:
    if not isinstance(entry, dict):
        raise PolicyError(f"{source}: each control is a mapping, not {entry!r}")
    cid = _field(entry, "id", str(source))
    where = f"{source}: control {cid}"
    status = _field(entry, "status", where)
    if status not in STATUSES:
        raise PolicyError(f"{where}: status {status!r} is not one of {', '.join(STATUSES)}")
    checks = entry.get("checks") or []
    if not isinstance(checks, list):
        raise PolicyError(f"{where}: 'checks' must be a list")
    return Control(
        framework=framework,
        id=cid,
        title=_field(entry, "title", where),
        status=status,
        checks=tuple(_check(c, where) for c in checks),
        notes=str(entry.get("notes") or ""),
        source=source,
    )


def load(controls_dir: Path) -> Catalogue:
    """Read every framework header in ``controls_dir`` and its per-family control files."""
    headers = sorted(controls_dir.glob("*.yml"))
    if not headers:
        raise PolicyError(f"no framework headers (*.yml) in {controls_dir}")
    frameworks: list[Framework] = []
    found: list[Control] = []
    for header in headers:
        doc = _yaml(header)
        fid = _field(doc, "id", str(header))
        frameworks.append(
            Framework(fid, _field(doc, "title", str(header)), str(doc.get("version", "")),
                      str(doc.get("source", "")))
        )  # fmt: skip
        family_dir = controls_dir / _field(doc, "controls_dir", str(header))
        families = sorted(family_dir.glob("*.yml"))
        if not families:
            raise PolicyError(f"{header}: no control files (*.yml) in {family_dir}")
        for family in families:
            entries = _yaml(family).get("controls")
            if not isinstance(entries, list) or not entries:
                raise PolicyError(f"{family}: 'controls' must be a non-empty list")
            found.extend(_control(fid, entry, family) for entry in entries)
    seen = collections.Counter(c.key for c in found)
    twice = sorted(key for key, n in seen.items() if n > 1)
    if twice:
        raise PolicyError(f"controls listed more than once: {', '.join(twice)}")
    return Catalogue(tuple(frameworks), tuple(found))


@dataclass(frozen=True)
class Existing:
    """What a check may name: Rego rules and tests (as data paths), and the project root."""

    rego_rules: frozenset[str]
    rego_tests: frozenset[str]
    project_root: Path
    # control ids each Rego file's # METADATA names, by file
    metadata_controls: tuple[tuple[str, str], ...] = ()


def rule_path(package: list[dict[str, Any]], head: dict[str, Any]) -> str:
    """The data path (``data.pkg.rule``) a parsed rule head defines, from ``opa parse`` JSON."""
    parts = [t["value"] for t in package]  # data, then the package's strings
    for i, term in enumerate(head.get("ref") or [{"type": "var", "value": head["name"]}]):
        if i > 0 and term["type"] != "string":
            break  # a variable key: the rule is the path up to it
        parts.append(term["value"])
    return ".".join(parts)


def _parsed_modules(paths: Paths, files: list[Path]) -> dict[str, Any]:
    sources = {str(f): f.read_text() for f in files}
    done = run(
        [opa_bin(paths), "eval", "--format", "json", "--stdin-input",
         "{name: rego.parse_module(name, src) | some name, src in input}"],
        "parsing the Rego modules",
        stdin=json.dumps(sources),
    )  # fmt: skip
    modules: dict[str, Any] = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    return modules


def _metadata_controls(paths: Paths, tree: PolicyTree) -> list[tuple[str, str]]:
    named = []
    for top in tree.rego_dirs():
        report = json.loads(
            run([opa_bin(paths), "inspect", "-a", "--format", "json", top], "opa inspect").stdout
        )
        for entry in report.get("annotations") or []:
            custom = entry.get("annotations", {}).get("custom") or {}
            for control in custom.get("controls") or []:
                named.append((f"{top.name}/{entry['location']['file']}", str(control)))
    return named


def existing_checks(paths: Paths, tree: PolicyTree) -> Existing:
    """Ask the real OPA parser which rules and tests exist, and which controls the Rego names."""
    rules, tests = set(), set()
    for name, module in _parsed_modules(paths, tree.rego_files()).items():
        package = module["package"]["path"]
        for rule in module.get("rules", []):
            path = rule_path(package, rule["head"])
            if name.endswith(TEST_SUFFIX):
                if path.rsplit(".", 1)[-1].startswith("test_"):
                    tests.add(path)
            else:
                rules.add(path)
    return Existing(
        frozenset(rules), frozenset(tests), paths.root, tuple(_metadata_controls(paths, tree))
    )


def _pytest_exists(root: Path, ref: str) -> bool:
    file, _, name = ref.partition("::")
    path = root / file
    if not name or not path.is_file():
        return False
    scope: list[ast.stmt] = ast.parse(path.read_text()).body
    *classes, func = name.split("::")
    for cls in classes:
        found = [n for n in scope if isinstance(n, ast.ClassDef) and n.name == cls]
        if not found:
            return False
        scope = found[0].body
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == func for n in scope
    )


def _exists(check: Check, existing: Existing) -> bool:
    if check.kind == "rego":
        return check.ref in existing.rego_rules
    if check.kind == "rego-test":
        return check.ref in existing.rego_tests
    if check.kind in REPORT_CHECKS:
        return check.ref in REPORT_CHECKS[check.kind]
    return _pytest_exists(existing.project_root, check.ref)


def problems(catalogue: Catalogue, existing: Existing) -> list[str]:
    """Every way the catalogue and the code disagree; empty when they agree."""
    found = []
    for control in catalogue.controls:
        if control.status not in _MUST_BE_CHECKED:
            continue
        if not control.checks:
            found.append(f"{control.key} is {control.status} but names no check ({control.source})")
        for check in control.checks:
            if not _exists(check, existing):
                found.append(
                    f"{control.key} is {control.status} but its check '{check}' does not exist "
                    f"({control.source})"
                )
    known = catalogue.keys()
    for file, control_key in existing.metadata_controls:
        if control_key not in known:
            found.append(f"{file} names control {control_key}, which the catalogue does not list")
    return found
