"""The prometheus role's alert rules are valid, and each alert fires when it should.

``promtool check rules`` validates roles/prometheus/files/sovstack.rules.yml;
``promtool test rules`` replays the series in sovstack.rules.test.yml against
it (a healthy stack raises nothing; each failure raises its alert).
promtool is Debian's prometheus package's; 'make promtool' unpacks it into
.cache/promtool without installing (and so starting) a Prometheus.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "roles" / "prometheus" / "files" / "sovstack.rules.yml"
RULE_TESTS = Path(__file__).with_name("sovstack.rules.test.yml")


def _promtool() -> str:
    found = shutil.which("promtool")
    unpacked = ROOT / ".cache" / "promtool" / "usr" / "bin" / "promtool"
    if found is None and unpacked.is_file():
        found = str(unpacked)
    if found is None:
        pytest.fail("promtool is missing: 'make promtool' unpacks it from Debian's prometheus")
    return found


def test_the_rules_are_valid() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_each_alert_fires_on_its_failure_and_not_on_a_healthy_stack() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
