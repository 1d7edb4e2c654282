"""What goes into the policy bundle, and what its revision hashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.policy import PolicyError, bundle
from sovstack.policy.tree import PolicyTree, merge_data

ROOT = Path(__file__).resolve().parents[2]


def test_the_data_files_merge_into_one_tree() -> None:
    merged = merge_data([("a.json", {"plant": {"roles": {"x": 1}}}),
                         ("b.json", {"plant": {"models": {"m": 2}}})])  # fmt: skip
    assert merged == {"plant": {"roles": {"x": 1}, "models": {"m": 2}}}


def test_a_value_set_by_two_data_files_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"plant\.roles\.x is set twice: again in b\.json"):
        merge_data([("a.json", {"plant": {"roles": {"x": 1}}}),
                    ("b.json", {"plant": {"roles": {"x": 2}}})])  # fmt: skip


def test_a_bundle_holds_the_policies_and_data_but_no_tests(tmp_path: Path) -> None:
    roots = bundle.stage(PolicyTree(ROOT / "policies"), tmp_path)
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert "sovstack/decision.rego" in files
    assert "system/log/mask.rego" in files
    assert not [f for f in files if f.endswith("_test.rego")]
    assert not [f for f in files if f.startswith(("controls/", ".regal/", "data/"))]
    assert "opa-config.yaml" not in files
    data = json.loads((tmp_path / "data.json").read_text())
    assert set(data["plant"]) >= {"roles", "models", "replicas", "classifications"}
    assert roots == ("plant", "sovstack", "system/log")


def test_the_content_hash_changes_with_any_byte_and_only_then(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies" / "sovstack", tmp_path / "a")
    first = bundle.content_hash(tmp_path / "a")
    assert bundle.content_hash(tmp_path / "a") == first
    rego = tmp_path / "a" / "decision.rego"
    rego.write_text(rego.read_text() + " ")
    assert bundle.content_hash(tmp_path / "a") != first


def test_bundle_without_a_signing_key_says_how_to_make_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["policy", "bundle", "--signing-key", str(tmp_path / "none.key"),
              "--out", str(tmp_path / "b.tar.gz")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no signing key at" in result.output
    assert "sovstack policy keygen" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "args",
    [["policy"], ["policy", "test"], ["policy", "bundle"], ["policy", "keygen"],
     ["policy", "controls"]],
)  # fmt: skip
def test_every_policy_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3
