"""The ``pytest: …`` checks: the catalogue's Python tests, and host checks over the inventory.

A check ``pytest: tests/cluster/<file>::<test>`` is a host check: it runs
with testinfra once per host of ``--hosts`` (``ansible://all`` with the
inventory, or ``local://`` for the dev stack), and its evidence is the JUnit
of that run. Every host is first asked to run ``true``: one that does not
answer is an *error* for each host check, never a skip and never a pass.
Every other pytest check runs once, here. A test that pytest skipped or
never collected did not run, and is not satisfied.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sovstack.policy.tools import PolicyError, run
from sovstack.report.context import Context
from sovstack.report.model import ERROR, FAIL, NOT_RUN, PASS, CheckResult

__all__ = ["HOST_TESTS", "check_pytests", "is_host_check", "reachable"]

HOST_TESTS: Final = "tests/cluster/"
LOCAL_EVIDENCE: Final = "evidence/pytest.junit.xml"
HOST_EVIDENCE: Final = "evidence/hosts.junit.xml"
_VOLATILE = re.compile(rb' (time|timestamp|hostname)="[^"]*"')


def is_host_check(ref: str) -> bool:
    return ref.startswith(HOST_TESTS)


def reachable(specs: Sequence[str], inventory: Path | None) -> dict[str, str | None]:
    """Each host of ``specs``, by its pytest id: ``None`` if it ran ``true``, else why not."""
    import testinfra  # the control host's and the auditor's extra; never needed on a node

    kwargs = {"ansible_inventory": str(inventory)} if inventory else {}
    found: dict[str, str | None] = {}
    for host in testinfra.get_hosts(list(specs), **kwargs):
        name = str(host.backend.get_pytest_id())
        try:
            done = host.run("true")
        except Exception as exc:  # any backend failure means: not reachable
            found[name] = f"unreachable: {type(exc).__name__}: {exc}"
            continue
        found[name] = (
            None
            if done.rc == 0
            else (f"unreachable: 'true' exited {done.rc}: {(done.stderr or '').strip()[:300]}")
        )
    return found


def _run_pytest(ctx: Context, refs: list[str], junit: str, extra: list[str]) -> str | None:
    """Run pytest on ``refs``, writing ``junit``; ``None`` or why it did not run."""
    target = ctx.folder / junit
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={target}",
        *extra,
        *refs,
    ]
    try:
        done = run(argv, "pytest", cwd=ctx.inputs.project_root, check=False)
    except PolicyError as exc:
        return str(exc)
    if not target.is_file():
        return f"pytest wrote no results (exit {done.returncode}): {done.stdout[-500:]}"
    if ctx.clock.fixed is not None:
        target.write_bytes(_VOLATILE.sub(b"", target.read_bytes()))
    return None


Outcomes = dict[str, tuple[str, str, float]]  # test case name -> (result, message, seconds)


def _outcomes(junit: Path) -> dict[tuple[str, str], tuple[str, str, float]]:
    """``(classname, name) -> (result, message, seconds)`` for every testcase in a JUnit file."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 (our own pytest's output)
        result, message = PASS, "passed"
        for tag, outcome in (("failure", FAIL), ("error", ERROR), ("skipped", NOT_RUN)):
            node = case.find(tag)
            if node is not None:
                result = outcome
                message = (node.get("message") or tag).strip().splitlines()[0][:500]
                break
        seconds = float(case.get("time") or 0.0)  # absent under a fixed clock
        found[(case.get("classname", ""), case.get("name", ""))] = (result, message, seconds)
    return found


def _classname(ref: str) -> tuple[str, str]:
    file, *parts = ref.split("::")
    module = file.removesuffix(".py").replace("/", ".")
    return ".".join([module, *parts[:-1]]), parts[-1] if parts else ""


