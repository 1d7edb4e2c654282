"""``assessment-results.json``: OSCAL 1.2 assessment results, one finding per control.

Every id is a UUIDv5 of the report's inputs (the digest of all evidence and
the clock's time) and of what it names, so a re-run over the same inputs with
a fixed clock gives the same bytes. Each check as it ran is an observation;
each evidence file is a back-matter resource carrying its SHA-256, and
observations point to it. Controls that are planned, manual or not
applicable are findings too, marked ``not-assessed`` (counted apart).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, Final

from sovstack import __version__
from sovstack.report.model import SATISFIED, CheckResult, Figure, Finding

__all__ = ["NAMESPACE", "OSCAL_VERSION", "PROP_NS", "assessment_results", "inputs_digest"]

OSCAL_VERSION: Final = "1.2.1"
NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sovstack:audit-report")
PROP_NS: Final = "https://sovstack.invalid/ns/audit-report"  # a name, never fetched


def inputs_digest(evidence: dict[str, str], when: datetime) -> str:
    """The digest every id is derived from: each evidence file's SHA-256, and the time."""
    text = "".join(f"{digest}  {path}\n" for path, digest in sorted(evidence.items()))
    return hashlib.sha256(f"{when.isoformat()}\n{text}".encode()).hexdigest()


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _prop(name: str, value: str) -> dict[str, str]:
    return {"name": name, "ns": PROP_NS, "value": value}


def assessment_results(
    findings: tuple[Finding, ...],
    figure: Figure,
    evidence: dict[str, str],
    catalogue_digest: str,
    when: datetime,
) -> bytes:
    """The OSCAL document's bytes (sorted keys, two-space indent, final newline)."""
    seed = inputs_digest(evidence, when)

    def uid(*parts: str) -> str:
        return str(uuid.uuid5(NAMESPACE, "/".join([seed, *parts])))

    resources = {path: uid("resource", path) for path in sorted(evidence)}
    observations: dict[tuple[str, str], dict[str, Any]] = {}
    for finding in findings:
        for check in finding.checks:
            observations.setdefault(
                (check.check, check.where), _observation(check, uid, resources, when)
            )
    results_findings = [_finding(f, uid, observations) for f in findings]
    doc = {
        "assessment-results": {
            "uuid": uid("assessment-results"),
            "metadata": {
                "title": "sovstack compliance evidence pack",
                "last-modified": _ts(when),
                "version": __version__,
                "oscal-version": OSCAL_VERSION,
                "props": [_prop("catalogue-digest", catalogue_digest)],
            },
            "import-ap": {"href": f"#{resources['evidence/catalogue/SHA256SUMS']}"},
            "results": [
                {
                    "uuid": uid("result"),
                    "title": "make audit",
                    "description": figure.formula(),
                    "start": _ts(when),
                    "end": _ts(when),
                    "props": [
                        _prop("compliance-percent", f"{figure.percent:.1f}"),
                        _prop("satisfied", str(figure.satisfied)),
                        _prop("assessed", str(figure.assessed)),
                        _prop("not-assessed", str(figure.not_assessed)),
                    ],
                    "reviewed-controls": {"control-selections": [{"include-all": {}}]},
                    "observations": [observations[k] for k in sorted(observations)],
                    "findings": results_findings,
                }
            ],
            "back-matter": {
                "resources": [
                    {
                        "uuid": resources[path],
                        "title": path,
                        "rlinks": [
                            {"href": path, "hashes": [{"algorithm": "SHA-256", "value": digest}]}
                        ],
                    }
                    for path, digest in sorted(evidence.items())
                ]
            },
        }
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _observation(
    check: CheckResult, uid: Any, resources: dict[str, str], when: datetime
) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "uuid": uid("observation", check.check, check.where),
        "title": check.check,
        "description": f"{check.check} on {check.where}: {check.result}: {check.message}",
        "methods": ["TEST"],
        "props": [
            _prop("where", check.where),
            _prop("result", check.result),
            _prop("duration-s", f"{check.duration_s:.3f}"),
        ],
        "collected": _ts(when),
    }
    if check.evidence in resources:
        observation["relevant-evidence"] = [
            {"href": f"#{resources[check.evidence]}", "description": check.evidence}
        ]
    return observation


def _finding(
    finding: Finding, uid: Any, observations: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any]:
    satisfied = finding.state == SATISFIED
    related = sorted({observations[(c.check, c.where)]["uuid"] for c in finding.checks})
    doc: dict[str, Any] = {
        "uuid": uid("finding", finding.key),
        "title": f"{finding.control_id} {finding.title}",
        "description": finding.reason or "every check passed",
        "props": [
            _prop("framework", finding.framework),
            _prop("catalogue-status", finding.catalogue_status),
            _prop("assessment-state", finding.state),
        ],
        "target": {
            "type": "objective-id",
            "target-id": finding.control_id,
            "status": {
                "state": "satisfied" if satisfied else "not-satisfied",
                "reason": "pass"
                if satisfied
                else ("other" if finding.state != "not-satisfied" else "fail"),
            },
        },
    }
    if related:
        doc["related-observations"] = [{"observation-uuid": u} for u in related]
    if not satisfied:
        doc["remarks"] = finding.reason
    return doc
