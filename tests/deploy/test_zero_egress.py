"""Zero egress after a deploy, with a positive control; a second deploy and --check change nothing.

Order matters and is kept in one test: reset every node's drop counter; from
the gateway open a connection to another node of the cluster on a port the
firewall does not allow, and see the gateway's counter and the kernel log
move (the control: the counter works); reset; deploy again (changed=0) and
in check mode (clean, changed=0), run the runtimes; every counter reads 0 and
no drop line was logged. Packets only ever go to the cluster's own nodes.

A node is a container: its kernel log is the host's, and the kernel logs
from a network namespace other than the host's only with
``net.netfilter.nf_log_all_netns`` set, which the test sets for its duration.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sovstack.core.paths import Paths
from sovstack.deploy.run import Request, deploy
from tests.conftest import ROOT
from tests.deploy.conftest import STATE, drop_count, extra_vars, on_node, playbook

PREFIX = "sovstack-egress-drop: "
NF_LOG_ALL_NETNS = Path("/proc/sys/net/netfilter/nf_log_all_netns")
PROBE = (
    "import socket, sys\n"
    "try:\n"
    "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
    "    print('connected')\n"
    "except OSError as e:\n"
    "    print('failed', e)\n"
)


@pytest.fixture
def kernel_log_from_nodes() -> Iterator[None]:
    before = NF_LOG_ALL_NETNS.read_text().strip()
    NF_LOG_ALL_NETNS.write_text("1\n")
    try:
        yield
    finally:
        NF_LOG_ALL_NETNS.write_text(before + "\n")


def _drop_lines() -> int:
    out = subprocess.run(["dmesg"], capture_output=True, text=True, check=True).stdout
    return out.count(PREFIX)


def _reset(nodes: list[str]) -> None:
    for node in nodes:
        done = on_node(node, "nft", "reset", "counter", "inet", "sovstack_egress", "egress_drop")
        assert done.returncode == 0, done.stderr
        assert drop_count(node) == 0


def _run_the_runtimes(cluster_info: dict[str, Any]) -> None:
    for node in cluster_info["nodes"]:
        name = node["name"]
        if name.startswith("gpu"):
            code = "import vllm, torch"
            venv = "vllm"
        elif name in ("gateway", "audit"):
            code = "import sovstack.gateway.app"
            venv = "gateway"
        else:
            continue
        done = on_node(
            name,
            "env",
            "HF_HUB_OFFLINE=1",
            "VLLM_NO_USAGE_STATS=1",
            "DO_NOT_TRACK=1",
            f"/opt/sovstack/venvs/{venv}/bin/python",
            "-c",
            code,
        )
        assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.usefixtures("first_deploy", "kernel_log_from_nodes")
def test_zero_egress_after_a_second_deploy_that_changes_nothing(
    cluster_info: dict[str, Any],
) -> None:
    nodes = [n["name"] for n in cluster_info["nodes"]]
    other = next(n["address"] for n in cluster_info["nodes"] if n["name"] == "gpu-1")

    # The positive control: a flow the firewall does not allow, to a cluster node.
    _reset(nodes)
    lines = _drop_lines()
    probe = on_node("gateway", "python3", "-c", PROBE, other, "2222")
    assert probe.stdout.startswith("failed"), probe.stdout
    assert drop_count("gateway") > 0
    deadline = time.monotonic() + 10
    while _drop_lines() == lines and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _drop_lines() > lines, "the drop was counted but not logged"

    # Now the real thing: nothing a deploy or the runtimes do is dropped.
    _reset(nodes)
    lines = _drop_lines()
    said: list[str] = []
    second = deploy(Paths(ROOT), Request(), said.append)
    (STATE / "deploy" / "second-deploy.txt").write_text(
        "\n".join(said) + f"\nseconds: {second.seconds:.1f}\n"
    )
    assert second.returncode == 0
    assert second.changed == 0, [r for r in second.recap if r.changed]

    check = playbook(extra_vars(), ["--check", "--diff"])
    assert check.returncode == 0, check.failures
    assert check.changed == 0, [r for r in check.recap if r.changed]

    _run_the_runtimes(cluster_info)
    assert {node: drop_count(node) for node in nodes} == dict.fromkeys(nodes, 0)
    assert _drop_lines() == lines
