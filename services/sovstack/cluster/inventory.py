"""Read the local cluster's nodes and network from an Ansible inventory directory.

The inventory (``inventory/local``) is the single source of truth: its
``hosts.yml`` names the nodes and gives each an ``ansible_host`` address, and
the ``all`` group's vars (``group_vars/all.yml`` or ``group_vars/all/*.yml``)
set ``sovstack_cluster_name`` (prefix of every host object the cluster makes),
``sovstack_cluster_network`` (a private IPv4 range), ``sovstack_cluster_host_address``
(the control host's address on the bridge) and ``ansible_user``. Everything is
checked before anything is created, and a bad value names its file and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sovstack.cluster.commands import ClusterError

__all__ = ["ClusterSpec", "Node", "load"]

_NODE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
_CLUSTER_NAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MAX_NODES = 100  # keeps every veth name within the kernel's 15 characters


@dataclass(frozen=True)
class Node:
    """One cluster node: its host name (also its machine name) and its address."""

    name: str
    address: ipaddress.IPv4Address


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster an inventory describes; names of host objects derive from ``name``."""

    name: str
    network: ipaddress.IPv4Network
    host_address: ipaddress.IPv4Address
    user: str
    nodes: tuple[Node, ...]

    @property
    def bridge(self) -> str:
        return f"{self.name}-br"

    def netns(self, node: Node) -> str:
        return f"{self.name}-{node.name}"

    def veth(self, index: int) -> str:
        return f"{self.name}-v{index}"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise ClusterError(f"no node named {name!r}: the nodes are {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ClusterError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ClusterError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ClusterError(f"{path} must hold a mapping at its top level")
    return data


def _hosts(group: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, hostvars in (group.get("hosts") or {}).items():
        yield str(name), hostvars or {}
    for child in (group.get("children") or {}).values():
        yield from _hosts(child or {})


def _all_vars(inventory: Path) -> tuple[dict[str, Any], Path]:
    group_vars = inventory / "group_vars"
    files = [group_vars / "all.yml", group_vars / "all.yaml"]
    files += sorted((group_vars / "all").glob("*.y*ml")) if (group_vars / "all").is_dir() else []
    merged: dict[str, Any] = {}
    where = group_vars / "all"
    for path in files:
        if path.is_file():
            data = _read_yaml(path)
            merged.update(data)
            if any(k.startswith("sovstack_cluster_") for k in data):
                where = path
    return merged, where


def _setting(values: Mapping[str, Any], key: str, where: Path) -> str:
    value = values.get(key)
    if value is None or str(value).strip() == "":
        raise ClusterError(f"{key} is not set: add it to {where}")
    return str(value)


def _network(values: Mapping[str, Any], where: Path) -> ipaddress.IPv4Network:
    text = _setting(values, "sovstack_cluster_network", where)
    try:
        network = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise ClusterError(
            f"sovstack_cluster_network {text!r} in {where} is not an IPv4 network "
            f"such as 10.77.0.0/24: {exc}"
        ) from exc
    if not network.is_private or network.prefixlen > 29:
        raise ClusterError(
            f"sovstack_cluster_network {text} in {where} must be a private range "
            "(10/8, 172.16/12 or 192.168/16) of at least 8 addresses"
        )
    return network


def _address(
    text: object, what: str, network: ipaddress.IPv4Network, where: Path
) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(str(text))
    except ValueError as exc:
        raise ClusterError(f"{what} {text!r} in {where} is not an IPv4 address") from exc
    if address not in network or address in (network.network_address, network.broadcast_address):
        raise ClusterError(
            f"{what} {address} in {where} is not a usable address of the cluster network {network}"
        )
    return address


def load(inventory: Path) -> ClusterSpec:
    """Read and check the cluster an inventory directory describes."""
    hosts_file = inventory / "hosts.yml"
    if not hosts_file.is_file():
        raise ClusterError(
            f"{hosts_file} does not exist: --inventory must name an inventory directory "
            "with a hosts.yml (the built-in one is inventory/local)"
        )
    values, where = _all_vars(inventory)
    name = _setting(values, "sovstack_cluster_name", where)
    if not _CLUSTER_NAME.match(name):
        raise ClusterError(
            f"sovstack_cluster_name {name!r} in {where} must be 1 to 8 lower-case letters "
            "or digits, starting with a letter (it prefixes interface names)"
        )
    network = _network(values, where)
    host_address = _address(
        _setting(values, "sovstack_cluster_host_address", where),
        "sovstack_cluster_host_address",
        network,
        where,
    )
    user = _setting(values, "ansible_user", where)
    merged: dict[str, dict[str, Any]] = {}
    for host, hostvars in _hosts(_read_yaml(hosts_file).get("all") or {}):
        merged.setdefault(host, {}).update(hostvars)  # as Ansible merges a host's groups
    nodes: dict[str, Node] = {}
    for host, hostvars in merged.items():
        if not _NODE_NAME.match(host):
            raise ClusterError(
                f"host {host!r} in {hosts_file} cannot name a node: use 1 to 32 lower-case "
                "letters, digits and inner hyphens"
            )
        if hostvars.get("ansible_host") is None:
            raise ClusterError(
                f"host {host} in {hosts_file} has no ansible_host: give it an address in {network}"
            )
        address = _address(hostvars["ansible_host"], f"ansible_host of {host}", network, hosts_file)
        nodes[host] = Node(host, address)
    _check_nodes(list(nodes.values()), host_address, hosts_file)
    return ClusterSpec(name, network, host_address, user, tuple(nodes.values()))


def _check_nodes(nodes: list[Node], host_address: ipaddress.IPv4Address, hosts_file: Path) -> None:
    if not nodes:
        raise ClusterError(f"{hosts_file} lists no hosts under 'all'")
    if len(nodes) > MAX_NODES:
        raise ClusterError(f"{hosts_file} lists {len(nodes)} hosts; the cluster takes {MAX_NODES}")
    seen: dict[ipaddress.IPv4Address, str] = {
        host_address: "the control host (sovstack_cluster_host_address)"
    }
    for node in nodes:
        if node.address in seen:
            raise ClusterError(
                f"{node.name} and {seen[node.address]} share the address {node.address} "
                f"in {hosts_file}"
            )
        seen[node.address] = node.name
