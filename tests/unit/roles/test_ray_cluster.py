"""The ray_cluster role: which nodes get Ray, and the units and ports they get.

No node here has a GPU or systemd, so the role's own Jinja runs as Ansible 2.19
runs it (native types, role vars over inventory over role defaults, each
variable rendered when first read): vars/main.yml picks the node's replica,
templates/ray.service.j2 renders its unit, and the tests read the unit's
``ray start`` flags back. The flags themselves are ray 2.60's (``ray start --help``).
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.unit.roles import ROLES, RoleVars
from tests.unit.roles import read_yaml as _yaml

ROOT = ROLES.parent
ROLE = ROLES / "ray_cluster"
STATE_DIR = "/srv/deploy/.sovstack"
DEFAULTS: dict[str, Any] = _yaml(ROLE / "defaults" / "main.yml")
ROLE_VARS: dict[str, Any] = _yaml(ROLE / "vars" / "main.yml")


class HostVars(RoleVars):
    """One host's variables as the role sees them: the facts Ansible sets over its inventory."""

    def __init__(
        self, host: str, inventory: dict[str, dict[str, Any]], groups: dict[str, list[str]]
    ) -> None:
        facts = {"inventory_hostname": host, "groups": groups, "sovstack_state_dir": STATE_DIR,
                 "ansible_managed": "Ansible managed", "ansible_check_mode": False,
                 "hostvars": inventory}  # fmt: skip
        super().__init__("ray_cluster", facts, inventory[host])

    def unit(self) -> str:
        """templates/ray.service.j2 for this host, as the template module writes it."""
        return self.template("ray.service.j2")


def _replica(rid: str, nodes: list[str], **more: Any) -> dict[str, Any]:
    return {"id": rid, "model": "ops-llama-70b", "port": 8000, "site": "plant-a",
            "jurisdiction": "DE", "nodes": nodes, **more}  # fmt: skip


def _site(
    replicas: dict[str, list[dict[str, Any]]], device: str = "cuda", **host_vars: Any
) -> dict[str, HostVars]:
    """Every gpu node's variables: gpu-1 .. gpu-4 at 10.0.0.21 .., replicas as listed per host."""
    names = [f"gpu-{i}" for i in range(1, 5)]
    inventory = {
        name: {"ansible_host": f"10.0.0.{20 + i}", "vllm_device": device,
               "vllm_replicas": replicas.get(name, []), **host_vars}
        for i, name in enumerate(names, start=1)
    }  # fmt: skip
    groups = {"all": names, "gpu_nodes": names}
    return {name: HostVars(name, inventory, groups) for name in names}


def _exec_start(unit: str) -> list[str]:
    """The unit's ExecStart as argv (its continuation lines joined)."""
    joined = unit.replace("\\\n", " ")
    (line,) = [ln for ln in joined.splitlines() if ln.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def _flags(argv: list[str]) -> dict[str, str | None]:
    assert argv[1:3] == ["start", "--block"], argv
    flags: dict[str, str | None] = {}
    for arg in argv[3:]:
        name, sep, value = arg.partition("=")
        assert name.startswith("--") and name not in flags, arg
        flags[name] = value if sep else None
    return flags


def _settings(unit: str, key: str) -> list[str]:
    return [ln.split("=", 1)[1] for ln in unit.splitlines() if ln.startswith(f"{key}=")]


def _environment(unit: str) -> dict[str, str]:
    return dict(value.split("=", 1) for value in _settings(unit, "Environment"))


# The flags of ports the other nodes reach, and the variable of each.
_NODE_PORT_FLAGS = {
    "--node-manager-port": "ray_cluster_node_manager_port",
    "--object-manager-port": "ray_cluster_object_manager_port",
    "--dashboard-agent-grpc-port": "ray_cluster_dashboard_agent_grpc_port",
    "--dashboard-agent-listen-port": "ray_cluster_dashboard_agent_listen_port",
    "--runtime-env-agent-port": "ray_cluster_runtime_env_agent_port",
    "--metrics-export-port": "ray_cluster_metrics_export_port",
}
_HEAD_PORT_FLAGS = {
    "--port": "ray_cluster_gcs_port",
    "--ray-client-server-port": "ray_cluster_client_server_port",
}


def _flag_ports(flags: dict[str, str | None]) -> list[int | str]:
    """The ports other nodes reach, as the flags give them (the worker range as 'low-high')."""
    named = {**_NODE_PORT_FLAGS, **_HEAD_PORT_FLAGS}
    ports: list[int | str] = [int(v) for k, v in flags.items() if k in named and v is not None]
    ports.append(f"{flags['--min-worker-port']}-{flags['--max-worker-port']}")
    return ports


@pytest.fixture
def two_nodes() -> dict[str, HostVars]:
    """big-1 over gpu-1 (head, which lists it) and gpu-2; gpu-3 serves a replica of its own."""
    return _site({
        "gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"], pipeline_parallel_size=2,
                           tensor_parallel_size=8, executor="ray")],
        "gpu-3": [{"id": "small-1", "model": "ops-llama-8b", "port": 8000, "site": "plant-a"}],
    })  # fmt: skip


