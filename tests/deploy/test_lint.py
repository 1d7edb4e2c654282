"""The Ansible code itself: ansible-lint's production profile, offline, and a syntax check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "NO_COLOR": "1"}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=False
    )


def test_ansible_lint_passes_the_production_profile_offline() -> None:
    done = _run(
        str(BIN / "ansible-lint"), "--offline", "--profile", "production", "playbooks", "roles"
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "0 failure(s), 0 warning(s)" in done.stdout + done.stderr


def test_the_site_playbook_passes_a_syntax_check() -> None:
    done = _run(str(BIN / "ansible-playbook"), "--syntax-check", "playbooks/site.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_role_has_argument_specs_and_a_dispatch_only_main() -> None:
    for role in sorted((ROOT / "roles").iterdir()):
        if not (role / "tasks").is_dir():
            continue
        assert (role / "meta" / "argument_specs.yml").is_file(), role.name
        main = (role / "tasks" / "main.yml").read_text()
        modules = [
            line.strip().rstrip(":")
            for line in main.splitlines()
            if line.startswith("  ansible.") and line.rstrip().endswith(":")
        ]
        assert set(modules) <= {
            "ansible.builtin.import_tasks",
            "ansible.builtin.include_tasks",
        }, f"{role.name}: tasks/main.yml does more than dispatch ({modules})"
