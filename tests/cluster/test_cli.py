"""The commands a person uses on the running cluster, run as they would run them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cluster.conftest import sovstack
from tests.conftest import ROOT


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_ansible_pings_every_node_through_the_inventory(cluster_info: dict[str, Any]) -> None:
    ansible = Path(sys.executable).parent / "ansible"
    done = _run([str(ansible), "all", "-m", "ansible.builtin.ping", "-i", "inventory/local", "-o"])
    assert done.returncode == 0, done.stdout + done.stderr
    pongs = [line for line in done.stdout.splitlines() if '"ping": "pong"' in line]
    assert sorted(line.split()[0] for line in pongs) == sorted(
        n["name"] for n in cluster_info["nodes"]
    )


def test_status_shows_every_node_running(cluster_info: dict[str, Any]) -> None:
    done = _run([*sovstack(), "cluster", "status"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"cluster {cluster_info['name']}: bridge {cluster_info['bridge']}")
    for node in cluster_info["nodes"]:
        row = next(line.split() for line in lines[1:] if line.split()[0] == node["name"])
        assert row[1] == node["address"]
        assert row[2] == "pid"
        assert row[-1] == "running"


def test_exec_runs_a_command_as_root_in_the_node_and_returns_its_status() -> None:
    done = _run(
        [*sovstack(), "cluster", "exec", "gpu-2", "--", "sh", "-c", "hostname; id -u; exit 7"]
    )
    assert done.returncode == 7
    assert done.stdout.split() == ["gpu-2", "0"]


def test_ssh_logs_in_as_the_cluster_user() -> None:
    done = _run([*sovstack(), "cluster", "ssh", "identity", "--", "hostname; id -un"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["identity", "sovstack"]


def test_a_second_up_is_refused_while_the_cluster_runs() -> None:
    done = _run([*sovstack(), "cluster", "up"])
    assert done.returncode == 1
    assert "run 'sovstack cluster down' first" in done.stderr
    assert "Traceback" not in done.stderr
