"""Each node, checked over SSH by testinfra: systemd runs, sshd listens, nothing beyond the cluster.

Every test here runs once per host of inventory/local. The reachability
probes only target loopback or the cluster network; the route checks use
``ip route get``, which asks the node's routing table and sends nothing.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from testinfra.host import Host

from tests.cluster.conftest import PROBE, Listener

# Documentation range (RFC 5737): never assigned; only looked up in a routing table here.
UNROUTED = "198.51.100.7"


def _probe(host: Host, address: str, port: int) -> str:
    return str(host.check_output("python3 -c %s %s %s", PROBE, address, str(port)))


def _me(host: Host, cluster_info: dict[str, Any]) -> dict[str, Any]:
    name = host.backend.get_hostname()
    return next(n for n in cluster_info["nodes"] if n["address"] == name or n["name"] == name)


def test_systemd_reports_running(host: Host) -> None:
    assert host.run("systemctl is-system-running").stdout.strip() == "running"
    assert host.check_output("systemctl --failed --plain --no-legend") == ""


def test_sshd_runs_and_listens_on_port_22(host: Host) -> None:
    ssh = host.service("ssh")
    assert ssh.is_running
    assert ssh.is_enabled
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_the_node_has_its_name_and_only_its_cluster_address(
    host: Host, cluster_info: dict[str, Any]
) -> None:
    me = _me(host, cluster_info)
    assert host.check_output("hostname") == me["name"]
    assert sorted(host.interface.names()) == ["eth0", "lo"]
    assert host.interface("eth0").addresses == [me["address"]]


def test_there_is_no_default_route(host: Host, cluster_info: dict[str, Any]) -> None:
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""
    # The one route a node has: the cluster network, on its own link.
    routes = [r.split()[:3] for r in host.check_output("ip -4 route show").splitlines()]
    assert routes == [[cluster_info["network"], "dev", "eth0"]]


def test_no_address_outside_the_cluster_network_has_a_route(host: Host) -> None:
    outside = [UNROUTED, *_host_addresses_off_the_cluster()]
    for address in outside:
        lookup = host.run("ip route get %s", address)
        assert lookup.rc != 0, f"{address}: {lookup.stdout}"
        assert "unreachable" in lookup.stderr


def _host_addresses_off_the_cluster() -> list[str]:
    """The control host's own IPv4 addresses other than loopback and the cluster bridge."""
    links = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True,
                                      text=True, check=True).stdout)  # fmt: skip
    return [
        a["local"]
        for link in links
        if link["ifname"] != "lo" and not link["ifname"].endswith("-br")
        for a in link.get("addr_info", [])
    ]


def test_a_service_on_the_hosts_loopback_cannot_be_reached_from_the_node(
    host: Host, loopback_service: Listener, bridge_service: Listener, cluster_info: dict[str, Any]
) -> None:
    # The probe works: the host reaches its own loopback service, and the node
    # reaches a service the host offers on the cluster network.
    assert _local_probe(loopback_service) == f"connected {loopback_service.banner.decode().strip()}"
    assert _probe(host, bridge_service.address, bridge_service.port).startswith("connected")
    # The node's 127.0.0.1 is its own, and the host's service is bound to loopback only.
    assert _probe(host, "127.0.0.1", loopback_service.port) == "refused"
    assert _probe(host, cluster_info["host_address"], loopback_service.port) == "refused"


def _local_probe(service: Listener) -> str:
    done = subprocess.run(
        ["python3", "-c", PROBE, service.address, str(service.port)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_node_reaches_every_other_node_over_ssh_port(
    host: Host, cluster_info: dict[str, Any]
) -> None:
    me = _me(host, cluster_info)
    for other in cluster_info["nodes"]:
        if other["name"] != me["name"]:
            assert _probe(host, other["address"], 22).startswith("connected SSH-2.0-OpenSSH")
            assert (
                host.check_output("getent hosts %s", other["name"]).split()[0] == other["address"]
            )


def test_the_cluster_user_may_become_root_without_a_password(host: Host) -> None:
    assert host.check_output("id -un") == "sovstack"
    assert host.check_output("sudo -n id -u") == "0"
