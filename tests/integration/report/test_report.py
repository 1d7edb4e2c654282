"""The report over real inputs and a small catalogue: semantics an auditor relies on."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from sovstack.audit import generate_signing_key
from sovstack.report import Clock, LogInput, ReportError, build_report
from sovstack.report.build import file_digests
from tests.integration.report.conftest import FIXED, NOW, MakePolicies, Site, write_log

CATALOGUE = """controls:
  - id: LOG-1
    title: Tamper-evident log
    status: automated
    checks:
      - audit: verify
      - audit: inclusion
      - audit: pairing
  - id: LOG-2
    title: Witnessed
    status: automated
    checks:
      - audit: witness
  - id: LOG-3
    title: Kept six months
    status: partial
    checks:
      - audit: retention
  - id: BUN-1
    title: Signed bundle
    status: automated
    checks:
      - bundle: verify
  - id: POL-1
    title: Access decision
    status: automated
    checks:
      - rego: data.demo.gate.allow
      - rego-test: data.demo.gate_test.test_allow_engineer
  - id: LATER-1
    title: Not built yet
    status: planned
    notes: later
"""


def _states(outcome_findings: tuple[object, ...]) -> dict[str, str]:
    return {f.control_id: f.state for f in outcome_findings}  # type: ignore[attr-defined]


def test_a_clean_run_satisfies_every_assessed_control_and_exits_0(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    outcome = build_report(
        site.inputs(small_policies(CATALOGUE)), tmp_path / "pack", site.report_key, FIXED
    )
    assert _states(outcome.findings) == {
        "LOG-1": "satisfied",
        "LOG-2": "satisfied",
        "LOG-3": "satisfied",
        "BUN-1": "satisfied",
        "POL-1": "satisfied",
        "LATER-1": "not-assessed",
    }
    assert outcome.exit_code == 0
    assert (outcome.figure.satisfied, outcome.figure.assessed) == (5, 5)
    assert outcome.figure.not_assessed == 1
    pack = tmp_path / "pack"
    logs = next((pack / "evidence" / "logs").iterdir())
    proofs = (logs / "inclusion-proofs.jsonl").read_text().splitlines()
    assert 1 <= len(proofs) <= 8
    assert json.loads((logs / "consistency-proof.json").read_text())["old_size"] > 0
    assert (logs / "witness-checkpoint.txt").is_file()
    pairing = json.loads((logs / "pairing.json").read_text())
    assert pairing["accepted_without_end"] == [] and pairing["events"]["denied"] == 8
    assert (pack / "evidence" / "catalogue" / "fw" / "family.yml").read_text() == CATALOGUE
    junit = (pack / "junit.xml").read_text()
    assert junit.count("<testcase") == 6 and "<failure" not in junit


def test_a_rerun_over_the_same_inputs_with_a_fixed_clock_is_byte_identical(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    inputs = site.inputs(small_policies(CATALOGUE))
    build_report(inputs, tmp_path / "one", site.report_key, FIXED)
    build_report(inputs, tmp_path / "two", site.report_key, FIXED)
    one, two = file_digests(tmp_path / "one"), file_digests(tmp_path / "two")
    assert one == two
    assert "assessment-results.json" in one and "report.dsse.json" in one


def test_the_oscal_document_validates_with_compliance_trestle(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    from trestle.oscal.assessment_results import AssessmentResults

    build_report(site.inputs(small_policies(CATALOGUE)), tmp_path / "p", site.report_key, FIXED)
    doc = json.loads((tmp_path / "p" / "assessment-results.json").read_text())
    results = AssessmentResults.parse_obj(doc["assessment-results"])
    findings = results.results[0].findings
    assert findings is not None and len(findings) == 6
    states = {f.target.target_id: f.target.status.state.value for f in findings}
    assert states["LOG-1"] == "satisfied" and states["LATER-1"] == "not-satisfied"


def test_missing_inputs_are_not_satisfied_and_say_why(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    inputs = site.inputs(small_policies(CATALOGUE), logs=(), bundle=None, witness_state=None)
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    found = {f.control_id: f for f in outcome.findings}
    assert found["BUN-1"].state == "not-satisfied"
    assert "not provided" in found["BUN-1"].reason
    for cid in ("LOG-1", "LOG-2", "LOG-3"):
        assert found[cid].state == "error"
        assert "no audit log was given" in found[cid].reason
    assert found["POL-1"].state == "satisfied"
    assert outcome.exit_code == 1
    assert (outcome.figure.satisfied, outcome.figure.assessed) == (1, 5)


def test_a_witness_that_saw_nothing_of_this_log_is_a_check_that_did_not_run(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    (tmp_path / "empty-witness").mkdir()
    inputs = site.inputs(small_policies(CATALOGUE), witness_state=tmp_path / "empty-witness")
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    found = {f.control_id: f for f in outcome.findings}
    assert found["LOG-2"].state == "error"
    assert "accepted no checkpoint" in found["LOG-2"].reason
    assert outcome.exit_code == 1


def test_zero_checks_are_never_satisfied(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    family = "controls:\n  - id: EMPTY-1\n    title: Nothing\n    status: automated\n"
    outcome = build_report(
        site.inputs(small_policies(family)), tmp_path / "pack", site.report_key, FIXED
    )
    (finding,) = outcome.findings
    assert finding.state == "error" and "zero checks" in finding.reason
    assert outcome.exit_code == 1
    assert outcome.figure.percent == 0.0


def test_a_failing_policy_test_fails_its_rule_and_its_test(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    policies = small_policies(CATALOGUE)
    gate = policies / "demo" / "gate" / "gate.rego"
    gate.write_text(gate.read_text().replace('"engineer"', '"nobody"'))
    outcome = build_report(site.inputs(policies), tmp_path / "pack", site.report_key, FIXED)
    found = {f.control_id: f for f in outcome.findings}
    assert found["POL-1"].state == "not-satisfied"
    results = {c.check: c.result for c in found["POL-1"].checks}
    assert results == {
        "rego data.demo.gate.allow": "fail",
        "rego-test data.demo.gate_test.test_allow_engineer": "fail",
    }
    assert outcome.exit_code == 1


def test_a_log_younger_than_six_months_cannot_yet_show_retention(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    young = tmp_path / "young"
    write_log(young, site.log_pubkey.with_suffix(""), range(4), NOW - timedelta(days=30))
    inputs = site.inputs(
        small_policies(CATALOGUE), logs=(LogInput(young, site.log_pubkey),), witness_state=None
    )
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    found = {f.control_id: f for f in outcome.findings}
    assert found["LOG-3"].state == "cannot-yet-be-shown"
    assert "cannot yet be shown" in found["LOG-3"].reason
    assert found["LOG-3"].state != "satisfied"
    assert "cannot yet be shown" in (tmp_path / "pack" / "report.html").read_text()


def test_an_unreachable_host_is_an_error_not_a_skip(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    family = """controls:
  - id: HOST-1
    title: sshd runs
    status: automated
    checks:
      - pytest: tests/cluster/test_nodes.py::test_sshd_runs_and_listens_on_port_22
