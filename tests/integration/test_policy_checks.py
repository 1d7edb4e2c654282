"""`make policy-test` passes on the shipped policies and fails, by name, on each kind of defect.

Each defect is made in a copy of policies/, and the checks run with the real
OPA and Regal binaries.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.core.paths import Paths
from sovstack.policy import PolicyError, bundle, checks, keys
from sovstack.policy.tree import PolicyTree


@pytest.fixture
def policies(project_paths: Paths, tmp_path: Path) -> Path:
    copy = tmp_path / "policies"
    shutil.copytree(project_paths.policies, copy)
    return copy


def _run(paths: Paths, root: Path) -> tuple[list[str], str]:
    lines: list[str] = []
    with pytest.raises(PolicyError, match="policy checks failed") as failed:
        checks.run_all(paths, lines.append, root)
    return lines, str(failed.value)


def test_the_shipped_policies_pass_every_check(project_paths: Paths) -> None:
    lines: list[str] = []
    checks.run_all(project_paths, lines.append)
    assert [line.split(":")[0] for line in lines] == [f"==> {name}" for name in checks.STEPS]
    assert "coverage 100%" in lines[3]


def test_an_unformatted_policy_fails_opa_fmt(project_paths: Paths, policies: Path) -> None:
    rego = policies / "sovstack" / "validity" / "validity.rego"
    rego.write_text(
        rego.read_text().replace("\tin_force", "    in_force").replace("if not", "if  not")
    )
    lines, failed = _run(project_paths, policies)
    # Regal's opa-fmt rule agrees; nothing else fails.
    assert failed.endswith("policy checks failed: opa fmt, regal lint")
    assert any("validity.rego" in line for line in lines)


def test_a_failing_rego_test_fails_opa_test(project_paths: Paths, policies: Path) -> None:
    roles = policies / "data" / "roles.json"
    data = json.loads(roles.read_text())
    data["plant"]["roles"]["operator"]["max_tokens"] = 512
    roles.write_text(json.dumps(data))
    lines, failed = _run(project_paths, policies)
    assert failed.endswith("policy checks failed: opa test --coverage")
    assert any("test_allow_an_operator_to_chat_with_the_dev_model" in line for line in lines)


def test_an_untested_rule_fails_the_coverage_check(project_paths: Paths, policies: Path) -> None:
    rego = policies / "sovstack" / "access" / "access.rego"
    rego.write_text(rego.read_text() + '\n# METADATA\n# title: spare\nspare := "never asked for"\n')
    lines, failed = _run(project_paths, policies)
    assert failed.endswith("policy checks failed: opa test --coverage")
    report = "\n".join(lines)
    assert "coverage is" in report
    assert f"sovstack/access/access.rego:{len(rego.read_text().splitlines())}" in report


def test_a_style_violation_fails_regal(project_paths: Paths, policies: Path) -> None:
    rego = policies / "sovstack" / "access" / "access.rego"
    rego.write_text(rego.read_text().replace("_roles := ", "_roles = ", 1))
    lines, failed = _run(project_paths, policies)
    assert "regal lint" in failed
    assert any("use-assignment-operator" in line or "Prefer := over =" in line for line in lines)


def test_an_automated_control_naming_a_missing_check_fails(
    project_paths: Paths, policies: Path
) -> None:
    cm = policies / "controls" / "nist_800_53_rev5" / "cm.yml"
    cm.write_text(cm.read_text().replace("test_a_bundle_signed_by_another_key_is_refused",
                                         "test_that_was_renamed"))  # fmt: skip
    lines, failed = _run(project_paths, policies)
    assert failed.endswith("policy checks failed: control catalogue")
    assert any("CM-14 is automated but its check" in line and "test_that_was_renamed" in line
               for line in lines)  # fmt: skip


def test_a_rego_check_that_does_not_exist_fails(project_paths: Paths, policies: Path) -> None:
    ac = policies / "controls" / "nist_800_53_rev5" / "ac.yml"
    ac.write_text(ac.read_text().replace("data.sovstack.placement.eligible",
                                         "data.sovstack.placement.eligible_replicas"))  # fmt: skip
    lines, _ = _run(project_paths, policies)
    assert any("rego data.sovstack.placement.eligible_replicas' does not exist" in line
               for line in lines)  # fmt: skip


def test_a_control_named_in_rego_metadata_must_be_in_the_catalogue(
    project_paths: Paths, policies: Path
) -> None:
    rego = policies / "sovstack" / "validity" / "validity.rego"
    rego.write_text(rego.read_text().replace("nist_800_53_rev5/AC-3", "nist_800_53_rev5/AC-99"))
    lines, _ = _run(project_paths, policies)
    assert any("names control nist_800_53_rev5/AC-99" in line for line in lines)


def test_inconsistent_policy_data_is_not_bundled(
    project_paths: Paths, policies: Path, tmp_path: Path
) -> None:
    models = policies / "data" / "models.json"
    models.write_text(models.read_text().replace('"model": "ops-llama-8b"', '"model": "ops-llama"'))
    pair = keys.generate(tmp_path / "keys")
    with pytest.raises(PolicyError, match="the policy data is inconsistent") as refused:
        bundle.build(project_paths, pair.private, tmp_path / "b.tar.gz", PolicyTree(policies))
    assert "serves model ops-llama, which is not declared" in str(refused.value)
    assert not (tmp_path / "b.tar.gz").exists()


def test_the_revision_names_the_content(
    project_paths: Paths, policies: Path, tmp_path: Path
) -> None:
    pair = keys.generate(tmp_path / "keys")
    tree = PolicyTree(policies)
    first = bundle.build(project_paths, pair.private, tmp_path / "1.tar.gz", tree)
    again = bundle.build(project_paths, pair.private, tmp_path / "2.tar.gz", tree)
    assert first.revision == again.revision
    assert first.revision.startswith("0.1.0+")
    roles = policies / "data" / "roles.json"
    roles.write_text(roles.read_text().replace('"max_tokens": 256', '"max_tokens": 300'))
    changed = bundle.build(project_paths, pair.private, tmp_path / "3.tar.gz", tree)
    assert changed.revision != first.revision
    assert first.roots == ("plant", "sovstack", "system/log")


def test_the_bundle_command_writes_a_signed_bundle_and_names_its_revision(
    project_paths: Paths, tmp_path: Path
) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path / "keys")])
    assert made.exit_code == 0, made.output
    out = tmp_path / "policy.tar.gz"
    built = runner.invoke(cli, ["policy", "bundle", "--root", str(project_paths.root),
                                "--signing-key", str(tmp_path / "keys" / "policy-signing.key"),
                                "--out", str(out)])  # fmt: skip
    assert built.exit_code == 0, built.output
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("/.manifest").read())  # type: ignore[union-attr]  # a file
    assert {"/.signatures.json", "/.manifest", "/data.json", "/sovstack/decision.rego"} <= names
    assert f"revision  {manifest['revision']}" in built.output
