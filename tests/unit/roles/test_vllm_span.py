"""A vLLM replica spanning nodes, as the roles render it: the units on each node and the firewall.

Real Ansible renders the vllm role's vars and unit template and the egress
firewall's ruleset for an inventory of four gpu nodes (all of them this
machine, over the local connection, with its real facts), into a folder; the
tests read what each node would get. Nothing is started.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
HOSTS = [f"gpu-{i}" for i in range(1, 5)]

_PLAY = """
- hosts: gpu_nodes
  gather_facts: true
  vars_files:
    - {root}/roles/vllm/vars/main.yml
    - {root}/roles/egress_firewall/vars/main.yml
    - {root}/roles/gateway/vars/main.yml
  tasks:
    - name: Check the replicas as the role does
      ansible.builtin.include_tasks: {root}/roles/vllm/tasks/assert.yml
    - name: Render each unit
      ansible.builtin.template:
        src: {root}/roles/vllm/templates/vllm.service.j2
        dest: "{out}/{{{{ inventory_hostname }}}}--{{{{ __vllm_unit.name }}}}.service"
        mode: "0644"
      loop: "{{{{ __vllm_units }}}}"
      loop_control:
        loop_var: __vllm_unit
    - name: Keep which installed units the role would remove
      ansible.builtin.copy:
        content: "{{{{ __vllm_stale | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.stale.json"
        mode: "0644"
      vars:
        __vllm_installed:
          files:
            - path: /etc/systemd/system/sovstack-vllm-{{{{ inventory_hostname }}}}.service
            - path: /etc/systemd/system/sovstack-vllm-gpu-b1.service
            - path: /etc/systemd/system/sovstack-vllm-tiny-pp-1.service
            - path: /etc/systemd/system/sovstack-vllm-gone.service
    - name: Render the egress ruleset
      ansible.builtin.template:
        src: {root}/roles/egress_firewall/templates/nftables.conf.j2
        dest: "{out}/{{{{ inventory_hostname }}}}.nft"
        mode: "0644"
    - name: Keep what the gateway role would tell the policy
      ansible.builtin.copy:
        content: "{{{{ __gateway_upstreams | to_json }}}}"
        dest: "{out}/{{{{ inventory_hostname }}}}.upstreams.json"
        mode: "0644"
"""


def _single(rid: str, site: str = "plant-a") -> dict[str, Any]:
    return {"id": rid, "model": "tiny-llama", "port": 8000, "site": site, "jurisdiction": "DE"}


def _span(**more: Any) -> dict[str, Any]:
    return {"id": "tiny-pp-1", "model": "tiny-llama-pp", "weights": "tiny-llama", "port": 8001,
            "site": "plant-a", "jurisdiction": "DE", "nodes": ["gpu-1", "gpu-2"],
            "master_port": 29501, "extra_args": [], **more}  # fmt: skip


def _render(
    tmp_path: Path,
    gpu_1: list[dict[str, Any]],
    device: str = "cpu",
    replicas: dict[str, dict[str, Any]] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Render every gpu node: gpu-1 lists ``gpu_1``, each other one replica (or ``replicas``)."""
    out = tmp_path / "out"
    out.mkdir()
    listed = {"gpu-1": gpu_1, "gpu-2": [_single("gpu-b1", "plant-b")],
              "gpu-3": [_single("gpu-3")], "gpu-4": [_single("gpu-4")]}  # fmt: skip
    if replicas is not None:
        listed = {host: [replica] for host, replica in replicas.items()}
    hosts = {
        name: {"ansible_connection": "local", "ansible_host": f"10.0.0.{20 + i}",
               "ansible_python_interpreter": sys.executable, "vllm_listen_address": "127.0.0.1",
               "vllm_device": device, "vllm_replicas": listed[name],
               "vllm_node_site": "plant-b" if name == "gpu-2" else "plant-a"}
        for i, name in enumerate(HOSTS, start=1)
    }  # fmt: skip
    # The roles' defaults below the inventory's host variables, as Ansible ranks them.
    defaults: dict[str, Any] = {}
    for role in ("vllm", "egress_firewall", "gateway"):
        defaults |= yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    site = {"sovstack_state_dir": str(tmp_path), "sovstack_site": "plant-a",
            "sovstack_cluster_network": "10.0.0.0/24"}  # fmt: skip
    inventory = {"all": {"vars": defaults | site, "children": {"gpu_nodes": {"hosts": hosts}}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(_PLAY.format(root=ROOT, out=out))
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": "/usr/bin:/bin", "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
             "ANSIBLE_NOCOLOR": "1", "HOME": str(tmp_path)},
    )  # fmt: skip