"""
    # Port 1 on loopback: nothing listens there, nothing leaves the machine.
    inputs = site.inputs(small_policies(family), hosts=("ssh://nobody@127.0.0.1:1",))
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    (finding,) = outcome.findings
    assert finding.state == "error"
    assert [c.result for c in finding.checks] == ["error"]
    assert "unreachable" in finding.checks[0].message
    assert outcome.exit_code == 1
    assert (tmp_path / "pack" / "evidence" / "hosts-reachability.txt").is_file()


def test_a_usage_error_signs_nothing_and_leaves_the_folder_incomplete(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    policies = small_policies(CATALOGUE)
    (policies / "controls" / "fw" / "family.yml").write_text("controls: [not: {valid")
    with pytest.raises(ReportError, match="not valid YAML"):
        build_report(site.inputs(policies), tmp_path / "pack", site.report_key, FIXED)
    assert not (tmp_path / "pack").exists()
    assert (tmp_path / "pack.incomplete").is_dir()
    assert not (tmp_path / "pack.incomplete" / "report.dsse.json").exists()


def test_a_report_key_readable_by_others_is_a_usage_error(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    key = tmp_path / "loose.key"
    generate_signing_key(key)
    key.chmod(0o644)
    with pytest.raises(ReportError):
        build_report(site.inputs(small_policies(CATALOGUE)), tmp_path / "pack", key, Clock())
    assert not (tmp_path / "pack").exists()


def test_policy_files_other_than_the_verified_bundles_fail_every_rego_check(
    site: Site, small_policies: MakePolicies, tmp_path: Path
) -> None:
    policies = small_policies(CATALOGUE)
    gate = policies / "demo" / "gate" / "gate.rego"
    gate.write_text(gate.read_text() + '\nextra if input.role == "engineer"\n')
    outcome = build_report(site.inputs(policies), tmp_path / "pack", site.report_key, FIXED)
    found = {f.control_id: f for f in outcome.findings}
    assert found["BUN-1"].state == "satisfied"
    assert found["POL-1"].state == "not-satisfied"
    assert "differ from the verified bundle's: demo/gate/gate.rego" in found["POL-1"].reason
    source = (tmp_path / "pack" / "evidence" / "policy-files.txt").read_text()
    assert "DIFFERENT: demo/gate/gate.rego" in source