def check_pytests(ctx: Context, refs: Sequence[str]) -> dict[str, list[CheckResult]]:
    """Run every pytest check in ``refs``; results keyed by ``pytest <ref>``."""
    results: dict[str, list[CheckResult]] = {f"pytest {r}": [] for r in refs}
    local = sorted({r for r in refs if not is_host_check(r)})
    hosted = sorted({r for r in refs if is_host_check(r)})
    if local:
        _collect(ctx, local, LOCAL_EVIDENCE, [], None, results)
    if hosted:
        if not ctx.inputs.hosts:
            for ref in hosted:
                results[f"pytest {ref}"].append(
                    CheckResult(
                        f"pytest {ref}", "no hosts", NOT_RUN, "no hosts were given (--hosts)"
                    )
                )
            return results
        with ctx.clock.timed() as timer:
            try:
                hosts = reachable(ctx.inputs.hosts, ctx.inputs.inventory)
            except Exception as exc:  # a bad inventory or spec: every host check errs
                hosts = {spec: f"the hosts cannot be listed: {exc}" for spec in ctx.inputs.hosts}
        ctx.write(
            "evidence/hosts-reachability.txt",
            "".join(f"{name}: {why or 'reachable'}\n" for name, why in sorted(hosts.items())),
        )
        extra = [f"--hosts={','.join(ctx.inputs.hosts)}"]
        if ctx.inputs.inventory is not None:
            extra.append(f"--ansible-inventory={ctx.inputs.inventory}")
        if any(why is None for why in hosts.values()):
            _collect(ctx, hosted, HOST_EVIDENCE, extra, hosts, results)
        for ref in hosted:
            for name, why in sorted(hosts.items()):
                if why is not None:  # an unreachable host is an error, whatever pytest said
                    results[f"pytest {ref}"] = [
                        r for r in results[f"pytest {ref}"] if r.where != name
                    ] + [
                        CheckResult(
                            f"pytest {ref}",
                            name,
                            ERROR,
                            why,
                            timer.seconds,
                            "evidence/hosts-reachability.txt",
                        )
                    ]
    return results


Case = tuple[str, str, str, float]  # (case, result, message, seconds)


def _cases_of(name: str, where: str | None, outcomes: Outcomes) -> list[Case]:
    """Every case of test ``name`` (every parameter; on host ``where`` only)."""
    found = []
    for case, (result, message, seconds) in outcomes.items():
        if case == name and where is None:
            found.append((case, result, message, seconds))
        elif case.startswith(name + "[") and case.endswith("]"):
            params = case[len(name) + 1 : -1]
            on_host = where is None or (
                params == where
                or params.startswith(where + "-")
                or params.endswith("-" + where)
                or f"-{where}-" in params
            )
            if on_host:
                found.append((case, result, message, seconds))
    return found


def _worst(cases: list[Case]) -> tuple[str, str, float]:
    """The worst result of the cases (fail, error, not run, pass), why, and their seconds."""
    seconds = round(sum(c[3] for c in cases), 3)
    if not cases:
        return NOT_RUN, "pytest did not run it (not collected)", 0.0
    for outcome in (FAIL, ERROR, NOT_RUN):
        bad = [c for c in cases if c[1] == outcome]
        if bad:
            why = f"{len(bad)} of {len(cases)} cases {outcome}; {bad[0][0]}: {bad[0][2]}"
            return outcome, why, seconds
    return PASS, "passed" if len(cases) == 1 else f"all {len(cases)} cases passed", seconds


def _collect(
    ctx: Context,
    refs: list[str],
    junit: str,
    extra: list[str],
    hosts: dict[str, str | None] | None,
    results: dict[str, list[CheckResult]],
) -> None:
    with ctx.clock.timed() as timer:
        why = _run_pytest(ctx, refs, junit, extra)
    outcomes = {} if why is not None else _outcomes(ctx.folder / junit)
    # A test's own time from the JUnit; when pytest did not run, the time spent trying.
    for ref in refs:
        classname, name = _classname(ref)
        mine = {case: v for (cls, case), v in outcomes.items() if cls == classname}
        for where in sorted(hosts) if hosts is not None else [None]:
            if why is not None:
                result, message, seconds = ERROR, f"pytest did not run: {why}", timer.seconds
            else:
                result, message, seconds = _worst(_cases_of(name, where, mine))
            results[f"pytest {ref}"].append(
                CheckResult(
                    f"pytest {ref}",
                    where or "local (pytest)",
                    result,
                    message,
                    seconds,
                    junit if why is None else "",
                )
            )
