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

import httpx
import openai
import pytest
from keycloak import KeycloakOpenID

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


@pytest.fixture(scope="module")
def deployed(first_deploy: Run) -> dict[str, Any]:
    """`.sovstack/deploy.json`, as the deploy left it for a plant application."""
    info: dict[str, Any] = json.loads((STATE / "deploy.json").read_text())
    assert (STATE / "deploy.json").stat().st_mode & 0o777 == 0o600
    return info


def token(info: dict[str, Any], client_id: str) -> str:
    """A demo client's access token from the deployed Keycloak (client credentials)."""
    client = next(c for c in info["clients"] if c["client_id"] == client_id)
    keycloak = KeycloakOpenID(
        server_url=info["keycloak"]["server_url"],
        realm_name=info["keycloak"]["realm"],
        client_id=client_id,
        client_secret_key=client["client_secret"],
        verify=info["ca_file"],
    )
    access: str = keycloak.token(grant_type="client_credentials")["access_token"]
    return access


def gateway_sdk(info: dict[str, Any], access: str) -> openai.OpenAI:
    """The openai SDK pointed at the deployed gateway, trusting the site CA, no retries."""
    return openai.OpenAI(
        base_url=f"{info['gateway_url']}/v1",
        api_key=access,
        default_headers={"X-Data-Classification": "internal"},
        http_client=httpx.Client(verify=info["ca_file"], timeout=120, trust_env=False),
        max_retries=0,
    )


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
