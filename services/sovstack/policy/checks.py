"""``make policy-test``: every check the policies must pass, with the real tools.

1. ``opa fmt``: every Rego file is formatted (the diff is shown otherwise);
2. ``opa check --strict``: everything compiles in strict mode;
3. ``regal lint``: the Rego style guide, configured in ``policies/.regal/``;
4. ``opa test``: every test passes, and every line of policy is covered;
5. the control catalogue names only checks that exist (:mod:`.controls`).

All five run even when an earlier one fails, so one run shows every problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sovstack.core.paths import Paths
from sovstack.core.progress import Echo
from sovstack.policy import controls
from sovstack.policy.tools import PolicyError, opa_bin, regal_bin, run
from sovstack.policy.tree import PolicyTree

__all__ = ["run_all", "uncovered_lines"]


COVERAGE_REQUIRED = 100.0


def _fmt(paths: Paths, tree: PolicyTree) -> str:
    done = run(
        [opa_bin(paths), "fmt", "--diff", "--fail", *tree.rego_dirs()], "opa fmt", check=False
    )
    if done.returncode != 0:
        raise PolicyError(f"opa fmt: these files need 'opa fmt -w':\n{done.stdout}{done.stderr}")
    return f"{len(tree.rego_files())} files formatted"


def _check(paths: Paths, tree: PolicyTree) -> str:
    run([opa_bin(paths), "check", "--strict", *tree.opa_load_paths()], "opa check --strict")
    return "compiles in strict mode"


def _regal(paths: Paths, tree: PolicyTree) -> str:
    done = run(
        [regal_bin(paths), "lint", "--format", "compact", *tree.rego_dirs()],
        "regal lint",
        check=False,
    )
    if done.returncode != 0:
        raise PolicyError(f"regal lint found violations:\n{done.stdout}{done.stderr}")
    return "no violations"


def uncovered_lines(report: dict[str, Any]) -> list[str]:
    """``file:first-last`` for every range an ``opa test --coverage`` report leaves uncovered."""
    found = []
    for name, file in sorted(report.get("files", {}).items()):
        for span in file.get("not_covered", []):
            first, last = span["start"]["row"], span["end"]["row"]
            found.append(f"{name}:{first}" if first == last else f"{name}:{first}-{last}")
    return found


def _test(paths: Paths, tree: PolicyTree) -> str:
    load = tree.opa_load_paths()
    done = run([opa_bin(paths), "test", "--format", "json", *load], "opa test", check=False)
    try:
        results: list[dict[str, Any]] = json.loads(done.stdout)
    except ValueError as exc:
        raise PolicyError(f"opa test did not run:\n{done.stdout}{done.stderr}") from exc
    failed = [
        f"{r['package']}.{r['name']}: {r.get('error', {}).get('message', 'FAIL')}"
        for r in results
        if r.get("fail") or r.get("error")
    ]
    if failed or done.returncode != 0:
        raise PolicyError(
            f"opa test: {len(failed)} of {len(results)} failed:\n" + "\n".join(failed)
        )
    report = json.loads(
        run([opa_bin(paths), "test", "--coverage", "--format", "json", *load], "coverage").stdout
    )
    coverage = float(report.get("coverage", 0.0))
    if coverage < COVERAGE_REQUIRED:
        raise PolicyError(
            f"opa test: coverage is {coverage:.2f}%, not {COVERAGE_REQUIRED:.0f}%; not covered:\n"
            + "\n".join(uncovered_lines(report))
        )
    return f"{len(results)} tests passed, coverage {coverage:.0f}%"


def _controls(paths: Paths, tree: PolicyTree) -> str:
    catalogue = controls.load(tree.controls_dir)
    problems = controls.problems(catalogue, controls.existing_checks(paths, tree))
    if problems:
        raise PolicyError("the control catalogue is inconsistent:\n" + "\n".join(problems))
    counts = catalogue.status_counts()
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + " controls"


STEPS: dict[str, Callable[[Paths, PolicyTree], str]] = {
    "opa fmt": _fmt,
    "opa check --strict": _check,
    "regal lint": _regal,
    "opa test --coverage": _test,
    "control catalogue": _controls,
}


def run_all(paths: Paths, echo: Echo, root: Path | None = None) -> None:
    """Run every step over ``root`` (default: the checkout's policies/); raise if any failed."""
    tree = PolicyTree(root or paths.policies)
    failed = []
    for name, step in STEPS.items():
        try:
            echo(f"==> {name}: {step(paths, tree)}")
        except PolicyError as exc:
            echo(f"==> {name}: FAILED\n{exc}")
            failed.append(name)
    if failed:
        raise PolicyError(f"policy checks failed: {', '.join(failed)}")
