"""'up' and 'down' of a second, small cluster: the host is left exactly as it was.

Runs beside the main cluster, with its own name, network (10.77.99.0/24) and
state folder. Also kills 'up' half-way, as a crash would, and checks that
'down' still removes everything; and that a second 'down' is harmless.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sovstack.cluster import cgroups
from tests.cluster.conftest import sovstack
from tests.conftest import ROOT

NODES = {"lc-a": "10.77.99.10", "lc-b": "10.77.99.11"}


@pytest.fixture
def small(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """A two-node inventory and a state folder; whatever a failed test left is removed after."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "sovstack_cluster_name": "sovtest",
                "sovstack_cluster_network": "10.77.99.0/24",
                "sovstack_cluster_host_address": "10.77.99.1",
                "ansible_user": "sovstack",
            }
        )
    )
    hosts = {name: {"ansible_host": address} for name, address in NODES.items()}
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    paths = {"inventory": inventory, "state": tmp_path / "state"}
    yield paths
    if (paths["state"] / "state.json").exists():
        _cli(paths, "down")


def _cli(small: dict[str, Path], command: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*sovstack(), "cluster", command, "--state-dir", str(small["state"]), *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)


def _up_argv(small: dict[str, Path]) -> list[str]:
    return [*sovstack(), "cluster", "up", "--state-dir", str(small["state"]),
            "--inventory", str(small["inventory"])]  # fmt: skip


NAME = "sovtest"
NETWORK = ipaddress.ip_network("10.77.99.0/24")


def _ours(name: str) -> bool:
    return name.startswith(f"{NAME}-")


def _in_network(dst: str) -> bool:
    try:
        return ipaddress.ip_network(dst, strict=False).subnet_of(NETWORK)
    except (ValueError, TypeError):
        return False  # "default", "broadcast" names, or an IPv6 network


def _host_state(small: dict[str, Path]) -> dict[str, Any]:
    """What this small cluster could leave on the host, and nothing else.

    Only objects named after the cluster (``sovtest-…``), routes through its
    devices or into its network, mounts under its state folder, and nspawn
    processes of its machines: the lead's cluster, or anything else on the
    machine, may change beside the test without failing it.
    """

    def ip_json(*args: str) -> Any:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
        return json.loads(out.stdout or "[]")

    netns = Path("/run/netns")
    state = str(small["state"])
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        "links": sorted(
            link["ifname"] for link in ip_json("link", "show") if _ours(link["ifname"])
        ),
        "routes": sorted(
            json.dumps(r) for r in ip_json("route", "show", "table", "all")
            if _ours(str(r.get("dev", ""))) or _in_network(str(r.get("dst", "")))
        ),
        "netns": sorted(p.name for p in netns.iterdir() if _ours(p.name)) if netns.is_dir() else [],
        "mounts": sorted(
            point for point in (line.split()[4] for line in mountinfo)
            if point == state or point.startswith(f"{state}/")
        ),
        "cgroups": sorted(
            str(p) for base in cgroups.bases() for p in base.iterdir()
            if p.is_dir() and _ours(p.name)
        ),
        "nspawn_processes": sorted(
            p.name for p in Path("/proc").iterdir()
            if p.name.isdigit() and _is_our_nspawn(_cmdline(p))
        ),
    }  # fmt: skip


def _is_our_nspawn(cmdline: str) -> bool:
    return cmdline.startswith("systemd-nspawn") and any(
        f"--machine={node} " in f"{cmdline} " for node in NODES
    )


def _recorded_files(small: dict[str, Path]) -> list[Path]:
    """The files outside its state folder that the cluster's record lists (nspawn's locks)."""
    record = small["state"] / "state.json"
    resources = json.loads(record.read_text())["resources"] if record.exists() else []
    return [Path(r["path"]) for r in resources if r["kind"] == "file"]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_up_then_down_leaves_the_host_as_it_was(small: dict[str, Path]) -> None:
    before = _host_state(small)
    up = subprocess.run(_up_argv(small), cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "the cluster is up: 2 nodes" in up.stdout
    during = _host_state(small)
    locks = _recorded_files(small)
    assert "sovtest-br" in during["links"]
    assert {"sovtest-lc-a", "sovtest-lc-b"} <= set(during["netns"] or [])

    # The two clusters do not see each other: no route from one network to the other.
    done = _cli(small, "exec", "lc-a", "--", "ip", "route", "get", "10.77.0.10")
    assert done.returncode != 0 and "unreachable" in done.stderr
    done = _cli(small, "exec", "lc-a", "--", "getent", "hosts", "lc-b")
    assert done.stdout.split() == ["10.77.99.11", "lc-b"]

    down = _cli(small, "down")
    assert down.returncode == 0, down.stderr
    assert "the cluster is down" in down.stdout
    assert _host_state(small) == before
    assert not [lock for lock in locks if lock.exists()]
    again = _cli(small, "down")
    assert again.returncode == 0
    assert "no cluster to remove" in again.stdout
    assert _host_state(small) == before


@pytest.mark.parametrize("killed_after", ["bridge", "mount", "process"])
def test_down_cleans_up_after_up_was_killed_half_way(
    small: dict[str, Path], killed_after: str
) -> None:
    before = _host_state(small)
    record = small["state"] / "state.json"
    up = subprocess.Popen(_up_argv(small), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and up.poll() is None:
        try:
            kinds = [r["kind"] for r in json.loads(record.read_text())["resources"]]
        except (OSError, ValueError):
            kinds = []
        if killed_after in kinds:
            break
        time.sleep(0.01)
    up.send_signal(signal.SIGKILL)
    up.wait()
    assert up.returncode == -signal.SIGKILL, "'up' finished before it could be killed"
    assert record.exists()
    locks = _recorded_files(small)

    down = _cli(small, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not record.exists()
    assert _host_state(small) == before
    assert not [lock for lock in locks if lock.exists()]


def test_a_network_that_overlaps_one_of_the_hosts_is_refused_before_anything_is_made(
    small: dict[str, Path], cluster_info: dict[str, Any]
) -> None:
    settings = small["inventory"] / "group_vars" / "all.yml"
    values = yaml.safe_load(settings.read_text())
    values["sovstack_cluster_network"] = "10.77.0.0/16"  # holds the main cluster's network
    settings.write_text(yaml.safe_dump(values))
    before = _host_state(small)
    up = subprocess.run(_up_argv(small), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert up.returncode == 1
    assert f"overlaps {cluster_info['network']}" in up.stderr
    assert not (small["state"] / "state.json").exists()
    assert _host_state(small) == before