def _units(tmp_path: Path) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {host: {} for host in HOSTS}
    for path in (tmp_path / "out").glob("*.service"):
        host, unit = path.stem.split("--")
        found[host][unit] = path.read_text()
    return found


def _argv(unit: str) -> list[str]:
    joined = unit.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.fixture(scope="module")
def mp_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("mp")
    done = _render(tmp_path, [_single("gpu-1"), _span()])
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp_path


def test_each_node_of_an_mp_replica_gets_its_share_and_the_others_nothing(mp_site: Path) -> None:
    units = _units(mp_site)
    assert set(units["gpu-1"]) == {"sovstack-vllm-gpu-1", "sovstack-vllm-tiny-pp-1"}
    assert set(units["gpu-2"]) == {"sovstack-vllm-gpu-b1", "sovstack-vllm-tiny-pp-1-rank1"}
    assert set(units["gpu-3"]) == {"sovstack-vllm-gpu-3"}

    head = _argv(units["gpu-1"]["sovstack-vllm-tiny-pp-1"])
    assert head[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert _after(head, "--model") == "/opt/sovstack/models/tiny-llama"
    assert _after(head, "--served-model-name") == "tiny-llama-pp"
    assert _after(head, "--pipeline-parallel-size") == "2"
    assert _after(head, "--distributed-executor-backend") == "mp"
    assert (_after(head, "--nnodes"), _after(head, "--node-rank")) == ("2", "0")
    assert (_after(head, "--master-addr"), _after(head, "--master-port")) == ("10.0.0.21", "29501")
    assert "--enforce-eager" not in head
    # Traced and run eagerly: the warm-up a later stage needs, and no C++ compiler on the node.
    assert "--compilation-config.mode=1" in head and "--compilation-config.backend=eager" in head

    second_unit = units["gpu-2"]["sovstack-vllm-tiny-pp-1-rank1"]
    second = _argv(second_unit)
    assert second[1:4] == ["-m", "sovstack_vllm_headless", "/opt/sovstack/models/tiny-llama"]
    assert "--headless" in second and _after(second, "--node-rank") == "1"
    assert _after(second, "--master-addr") == "10.0.0.21"
    assert "--port" not in second and "EnvironmentFile" not in second_unit  # no API, no key

    for unit in (units["gpu-1"]["sovstack-vllm-tiny-pp-1"], second_unit):
        assert "Environment=VLLM_HOST_IP=127.0.0.1" in unit  # the node's own cluster address
        assert "Environment=GLOO_SOCKET_IFNAME=lo" in unit  # the interface that holds it
        assert "Environment=VLLM_NO_USAGE_STATS=1" in unit and "Environment=DO_NOT_TRACK=1" in unit
        assert "Restart=always" in unit
    # Each share watches the others: the first the second's listener, the second the store.
    assert (
        "Environment=SOVSTACK_SPAN_WATCH=10.0.0.22:29502"
        in units["gpu-1"]["sovstack-vllm-tiny-pp-1"]
    )
    assert "Environment=SOVSTACK_SPAN_LISTEN=127.0.0.1:29502" in second_unit
    assert "Environment=SOVSTACK_SPAN_WATCH=10.0.0.21:29501" in second_unit
    # A replica on one node keeps its runtime on loopback, as before.
    assert "Environment=VLLM_HOST_IP=127.0.0.1" in units["gpu-3"]["sovstack-vllm-gpu-3"]
    assert "--nnodes" not in _argv(units["gpu-3"]["sovstack-vllm-gpu-3"])


def test_only_units_no_replica_needs_are_removed(mp_site: Path) -> None:
    stale = {
        host: json.loads((mp_site / "out" / f"{host}.stale.json").read_text()) for host in HOSTS
    }
    # gpu-1 serves gpu-1 and tiny-pp-1; gpu-2 serves gpu-b1 and tiny-pp-1's second share.
    gone = "sovstack-vllm-gone"
    assert set(stale["gpu-1"]) == {"sovstack-vllm-gpu-b1", gone}
    assert set(stale["gpu-2"]) == {"sovstack-vllm-gpu-2", "sovstack-vllm-tiny-pp-1", gone}
    assert set(stale["gpu-3"]) == {"sovstack-vllm-gpu-b1", "sovstack-vllm-tiny-pp-1", gone}


def test_the_firewall_opens_the_span_between_its_nodes_only(mp_site: Path) -> None:
    rules = {host: (mp_site / "out" / f"{host}.nft").read_text() for host in HOSTS}
    span_rule = "tcp dport { 29501-29502, 32768-60999 } accept"
    assert f"ip daddr {{ 10.0.0.22 }} {span_rule}" in rules["gpu-1"]
    assert f"ip daddr {{ 10.0.0.21 }} {span_rule}" in rules["gpu-2"]
    assert "tiny-pp-1" not in rules["gpu-3"] + rules["gpu-4"]


def test_the_gateway_tells_the_policy_each_node_of_the_replica_and_its_site(mp_site: Path) -> None:
    upstreams = json.loads((mp_site / "out" / "gpu-3.upstreams.json").read_text())
    by_id = {u["id"]: u for u in upstreams}
    assert by_id["tiny-pp-1"]["nodes"] == {"gpu-1": "plant-a", "gpu-2": "plant-b"}
    assert by_id["tiny-pp-1"]["url"] == "http://10.0.0.21:8001"
    assert "nodes" not in by_id["gpu-1"]
    assert len(upstreams) == 5  # one replica, not one per node


def test_a_ray_replica_runs_vllm_on_its_first_node_only(tmp_path: Path) -> None:
    done = _render(tmp_path, [_span(executor="auto")], device="cuda")
    assert done.returncode == 0, done.stdout + done.stderr
    units = _units(tmp_path)
    assert set(units["gpu-1"]) == {"sovstack-vllm-tiny-pp-1"}
    assert set(units["gpu-2"]) == {"sovstack-vllm-gpu-b1"}  # Ray's worker is ray_cluster's
    unit = units["gpu-1"]["sovstack-vllm-tiny-pp-1"]
    assert _after(_argv(unit), "--distributed-executor-backend") == "ray"
    assert "--nnodes" not in _argv(unit) and "--compilation-config.mode=1" not in _argv(unit)
    assert "Environment=RAY_ADDRESS=10.0.0.21:6379" in unit
    assert "EnvironmentFile=/etc/sovstack/ray/ray.env" in unit
    assert "Wants=sovstack-ray-head.service" in unit
    rules = (tmp_path / "out" / "gpu-2.nft").read_text()
    assert "ip daddr { 10.0.0.21 } tcp dport { 6379, 6380" in rules


def test_a_replica_the_role_cannot_span_is_refused_by_name(tmp_path: Path) -> None:
    bad = {
        "gpu-1": _span(id="eager", extra_args=["--enforce-eager"]),
        "gpu-2": _span(id="no-port", nodes=["gpu-2", "gpu-3"], master_port=None),
        "gpu-3": _span(id="stranger", nodes=["gpu-3", "gpu-9"]),
        "gpu-4": _span(id="elsewhere", nodes=["gpu-1", "gpu-4"]),
    }
    for replica in bad.values():
        if replica["master_port"] is None:
            del replica["master_port"]
    done = _render(tmp_path, [], replicas=bad)
    assert done.returncode != 0
    # Each node's failed check, its replica and the condition it broke.
    failures = done.stdout.split("failed: [")[1:]
    broke = {
        "eager": "'--enforce-eager'",
        "no-port": "master_port is defined",
        "stranger": "difference(groups[vllm_replica_group]",
        "elsewhere": "listed_on == __vllm_unit.nodes[0]",
    }
    for rid, condition in broke.items():
        assert any(f"replica {rid}:" in f and condition in f for f in failures), rid
