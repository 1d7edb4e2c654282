"""'up' and 'down' of a second, small cluster: the host is left exactly as it was.

Runs beside the main cluster, with its own name, network (10.77.99.0/24) and
state folder. Also kills 'up' half-way, as a crash would, and checks that
'down' still removes everything; and that a second 'down' is harmless.
"""

from __future__ import annotations

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


def _host_state() -> dict[str, Any]:
    """What the host has that a cluster could leave behind."""

    def ip_json(*args: str) -> Any:
        out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
        return json.loads(out.stdout or "[]")

    def listing(folder: Path, pattern: str = "*") -> list[str] | None:
        found = folder.glob(pattern) if folder.is_dir() else None
        return None if found is None else sorted(str(p.relative_to(folder)) for p in found)

    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        "links": sorted(link["ifname"] for link in ip_json("link", "show")),
        "routes": sorted(json.dumps(r) for r in ip_json("route", "show", "table", "all")),
        "netns": listing(Path("/run/netns")),
        "mounts": sorted(line.split()[4] for line in mountinfo),
        "cgroups": sorted(str(p) for base in cgroups.bases() for p in base.iterdir() if p.is_dir()),
        "nspawn_run": listing(Path("/run/systemd/nspawn"), "**/*"),
        "nspawn_processes": sorted(
            p.name for p in Path("/proc").iterdir()
            if p.name.isdigit() and _cmdline(p).startswith("systemd-nspawn")
        ),
    }  # fmt: skip


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_up_then_down_leaves_the_host_as_it_was(small: dict[str, Path]) -> None:
    before = _host_state()
    up = subprocess.run(_up_argv(small), cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "the cluster is up: 2 nodes" in up.stdout
    during = _host_state()
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
    assert _host_state() == before
    again = _cli(small, "down")
    assert again.returncode == 0
    assert "no cluster to remove" in again.stdout
    assert _host_state() == before


@pytest.mark.parametrize("killed_after", ["bridge", "mount", "process"])
def test_down_cleans_up_after_up_was_killed_half_way(
    small: dict[str, Path], killed_after: str
) -> None:
    before = _host_state()
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

    down = _cli(small, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not record.exists()
    assert _host_state() == before


def test_a_network_that_overlaps_one_of_the_hosts_is_refused_before_anything_is_made(
    small: dict[str, Path], cluster_info: dict[str, Any]
) -> None:
    settings = small["inventory"] / "group_vars" / "all.yml"
    values = yaml.safe_load(settings.read_text())
    values["sovstack_cluster_network"] = "10.77.0.0/16"  # holds the main cluster's network
    settings.write_text(yaml.safe_dump(values))
    before = _host_state()
    up = subprocess.run(_up_argv(small), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert up.returncode == 1
    assert f"overlaps {cluster_info['network']}" in up.stderr
    assert not (small["state"] / "state.json").exists()
    assert _host_state() == before
