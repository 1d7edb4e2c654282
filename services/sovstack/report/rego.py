"""The ``rego: …`` and ``rego-test: …`` checks, with the real ``opa test`` over the policy files.

- ``rego-test: data.<pkg>_test.<test>`` passes when that test ran and passed;
  one that did not run (it no longer exists, or was skipped) is not satisfied.
- ``rego: data.<pkg>.<rule>`` passes when the rule is defined in the policy
  files, every line of it is covered by the tests, and every test passed
  (coverage by failing tests proves nothing).

Evidence: ``opa test`` results and its coverage report, as OPA wrote them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from sovstack.policy.controls import rule_path
from sovstack.policy.tools import PolicyError, run
from sovstack.policy.tree import PolicyTree
from sovstack.report.context import Context
from sovstack.report.model import ERROR, FAIL, NOT_RUN, PASS, CheckResult
from sovstack.report.policy_source import SOURCE_EVIDENCE

__all__ = ["COVERAGE_EVIDENCE", "TEST_EVIDENCE", "check_rego"]

TEST_EVIDENCE: Final = "evidence/opa-test.json"
COVERAGE_EVIDENCE: Final = "evidence/opa-coverage.json"


def _without_durations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_durations(v) for k, v in value.items() if k != "duration"}
    if isinstance(value, list):
        return [_without_durations(v) for v in value]
    return value


def _opa_json(ctx: Context, argv: list[str | Path], what: str, evidence: str) -> Any:
    done = run(argv, what, check=False)
    try:
        value = json.loads(done.stdout)
    except ValueError as exc:
        raise PolicyError(f"{what} did not run: {(done.stdout + done.stderr)[-500:]}") from exc
    if ctx.clock.fixed is not None:
        value = _without_durations(value)
    if isinstance(value, list):  # test results: OPA's order varies from run to run
        value.sort(key=lambda r: (str(r.get("package")), str(r.get("name"))))
    ctx.write(evidence, json.dumps(value, indent=2, sort_keys=True) + "\n")
    return value


def _rules(opa: Path, tree: PolicyTree) -> dict[str, list[tuple[str, int, int]]]:
    """Every rule's data path -> ``(file, first row, last row)`` of each of its definitions."""
    found: dict[str, list[tuple[str, int, int]]] = {}
    for file in tree.rego_files(tests=False):
        done = run(
            [opa, "parse", "--format", "json", "--json-include", "locations", file],
            f"opa parse {file.name}",
        )
        module = json.loads(done.stdout)
        for rule in module.get("rules") or []:
            location = rule["location"]
            text = base64.b64decode(location.get("text", "")).decode("utf-8", "replace")
            first = int(location["row"])
            span = (str(file), first, first + text.count("\n"))
            found.setdefault(rule_path(module["package"]["path"], rule["head"]), []).append(span)
    return found


def _uncovered(coverage: dict[str, Any], spans: list[tuple[str, int, int]]) -> list[str]:
    missing = []
    for file, first, last in spans:
        for gap in coverage.get("files", {}).get(file, {}).get("not_covered", []):
            start, end = gap["start"]["row"], gap["end"]["row"]
            if start <= last and end >= first:
                missing.append(f"{Path(file).name}:{start}-{end}")
    return missing


def check_rego(
    ctx: Context, rules: Sequence[str], tests: Sequence[str], differ: str | None = None
) -> dict[str, list[CheckResult]]:
    """Run ``opa test`` (and its coverage) once; results keyed by ``rego …`` / ``rego-test …``.

    ``differ`` says why the policy files are not the verified bundle's: every check then fails.
    """
    tree = PolicyTree(ctx.inputs.policies)
    where = f"policy files {ctx.inputs.policies} (opa test)"
    opa = ctx.inputs.opa
    load: list[str | Path] = [*tree.opa_load_paths()]
    results: dict[str, list[CheckResult]] = {}
    with ctx.clock.timed() as timer:
        try:
            outcomes = _opa_json(
                ctx, [opa, "test", "--format", "json", *load], "opa test", TEST_EVIDENCE
            )
            defined = _rules(opa, tree)
        except PolicyError as exc:
            for ref in tests:
                results[f"rego-test {ref}"] = [
                    CheckResult(f"rego-test {ref}", where, ERROR, str(exc))
                ]
            for ref in rules:
                results[f"rego {ref}"] = [CheckResult(f"rego {ref}", where, ERROR, str(exc))]
            return results
        argv: list[str | Path] = [opa, "test", "--coverage", "--format", "json", *load]
        try:
            coverage = _opa_json(ctx, argv, "opa test --coverage", COVERAGE_EVIDENCE)
        except PolicyError as exc:
            # OPA prints no coverage when a test fails; the rule checks then fail on that.
            ctx.write(COVERAGE_EVIDENCE, json.dumps({"error": str(exc)}, indent=2) + "\n")
            coverage = None
    by_name = {f"{o['package']}.{o['name']}": o for o in outcomes}
    failing = [name for name, o in by_name.items() if o.get("fail") or o.get("error")]
    for ref in tests:
        outcome = by_name.get(ref)
        if outcome is None:
            result, message = NOT_RUN, "opa test did not run it: no such test in the policy files"
        elif outcome.get("skip"):
            result, message = NOT_RUN, "opa test skipped it"
        elif outcome.get("fail") or outcome.get("error"):
            result = FAIL
            message = f"failed: {outcome.get('error', {}).get('message', 'the test is false')}"
        else:
            result, message = PASS, "passed"
        results[f"rego-test {ref}"] = [
            CheckResult(f"rego-test {ref}", where, result, message, timer.seconds, TEST_EVIDENCE)
        ]
    for ref in rules:
        spans = defined.get(ref)
        if not spans:
            result, message = FAIL, "no such rule in the policy files"
        elif failing or coverage is None:
            first = failing[0] if failing else "opa test --coverage gave no report"
            result, message = FAIL, f"{len(failing)} policy tests fail (first: {first})"
        elif gaps := _uncovered(coverage, spans):
            result, message = FAIL, f"lines not covered by the tests: {', '.join(gaps)}"
        else:
            result = PASS
            message = f"defined, every line covered by {len(by_name)} passing tests"
        results[f"rego {ref}"] = [
            CheckResult(f"rego {ref}", where, result, message, timer.seconds, COVERAGE_EVIDENCE)
        ]
    if differ is not None:
        for key, found in results.items():
            results[key] = [
                CheckResult(r.check, r.where, FAIL, differ, r.duration_s, SOURCE_EVIDENCE)
                for r in found
            ]
    return results