def test_the_head_runs_ray_start_head_with_every_port_fixed(two_nodes: dict[str, HostVars]) -> None:
    head = two_nodes["gpu-1"]
    assert head["__ray_cluster_is_head"] is True
    assert head["__ray_cluster_unit"] == "sovstack-ray-head"
    unit = head.unit()
    argv = _exec_start(unit)
    assert argv[0] == "/opt/sovstack/venvs/vllm/bin/ray"
    flags = _flags(argv)
    assert "--head" in flags and flags["--head"] is None
    assert "--address" not in flags
    assert flags["--node-ip-address"] == "10.0.0.21"
    for flag, variable in {**_NODE_PORT_FLAGS, **_HEAD_PORT_FLAGS}.items():
        assert flags[flag] == str(DEFAULTS[variable]), flag
    assert flags["--min-worker-port"] == str(DEFAULTS["ray_cluster_min_worker_port"])
    assert flags["--max-worker-port"] == str(DEFAULTS["ray_cluster_max_worker_port"])
    # The dashboard is off; its API server stays on loopback, on a fixed port.
    assert flags["--include-dashboard"] == "false"
    assert flags["--dashboard-host"] == "127.0.0.1"
    assert flags["--dashboard-port"] == str(DEFAULTS["ray_cluster_dashboard_port"])
    assert _environment(unit)["AUTOSCALER_METRIC_PORT"] == str(
        DEFAULTS["ray_cluster_autoscaler_metrics_port"]
    )
    # Nothing but the workers' range is left to chance: no flag takes 0 or a random port.
    assert all(value != "0" for value in flags.values())
    assert "--num-gpus" not in flags  # Ray finds the GPUs itself
    assert "Ray head of vLLM replica big-1" in unit


def test_a_worker_joins_the_heads_address_with_every_port_fixed(
    two_nodes: dict[str, HostVars],
) -> None:
    worker = two_nodes["gpu-2"]
    assert worker["__ray_cluster_is_head"] is False
    assert worker["__ray_cluster_unit"] == "sovstack-ray-worker"
    unit = worker.unit()
    flags = _flags(_exec_start(unit))
    assert flags["--address"] == f"10.0.0.21:{DEFAULTS['ray_cluster_gcs_port']}"
    assert flags["--node-ip-address"] == "10.0.0.22"
    for flag, variable in _NODE_PORT_FLAGS.items():
        assert flags[flag] == str(DEFAULTS[variable]), flag
    assert flags["--min-worker-port"] == str(DEFAULTS["ray_cluster_min_worker_port"])
    assert flags["--max-worker-port"] == str(DEFAULTS["ray_cluster_max_worker_port"])
    # ray start refuses these without --head.
    assert not {"--head", "--port", "--include-dashboard", "--redis-shard-ports"} & set(flags)
    assert "AUTOSCALER_METRIC_PORT" not in _environment(unit)
    assert "Ray worker of vLLM replica big-1 (head gpu-1, 10.0.0.21:6379)" in unit


