"""The cluster network: a bridge on the host, and per node a namespace joined to it by a veth.

Each node's namespace has its loopback and one interface, ``eth0``, with its
address on the cluster network, and no default route: the only destinations
a node can reach are the other nodes and the control host's address on the
bridge. IPv6 is switched off on ``eth0`` and on the bridge (loopback keeps
``::1``) so that no router advertisement or link-local path exists beside it.

Every function here does one ``ip`` step; the caller records each object
before it creates it. Deleting an object that is already gone is not an error.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

from sovstack.cluster.commands import ClusterError, run, try_run

__all__ = [
    "NETNS_DIR",
    "add_bridge",
    "add_netns",
    "add_veth",
    "check_free",
    "delete_link",
    "delete_netns",
    "link_exists",
    "netns_exists",
]

NETNS_DIR = Path("/run/netns")
_NO_IPV6 = "[ ! -d {conf} ] || echo 1 > {conf}/disable_ipv6"


def link_exists(name: str) -> bool:
    code, _ = try_run(["ip", "link", "show", "dev", name])
    return code == 0


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def _host_networks() -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes and addresses, as (network, where) pairs."""
    found: list[tuple[ipaddress.IPv4Network, str]] = []
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]"):
        dst = route.get("dst", "default")
        if dst != "default" and route.get("type", "unicast") == "unicast":
            found.append((ipaddress.IPv4Network(dst, strict=False), f"a route on {route['dev']}"))
    for link in json.loads(run(["ip", "-j", "-4", "addr", "show"]) or "[]"):
        for addr in link.get("addr_info", []):
            network = ipaddress.IPv4Network(f"{addr['local']}/{addr['prefixlen']}", strict=False)
            found.append((network, f"address {addr['local']} on {link['ifname']}"))
    return found


def check_free(
    network: ipaddress.IPv4Network, links: list[str], namespaces: list[str], where: str
) -> None:
    """Refuse before creating anything if a name is taken or the network is in use here."""
    for name in links:
        if link_exists(name):
            raise ClusterError(
                f"a network interface named {name} already exists on this host and "
                f"'cluster up' did not make it: remove it, or set another "
                f"sovstack_cluster_name in {where}"
            )
    for name in namespaces:
        if netns_exists(name):
            raise ClusterError(
                f"a network namespace named {name} already exists ({NETNS_DIR / name}): "
                f"remove it (ip netns delete {name}), or set another sovstack_cluster_name "
                f"in {where}"
            )
    for other, what in _host_networks():
        if other.overlaps(network) and not other.is_loopback:
            raise ClusterError(
                f"the cluster network {network} overlaps {other} ({what}) on this host: "
                f"set another private sovstack_cluster_network in {where}"
            )


def _no_ipv6(conf: str, netns: str | None = None) -> None:
    argv = ["sh", "-c", _NO_IPV6.format(conf=conf)]
    run([*(["nsenter", f"--net={NETNS_DIR / netns}", "--"] if netns else []), *argv])


def add_bridge(name: str, address: ipaddress.IPv4Interface) -> None:
    run(["ip", "link", "add", name, "type", "bridge"])
    _no_ipv6(f"/proc/sys/net/ipv6/conf/{name}")
    run(["ip", "addr", "add", str(address), "dev", name])
    run(["ip", "link", "set", name, "up"])


def add_netns(name: str) -> None:
    run(["ip", "netns", "add", name])
    # Interfaces made in the namespace from now on (eth0) get no IPv6 at all.
    _no_ipv6("/proc/sys/net/ipv6/conf/default", name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def add_veth(host_end: str, netns: str, bridge: str, address: ipaddress.IPv4Interface) -> None:
    """A veth pair: ``host_end`` on the bridge, ``eth0`` in ``netns`` with ``address``."""
    run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", host_end, "master", bridge, "up"])
    run(["ip", "-n", netns, "addr", "add", str(address), "dev", "eth0"])
    run(["ip", "-n", netns, "link", "set", "eth0", "up"])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "delete", name])


def delete_netns(name: str) -> None:
    if netns_exists(name):
        run(["ip", "netns", "delete", name])
