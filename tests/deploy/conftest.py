"""The deploy tier: `make deploy` onto the local cluster, then the nodes checked as deployed.

``make deploy-test`` runs this folder with testinfra's ``--hosts=ansible://all
--ansible-inventory=inventory/local`` (each test taking ``host`` runs once per
node, over SSH) and brings the cluster down afterwards. The first deploy runs
once per session (:func:`first_deploy`), exactly as ``make deploy`` runs it;
every test then checks what a user would see on the nodes. Probes only ever
reach the cluster network.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from sovstack.cluster.record import Record
from sovstack.core.paths import Paths
from sovstack.deploy.ansible import Run, run_playbook
from sovstack.deploy.run import Request, deploy
from tests.conftest import ROOT

STATE = ROOT / ".sovstack"


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("hosts", default=None):
        raise pytest.UsageError(
            "tests/deploy test the deployed local cluster: run 'make deploy-test'"
        )


@pytest.fixture(scope="session")
def first_deploy() -> Run:
    """`make deploy` with no arguments, as a user runs it (bundle, cluster, site.yml)."""
    lines: list[str] = []
    run = deploy(Paths(ROOT), Request(), lambda line: (lines.append(line), print(line)))
    (STATE / "deploy" / "first-deploy.txt").write_text("\n".join(lines) + "\n")
    return run


@pytest.fixture(scope="session")
def cluster_info(first_deploy: Run) -> dict[str, Any]:
    record = Record.load(STATE / "cluster" / "state.json")
    assert record is not None and record.info.get("ready")
    return record.info


def extra_vars(**more: object) -> dict[str, object]:
    """The variables `make deploy` gives the local cluster's site.yml, with ``more`` added."""
    return {
        "sovstack_bundle_dir": str(STATE / "bundle" / "cpu"),
        "sovstack_bundle_pubkey": str(STATE / "keys" / "bundle.key.pub"),
        "sovstack_state_dir": str(STATE),
        "sovstack_cli": str(Path(sys.executable).parent / "sovstack"),
        "bundle_verify_force": False,
        **more,
    }


def playbook(
    extra: dict[str, object],
    args: Sequence[str] = (),
    inventory: Path = ROOT / "inventory" / "local",
    name: str = "playbooks/site.yml",
) -> Run:
    """Run a playbook the way `make deploy` does, output kept in a log."""
    return run_playbook(
        ROOT, inventory, extra, STATE / "deploy" / "test-logs", print, args, playbook=name
    )


def on_node(node: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as root in a node, without SSH (sovstack cluster exec)."""
    return subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "cluster", "exec", node, "--", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def drop_count(node: str) -> int:
    """The node's egress drop counter, read from nftables."""
    done = on_node(node, "nft", "-j", "list", "counter", "inet", "sovstack_egress", "egress_drop")
    assert done.returncode == 0, done.stderr
    for item in json.loads(done.stdout)["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise AssertionError(f"no counter in {done.stdout}")
