"""The cluster's nodes and network come from the Ansible inventory, checked up front."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from sovstack.cluster import inventory, keys
from sovstack.cluster.commands import ClusterError
from sovstack.cluster.image import USER
from tests.conftest import ROOT

LOCAL = ROOT / "inventory" / "local"


def _write(tmp_path: Path, hosts: dict[str, object], **cluster: object) -> Path:
    settings = {
        "sovstack_cluster_name": "sovtest",
        "sovstack_cluster_network": "10.77.9.0/24",
        "sovstack_cluster_host_address": "10.77.9.1",
        "ansible_user": "sovstack",
        **cluster,
    }
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(yaml.safe_dump(settings))
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": hosts}, sort_keys=False))
    return tmp_path


def test_the_built_in_inventory_describes_five_nodes_on_a_private_network() -> None:
    spec = inventory.load(LOCAL)
    assert spec.names == ["gateway", "gpu-1", "gpu-2", "identity", "audit"]
    assert spec.network == ipaddress.IPv4Network("10.77.0.0/24")
    assert spec.network.is_private
    assert all(n.address in spec.network for n in spec.nodes)
    assert spec.host_address == ipaddress.IPv4Address("10.77.0.1")
    assert spec.user == USER
    assert spec.bridge == "sovstack-br"
    assert spec.netns(spec.node("gpu-2")) == "sovstack-gpu-2"


def test_the_built_in_inventory_points_ansible_at_the_files_cluster_up_writes() -> None:
    settings = yaml.safe_load((LOCAL / "group_vars" / "all" / "cluster.yml").read_text())
    state = Path(".sovstack/cluster")  # the default state folder, relative to the root
    assert settings["ansible_ssh_private_key_file"] == str(state / keys.CLIENT_KEY)
    assert f"UserKnownHostsFile={state / keys.KNOWN_HOSTS}" in settings["ansible_ssh_common_args"]
    assert "StrictHostKeyChecking=yes" in settings["ansible_ssh_common_args"]


def test_hosts_in_nested_groups_and_listed_twice_are_one_node_each(tmp_path: Path) -> None:
    hosts = {
        "children": {
            "web": {"hosts": {"a": {"ansible_host": "10.77.9.10"}}},
            "edge": {"children": {"inner": {"hosts": {"b": {"ansible_host": "10.77.9.11"}}}}},
            "monitored": {"hosts": {"a": None}},
        }
    }
    spec = inventory.load(_write(tmp_path, hosts))
    assert [(n.name, str(n.address)) for n in spec.nodes] == [
        ("a", "10.77.9.10"),
        ("b", "10.77.9.11"),
    ]


def _one(address: str) -> dict[str, object]:
    return {"hosts": {"a": {"ansible_host": address}}}


BAD: list[tuple[dict[str, object], dict[str, object], str]] = [
    (_one("10.78.0.5"), {}, "not a usable address"),
    (_one("10.77.9.255"), {}, "not a usable address"),
    ({"hosts": {"a": {}}}, {}, "has no ansible_host: give it an address in 10.77.9.0/24"),
    (_one("gateway.example"), {}, "not an IPv4 address"),
    ({"hosts": {"Bad_Name": {"ansible_host": "10.77.9.5"}}}, {}, "cannot name a node"),
    (
        {"hosts": {"a": {"ansible_host": "10.77.9.5"}, "b": {"ansible_host": "10.77.9.5"}}},
        {},
        "b and a share the address 10.77.9.5",
    ),
    (_one("10.77.9.1"), {}, "the control host"),
    (_one("10.77.9.5"), {"sovstack_cluster_network": "8.8.8.0/24"}, "must be a private range"),
    (_one("10.77.9.5"), {"sovstack_cluster_network": "10.77.9/x"}, "not an IPv4 network"),
    (_one("10.77.9.5"), {"sovstack_cluster_name": "much-too-long"}, "1 to 8 lower-case"),
    (_one("10.77.9.5"), {"ansible_user": None}, "ansible_user is not set"),
    ({}, {}, "lists no hosts"),
]


@pytest.mark.parametrize(("hosts", "cluster", "message"), BAD)
def test_a_bad_inventory_is_refused_with_what_to_fix(
    tmp_path: Path, hosts: dict[str, object], cluster: dict[str, object], message: str
) -> None:
    with pytest.raises(ClusterError, match=message):
        inventory.load(_write(tmp_path, hosts, **cluster))


def test_a_folder_without_hosts_yml_is_named(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"hosts\.yml does not exist"):
        inventory.load(tmp_path)


def test_broken_yaml_names_the_file(tmp_path: Path) -> None:
    inv = _write(tmp_path, {"hosts": {"a": {"ansible_host": "10.77.9.5"}}})
    (inv / "hosts.yml").write_text("all: [unclosed\n")
    with pytest.raises(ClusterError, match=r"hosts\.yml is not valid YAML"):
        inventory.load(inv)


def test_an_unknown_node_lists_the_nodes() -> None:
    with pytest.raises(ClusterError, match="no node named 'gpu-9': the nodes are gateway, gpu-1"):
        inventory.load(LOCAL).node("gpu-9")