@pytest.mark.parametrize("host", ["gpu-1", "gpu-2"])
def test_both_units_are_quiet_authenticated_and_hardened(
    two_nodes: dict[str, HostVars], host: str
) -> None:
    node = two_nodes[host]
    unit = node.unit()
    flags = _flags(_exec_start(unit))
    environment = _environment(unit)
    # Usage reports off, by the flag and by the environment, and vLLM's quiet variables too.
    assert "--disable-usage-stats" in flags
    assert environment["RAY_USAGE_STATS_ENABLED"] == "0"
    vllm_quiet = _yaml(ROOT / "roles" / "vllm" / "vars" / "main.yml")["__vllm_quiet_env"]
    assert vllm_quiet.items() <= environment.items()
    # The token comes from the root-only file the role writes, never the command line.
    assert _settings(unit, "EnvironmentFile") == ["/etc/sovstack/ray/ray.env"]
    assert "RAY_AUTH" not in " ".join(_exec_start(unit))
    # Ray's temp dir (sessions, sockets, logs) lies in the only folders the unit may write.
    state_dir, temp_dir = node["__ray_cluster_state_dir"], node["__ray_cluster_temp_dir"]
    assert flags["--temp-dir"] == temp_dir and temp_dir.startswith(f"{state_dir}/")
    assert _settings(unit, "ReadWritePaths") == [f"{state_dir} /var/lib/vllm"]
    assert environment["HOME"] == "/var/lib/vllm"
    assert _settings(unit, "User") == ["vllm"] and _settings(unit, "Group") == ["vllm"]
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                    "ProtectHome=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
                    "ProtectControlGroups=yes", "CapabilityBoundingSet=", "RestrictSUIDSGID=yes",
                    "LockPersonality=yes", "Restart=on-failure", "After=network-online.target",
                    "Type=exec", "WantedBy=multi-user.target"):  # fmt: skip
        assert setting in unit.splitlines(), setting
    # ray start ends with 1 when systemd stops it and when it fails: restarted all the same.
    assert _settings(unit, "SuccessExitStatus") == ["1"]
    assert _settings(unit, "RestartForceExitStatus") == ["1"]
    # Nothing outside the template's variables: no '{{' left, no empty value.
    assert "{{" not in unit and "None" not in unit


def test_the_port_list_is_exactly_the_ports_the_other_nodes_reach(
    two_nodes: dict[str, HostVars],
) -> None:
    head, worker = two_nodes["gpu-1"], two_nodes["gpu-2"]
    ports = head["__ray_cluster_ports"]
    assert all(isinstance(p, int) or (isinstance(p, str) and p.count("-") == 1) for p in ports)
    head_ports = _flag_ports(_flags(_exec_start(head.unit())))
    worker_ports = _flag_ports(_flags(_exec_start(worker.unit())))
    assert sorted(map(str, ports)) == sorted(map(str, head_ports))
    assert set(map(str, worker_ports)) <= set(map(str, ports))
    assert worker["__ray_cluster_ports"] == ports
    assert ports == [6379, 6380, 6381, 6382, 6383, 6384, 6385, 6386, "10002-10999"]
    # Neither the loopback dashboard port nor the autoscaler's metrics are between nodes.
    assert DEFAULTS["ray_cluster_dashboard_port"] not in ports
    assert DEFAULTS["ray_cluster_autoscaler_metrics_port"] not in ports


def test_a_port_set_in_the_inventory_moves_the_flag_and_the_list() -> None:
    nodes = _site(
        {"gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"])]},
        ray_cluster_gcs_port=7379,
        ray_cluster_max_worker_port=10500,
    )
    head_flags = _flags(_exec_start(nodes["gpu-1"].unit()))
    worker_flags = _flags(_exec_start(nodes["gpu-2"].unit()))
    assert head_flags["--port"] == "7379"
    assert worker_flags["--address"] == "10.0.0.21:7379"
    assert worker_flags["--max-worker-port"] == "10500"
    ports = nodes["gpu-2"]["__ray_cluster_ports"]
    assert 7379 in ports and 6379 not in ports and "10002-10500" in ports


def _dispatched(node: HostVars) -> list[str]:
    """The task files tasks/main.yml runs on the node (past the checks)."""
    ran = []
    for task in _yaml(ROLE / "tasks" / "main.yml"):
        action = task.get("ansible.builtin.include_tasks", task.get("ansible.builtin.import_tasks"))
        name = action["file"] if isinstance(action, dict) else action
        when = task.get("when")
        if when is None or node.render("{{ " + when + " }}"):
            ran.append(name)
    return ran


def test_a_replica_on_one_node_needs_no_ray() -> None:
    nodes = _site({"gpu-1": [_replica("one-1", ["gpu-1"], executor="ray")]})
    assert nodes["gpu-1"]["__ray_cluster_ray_replicas"] == []
    assert _dispatched(nodes["gpu-1"]) == ["assert.yml"]


def test_a_node_in_no_ray_replica_gets_nothing(two_nodes: dict[str, HostVars]) -> None:
    for host in ("gpu-3", "gpu-4"):  # a replica of its own without nodes; no replica at all
        node = two_nodes[host]
        assert node["__ray_cluster_memberships"] == []
        assert _dispatched(node) == ["assert.yml"]
    assert _dispatched(two_nodes["gpu-1"]) == ["assert.yml", "install.yml", "configure.yml",
                                               "service.yml"]  # fmt: skip
    assert _dispatched(two_nodes["gpu-2"]) == _dispatched(two_nodes["gpu-1"])


