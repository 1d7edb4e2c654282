"""The report over the shipped catalogue, its real checks and real inputs.

Every check the catalogue names runs for real: ``opa test`` over
``policies/``, the named pytest tests, the log, witness and bundle checks.
The one host check (no default route, SC-7) needs the isolated nodes of
``make deploy``, which this machine is not: the clean run takes it out of a
copy of the catalogue and says so; everything else is the shipped catalogue.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sovstack.report import LogInput, build_report
from sovstack.report.model import Finding
from sovstack.report.policy_source import POLICY_BUNDLE
from tests.conftest import ROOT
from tests.integration.report.conftest import FIXED, Site

HOST_CHECK = "      - pytest: tests/cluster/test_nodes.py::test_there_is_no_default_route\n"
LOG_INTEGRITY = ("nist_800_53_rev5/AU-9", "iso_27001_2022/A.8.15", "eu_ai_act/Art.12")


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of policies/ whose SC-7 does not name the host check (no isolated node here)."""
    copy = tmp_path_factory.mktemp("catalogue") / "policies"
    shutil.copytree(ROOT / "policies", copy)
    sc = copy / "controls" / "nist_800_53_rev5" / "sc.yml"
    assert HOST_CHECK in sc.read_text()
    sc.write_text(sc.read_text().replace(HOST_CHECK, ""))
    return copy


def _by_key(findings: tuple[Finding, ...]) -> dict[str, Finding]:
    return {f.key: f for f in findings}


def test_a_clean_run_over_real_inputs_exits_0(site: Site, policies: Path, tmp_path: Path) -> None:
    inputs = site.inputs(policies, bundle=site.real_bundle)
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    found = _by_key(outcome.findings)
    unsatisfied = {
        k: f.reason for k, f in found.items() if f.state not in ("satisfied", "not-assessed")
    }
    assert unsatisfied == {}
    assert outcome.exit_code == 0
    for key in (*LOG_INTEGRITY, "nist_800_53_rev5/CM-14", "eu_ai_act/Art.19"):
        assert found[key].state == "satisfied", key
    assert found["nist_800_53_rev5/SC-8"].state == "not-assessed"  # planned: counted apart
    assert outcome.figure.assessed + outcome.figure.not_assessed == len(found)
    evidence = tmp_path / "pack" / "evidence"
    assert (evidence / "pytest.junit.xml").is_file()
    assert (evidence / "opa-test.json").is_file() and (evidence / "opa-coverage.json").is_file()
    assert "VERIFIED" in (evidence / "bundle-verify.txt").read_text()
    assert "the same files" in (evidence / "policy-files.txt").read_text()


def _flip_record(log: Path) -> None:
    segment = sorted(log.glob("entries-*.jsonl"))[0]
    segment.write_bytes(segment.read_bytes().replace(b'"alice"', b'"mallory"', 1))


def test_a_tampered_copy_of_the_log_fails_the_log_integrity_controls(
    site: Site, policies: Path, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered-log"
    shutil.copytree(site.log, tampered)
    _flip_record(tampered)
    inputs = site.inputs(
        policies, bundle=site.real_bundle, logs=(LogInput(tampered, site.log_pubkey),)
    )
    outcome = build_report(inputs, tmp_path / "pack", site.report_key, FIXED)
    found = _by_key(outcome.findings)
    for key in LOG_INTEGRITY:
        assert found[key].state == "not-satisfied", key
        assert "does not verify" in found[key].reason
    assert outcome.exit_code == 1
    html = (tmp_path / "pack" / "report.html").read_text()
    assert "the log does not verify" in html


def test_a_bundle_changed_after_signing_fails_its_control(
    site: Site, policies: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(site.real_bundle, bundle)
    (bundle / POLICY_BUNDLE).write_bytes((bundle / POLICY_BUNDLE).read_bytes() + b"\0")
    outcome = build_report(
        site.inputs(policies, bundle=bundle), tmp_path / "pack", site.report_key, FIXED
    )
    cm14 = _by_key(outcome.findings)["nist_800_53_rev5/CM-14"]
    assert cm14.state == "not-satisfied"
    assert POLICY_BUNDLE in cm14.reason
    assert outcome.exit_code == 1
