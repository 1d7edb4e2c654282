"""The control catalogue: how it is read, and what makes it inconsistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.policy import PolicyError, controls
from sovstack.policy.tree import PolicyTree

ROOT = Path(__file__).resolve().parents[2]

REQUIRED = {
    "nist_800_53_rev5": {"AU-2", "AU-3", "AU-9", "AU-10", "AU-11", "AU-12", "AC-3", "SC-7",
                         "SC-8", "SC-13", "SC-28"},
    "iso_27001_2022": {"A.8.15", "A.8.16"},
    "eu_ai_act": {"Art.12", "Art.19"},
}  # fmt: skip


def _catalogue(tmp_path: Path, family: str) -> Path:
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw.yml").write_text("id: fw\ntitle: A framework\ncontrols_dir: fw\n")
    (tmp_path / "fw" / "family.yml").write_text(family)
    return tmp_path


def _existing(**kwargs: object) -> controls.Existing:
    defaults: dict[str, object] = {
        "rego_rules": frozenset({"data.sovstack.decision"}),
        "rego_tests": frozenset({"data.sovstack_test.test_allow_x"}),
        "project_root": ROOT,
    }
    return controls.Existing(**{**defaults, **kwargs})  # type: ignore[arg-type]


def test_the_shipped_catalogue_lists_every_control_the_issue_names() -> None:
    catalogue = controls.load(PolicyTree(ROOT / "policies").controls_dir)
    listed: dict[str, set[str]] = {}
    for control in catalogue.controls:
        listed.setdefault(control.framework, set()).add(control.id)
    for framework, ids in REQUIRED.items():
        assert ids <= listed[framework], framework
    assert all(c.status in controls.STATUSES for c in catalogue.controls)


def test_an_automated_control_naming_checks_that_exist_is_consistent(tmp_path: Path) -> None:
    family = """controls:
  - id: C-1
    title: One
    status: automated
    checks:
      - rego: data.sovstack.decision
      - rego-test: data.sovstack_test.test_allow_x
      - pytest: tests/test_x.py::test_module_level
      - pytest: tests/test_x.py::TestGroup::test_method
"""
    catalogue = controls.load(_catalogue(tmp_path, family))
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_module_level():\n    pass\n\n\n"
        "class TestGroup:\n    def test_method(self):\n        pass\n"
    )
    assert controls.problems(catalogue, _existing(project_root=tmp_path)) == []


@pytest.mark.parametrize(
    "check",
    [
        "rego: data.sovstack.no_such_rule",
        "rego: data.sovstack_test.test_allow_x",  # a test is not a policy rule
        "rego-test: data.sovstack_test.test_deny_y",
        "pytest: tests/unit/test_policy_controls.py::test_that_does_not_exist",
        "pytest: tests/unit/no_such_file.py::test_x",
        "pytest: tests/unit/test_policy_controls.py",
        "pytest: tests/unit/test_policy_controls.py::NoSuchClass::test_x",
    ],
)
def test_an_automated_control_naming_a_missing_check_is_a_problem(
    tmp_path: Path, check: str
) -> None:
    family = (
        "controls:\n  - id: C-1\n    title: One\n    status: automated\n"
        f"    checks:\n      - {check}\n"
    )
    problems = controls.problems(controls.load(_catalogue(tmp_path, family)), _existing())
    assert len(problems) == 1
    assert problems[0].startswith("fw/C-1 is automated but its check")


def test_an_automated_control_without_checks_is_a_problem(tmp_path: Path) -> None:
    family = "controls:\n  - id: C-1\n    title: One\n    status: partial\n"
    problems = controls.problems(controls.load(_catalogue(tmp_path, family)), _existing())
    assert problems == [f"fw/C-1 is partial but names no check ({tmp_path}/fw/family.yml)"]


def test_a_planned_control_may_name_checks_still_to_be_written(tmp_path: Path) -> None:
    family = """controls:
  - id: C-1
    title: One
    status: planned
    checks:
      - pytest: tests/cluster/test_egress.py::test_egress_is_dropped
"""
    assert controls.problems(controls.load(_catalogue(tmp_path, family)), _existing()) == []


def test_a_control_named_in_rego_but_not_listed_is_a_problem(tmp_path: Path) -> None:
    family = "controls:\n  - id: C-1\n    title: One\n    status: manual\n"
    catalogue = controls.load(_catalogue(tmp_path, family))
    existing = _existing(
        metadata_controls=(("sovstack/x.rego", "fw/C-1"), ("sovstack/x.rego", "fw/C-2"))
    )
    assert controls.problems(catalogue, existing) == [
        "sovstack/x.rego names control fw/C-2, which the catalogue does not list"
    ]


@pytest.mark.parametrize(
    ("family", "message"),
    [
        ("controls:\n  - id: C-1\n    title: T\n    status: done\n", "status 'done' is not one"),
        ("controls:\n  - id: C-1\n    status: manual\n", "'title' is missing"),
        ("controls:\n  - id: C-1\n    title: T\n    status: manual\n    checks: [{shell: ls}]\n",
         "check kind 'shell'"),
        ("controls:\n  - id: C-1\n    title: T\n    status: manual\n"
         "  - id: C-1\n    title: T\n    status: manual\n", "more than once: fw/C-1"),
        ("controls: []\n", "must be a non-empty list"),
        ("controls: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_malformed_catalogue_is_refused_with_a_message(
    tmp_path: Path, family: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[")):
        controls.load(_catalogue(tmp_path, family))
