"""Run every check the catalogue names, once each, and turn each control into a finding.

A check several controls name runs once and counts for each of them; each
finding lists the other controls that share one of its checks. A check
whose input was not given (no log, no host) did not run: its controls are
not satisfied, and say so.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from dataclasses import dataclass

from sovstack.policy import controls
from sovstack.policy.tree import PolicyTree
from sovstack.report.bundles import check_bundle
from sovstack.report.context import Context
from sovstack.report.logs import check_logs
from sovstack.report.model import NOT_RUN, PASS, CheckResult, Finding, control_state
from sovstack.report.policy_source import compare_with_bundle
from sovstack.report.pytests import check_pytests
from sovstack.report.rego import check_rego

__all__ = ["CATALOGUE_EVIDENCE", "Assessment", "assess"]

CATALOGUE_EVIDENCE = "evidence/catalogue"
_NO_INPUT = {
    "audit": "no audit log was given (--log)",
    "bundle": "no bundle was given (--bundle)",
}


@dataclass(frozen=True)
class Assessment:
    catalogue: controls.Catalogue
    catalogue_digest: str  # sha256:<hex> over the copied catalogue's SHA256SUMS
    findings: tuple[Finding, ...]


def _copy_catalogue(ctx: Context, catalogue_dir: str) -> str:
    """Copy the catalogue into the evidence; return the digest of its SHA256SUMS."""
    source = PolicyTree(ctx.inputs.policies).controls_dir
    lines = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        target = ctx.folder / catalogue_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        lines.append(f"{hashlib.sha256(target.read_bytes()).hexdigest()}  {relative}\n")
    sums = ctx.write(f"{catalogue_dir}/SHA256SUMS", "".join(lines))
    return "sha256:" + hashlib.sha256((ctx.folder / sums).read_bytes()).hexdigest()


def _run_checks(ctx: Context, catalogue: controls.Catalogue) -> dict[str, list[CheckResult]]:
    named: dict[str, set[str]] = defaultdict(set)
    for control in catalogue.controls:
        if control.status in ("automated", "partial"):
            for check in control.checks:
                named[check.kind].add(check.ref)
    results: dict[str, list[CheckResult]] = {}
    bundle = check_bundle(ctx)["bundle verify"][0] if ctx.inputs.bundle is not None else None
    if named["bundle"]:
        results["bundle verify"] = [bundle] if bundle else check_bundle(ctx)["bundle verify"]
    if named["rego"] or named["rego-test"]:
        differ = compare_with_bundle(ctx, bundle is not None and bundle.result == PASS)
        results |= check_rego(ctx, sorted(named["rego"]), sorted(named["rego-test"]), differ)
    if named["pytest"]:
        results |= check_pytests(ctx, sorted(named["pytest"]))
    if named["audit"]:
        results |= check_logs(ctx)
    return results


def assess(ctx: Context) -> Assessment:
    """Load the catalogue (a :class:`PolicyError` if it is not valid), run it, find."""
    catalogue = controls.load(PolicyTree(ctx.inputs.policies).controls_dir)
    digest = _copy_catalogue(ctx, CATALOGUE_EVIDENCE)
    results = _run_checks(ctx, catalogue)
    naming: dict[str, list[str]] = defaultdict(list)
    for control in catalogue.controls:
        for check in control.checks:
            naming[str(check)].append(control.key)
    findings = []
    for control in catalogue.controls:
        found: list[CheckResult] = []
        if control.status in ("automated", "partial"):
            for check in control.checks:
                got = results.get(str(check)) or [
                    CheckResult(str(check), "-", NOT_RUN, _NO_INPUT.get(check.kind, "not run"))
                ]
                found.extend(got)
        shared = sorted({k for c in control.checks for k in naming[str(c)]} - {control.key})
        state, reason = control_state(control.status, tuple(found))
        findings.append(
            Finding(
                key=control.key,
                framework=control.framework,
                control_id=control.id,
                title=control.title,
                catalogue_status=control.status,
                shared_with=tuple(shared),
                checks=tuple(found),
                state=state,
                reason=reason,
            )
        )
    return Assessment(catalogue, digest, tuple(findings))