@pytest.mark.parametrize(
    ("device", "executor", "on_ray"),
    [
        ("cpu", "auto", False),  # the CPU build: vLLM's multiprocess backend, no Ray
        ("cpu", "mp", False),
        ("cuda", "mp", False),
        ("cuda", "auto", True),
        ("cuda", "ray", True),
        ("cpu", "ray", True),  # asked for: the role then finds no Ray in the venv and says so
    ],
)
def test_the_executor_decides_who_gets_ray(device: str, executor: str, on_ray: bool) -> None:
    nodes = _site({"gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"], executor=executor)]}, device)
    for host in ("gpu-1", "gpu-2"):
        expected = [{"id": "big-1", "nodes": ["gpu-1", "gpu-2"], "listed_on": "gpu-1"}]
        assert nodes[host]["__ray_cluster_memberships"] == (expected if on_ray else [])


def test_executor_auto_reads_the_device_of_the_host_that_lists_the_replica() -> None:
    nodes = _site({"gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"])]}, "cpu")
    nodes["gpu-1"]._layers.maps[2]["vllm_device"] = "cuda"  # the head is a cuda node
    assert [r["id"] for r in nodes["gpu-2"]["__ray_cluster_memberships"]] == ["big-1"]


def _assert_conditions(name: str) -> list[str]:
    (task,) = [t for t in _yaml(ROLE / "tasks" / "assert.yml") if t["name"] == name]
    conditions: list[str] = task["ansible.builtin.assert"]["that"]
    return conditions


def test_a_node_in_two_ray_replicas_is_refused() -> None:
    nodes = _site({
        "gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"])],
        "gpu-3": [_replica("big-2", ["gpu-3", "gpu-2"])],
    })  # fmt: skip
    check = _assert_conditions("Refuse a node in two Ray replicas (one Ray cluster per node)")
    shared = nodes["gpu-2"]
    assert [r["id"] for r in shared["__ray_cluster_memberships"]] == ["big-1", "big-2"]
    assert not all(shared.render("{{ " + c + " }}") for c in check)
    for host in ("gpu-1", "gpu-3", "gpu-4"):
        assert all(nodes[host].render("{{ " + c + " }}") for c in check)


def test_every_default_is_an_option_of_the_spec_with_the_same_default() -> None:
    spec = _yaml(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(DEFAULTS) <= set(spec)
    for name, value in DEFAULTS.items():
        assert spec[name]["default"] == value, name
        if isinstance(value, int):
            assert spec[name]["type"] == "int", name
    assert all(name.startswith("ray_cluster_") for name in DEFAULTS)


def test_the_user_and_home_are_the_vllm_roles() -> None:
    vllm_vars = _yaml(ROOT / "roles" / "vllm" / "vars" / "main.yml")
    assert ROLE_VARS["__ray_cluster_vllm_home"] == vllm_vars["__vllm_home"]
    assert ROLE_VARS["__ray_cluster_user"] == "vllm"
    assert vllm_vars["__vllm_quiet_env"].items() <= ROLE_VARS["__ray_cluster_quiet_env"].items()


def test_the_handlers_listen_by_their_names() -> None:
    handlers = _yaml(ROLE / "handlers" / "main.yml")
    assert {h["name"]: h["listen"] for h in handlers} == {
        "Restart ray head": "Restart ray head",
        "Restart ray worker": "Restart ray worker",
    }


def test_ray_comes_from_the_gpu_bundles_vllm_set() -> None:
    pins = (ROOT / "requirements" / "vllm-gpu.txt").read_text().splitlines()
    assert "ray==2.60.0" in pins
    assert "msgpack==1.2.4" in pins  # the one Ray dependency vLLM does not bring
    assert pins[-1].startswith("vllm==")
    runtime = _yaml(ROOT / "roles" / "python_runtime" / "defaults" / "main.yml")
    assert DEFAULTS["ray_cluster_venv"] == f"{runtime['python_runtime_dir']}/vllm"
    assert "vllm" in runtime["python_runtime_sets_by_group"][DEFAULTS["ray_cluster_replica_group"]]


def test_the_egress_firewall_opens_the_same_ports() -> None:
    """The firewall (another play) cannot read this role's variables: it mirrors their defaults."""
    firewall = _yaml(ROOT / "roles" / "egress_firewall" / "defaults" / "main.yml")
    ports = _site({"gpu-1": [_replica("big-1", ["gpu-1", "gpu-2"])]})["gpu-1"][
        "__ray_cluster_ports"
    ]
    assert firewall["egress_firewall_ray_ports"] == ports, (
        "roles/egress_firewall/defaults/main.yml: egress_firewall_ray_ports must be the ray_cluster"
        f" role's ports, {ports}"
    )
