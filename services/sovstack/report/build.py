"""``sovstack audit report``: assess, write the pack into a staging folder, sign it, rename it.

The pack is built in ``<out>.incomplete``; only once every file is written
and the envelope signed is it renamed to ``<out>``. A usage or I/O error
(exit 2) signs nothing and leaves the ``.incomplete`` folder for a look.
The exit code of a signed pack is 0 when no assessed control failed or
errored, 1 otherwise (:func:`sovstack.report.model.exit_code`).
"""

from __future__ import annotations

import hashlib
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sovstack import __version__
from sovstack.audit.errors import AuditError
from sovstack.audit.keys import load_public_key, load_signing_key
from sovstack.policy.tools import PolicyError, run
from sovstack.report.assess import assess
from sovstack.report.context import Clock, Context, Inputs
from sovstack.report.dsse import ENVELOPE_NAME, fingerprint, sign_statement
from sovstack.report.errors import ReportError
from sovstack.report.html import report_html
from sovstack.report.junit import junit_xml
from sovstack.report.logs import log_members
from sovstack.report.model import Figure, Finding, compliance_figure, exit_code
from sovstack.report.oscal import assessment_results

__all__ = [
    "HTML_NAME",
    "JUNIT_NAME",
    "OSCAL_NAME",
    "SCREENSHOT_NAME",
    "Outcome",
    "build_report",
    "file_digests",
]

OSCAL_NAME = "assessment-results.json"
HTML_NAME = "report.html"
JUNIT_NAME = "junit.xml"
SCREENSHOT_NAME = "report.png"

# Renders HTML_NAME in a folder to a PNG; returns why not, or None.
Screenshot = Callable[[Path, Path], str | None]


@dataclass(frozen=True)
class Outcome:
    folder: Path
    exit_code: int
    figure: Figure
    findings: tuple[Finding, ...]
    screenshot: str | None  # why there is none, if there is none


def file_digests(folder: Path, under: str = "") -> dict[str, str]:
    """``relative path -> sha256 hex`` of every regular file in ``folder`` (or ``under`` it)."""
    base = folder / under if under else folder
    found = {}
    for path in sorted(base.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[path.relative_to(folder).as_posix()] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return found


def _tool_versions(inputs: Inputs) -> dict[str, str]:
    versions = {"sovstack": __version__, "python": platform.python_version()}
    for dist in ("cryptography", "pytest", "pytest-testinfra"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    try:
        first = run([inputs.opa, "version"], "opa version").stdout.splitlines()[0]
        versions["opa"] = first.removeprefix("Version:").strip()
    except (PolicyError, IndexError) as exc:
        versions["opa"] = f"unknown: {exc}"
    return versions


def _check_inputs(inputs: Inputs) -> None:
    if not inputs.policies.is_dir():
        raise ReportError(f"the policy folder {inputs.policies} does not exist")
    if not inputs.opa.is_file():
        raise ReportError(f"{inputs.opa} is missing: run 'make deps' (or give --opa)")
    # Each log's (each member's) public key was loaded for its fingerprint already.
    for log in inputs.logs:
        if not log.directory.is_dir():
            raise ReportError(f"the audit log folder {log.directory} does not exist")
    if inputs.witness_state is not None and not inputs.witness_state.is_dir():
        raise ReportError(f"the witness state folder {inputs.witness_state} does not exist")
    if inputs.inventory is not None and not inputs.inventory.exists():
        raise ReportError(f"the inventory {inputs.inventory} does not exist")
    if inputs.proofs < 1:
        raise ReportError("--proofs must be at least 1")


def build_report(
    inputs: Inputs,
    out: Path,
    signing_key: Path,
    clock: Clock | None = None,
    screenshot: Screenshot | None = None,
) -> Outcome:
    """Write the signed pack to ``out``; :class:`ReportError` (exit 2) signs nothing."""
    clock = clock or Clock()
    if out.exists():
        raise ReportError(f"{out} already exists: give a new folder (a pack is never rewritten)")
    staging = out.with_name(out.name + ".incomplete")
    try:
        key = load_signing_key(signing_key)
        fingerprints = {"report": fingerprint(key.public_key())}
        for one in (m for log in inputs.logs for m in log_members(log)):
            fingerprints[f"log {one.label}"] = fingerprint(load_public_key(one.log.pubkey))
        if inputs.bundle_pubkey is not None:
            fingerprints["bundle"] = fingerprint(load_public_key(inputs.bundle_pubkey))
    except AuditError as exc:
        raise ReportError(str(exc)) from exc
    _check_inputs(inputs)
    if staging.exists():
        shutil.rmtree(staging)  # an earlier run's leftover
    staging.mkdir(parents=True)
    ctx = Context(inputs, staging, clock)
    try:
        assessment = assess(ctx)
    except PolicyError as exc:
        raise ReportError(f"the report could not be made: {exc}") from exc
    findings = assessment.findings
    figure = compliance_figure(findings)
    code = exit_code(findings)
    verdict = "pass" if code == 0 else "fail"
    evidence = file_digests(staging, "evidence")
    when = clock.now()
    logs = ctx.facts.get("logs", [])
    ctx.write(
        OSCAL_NAME,
        assessment_results(findings, figure, evidence, assessment.catalogue_digest, when),
    )
    ctx.write(
        HTML_NAME,
        report_html(findings, figure, verdict, evidence, assessment.catalogue_digest, logs, when),
    )
    ctx.write(JUNIT_NAME, junit_xml(findings))
    why_no_screenshot = None
    if screenshot is not None:
        why_no_screenshot = screenshot(staging / HTML_NAME, staging / SCREENSHOT_NAME)
    predicate = {
        "verdict": verdict,
        "exit_code": code,
        "compliance": {
            "percent": f"{figure.percent:.1f}",
            "formula": figure.formula(),
            "satisfied": figure.satisfied,
            "assessed": figure.assessed,
            "not_assessed": figure.not_assessed,
        },
        "catalogue_digest": assessment.catalogue_digest,
        "checkpoints": {log["directory"]: log["checkpoint"] for log in logs},
        "tool_versions": _tool_versions(inputs),
        "key_fingerprints": fingerprints,
        "generated_at": when.isoformat(),
    }
    subjects = file_digests(staging)
    ctx.write(ENVELOPE_NAME, sign_statement(subjects, predicate, key))
    staging.rename(out)
    return Outcome(out, code, figure, findings, why_no_screenshot)
