"""Each node after the first `make deploy`, checked over SSH as deployed (testinfra).

Every test runs once per host of inventory/local.
"""

from __future__ import annotations

from typing import Any

import pytest
from testinfra.host import Host

from sovstack.deploy.ansible import Run

pytestmark = pytest.mark.usefixtures("first_deploy")


def test_the_first_deploy_succeeded_on_every_node(
    first_deploy: Run, cluster_info: dict[str, Any]
) -> None:
    assert first_deploy.returncode == 0
    hosts = {r.host for r in first_deploy.recap if not r.failed and not r.unreachable}
    assert {n["name"] for n in cluster_info["nodes"]} <= hosts


def test_apt_knows_only_the_bundles_file_repository(host: Host) -> None:
    sources = host.check_output("apt-get indextargets --format '$(URI)' | sort -u").splitlines()
    assert sources and all(s.startswith("file:/var/lib/sovstack/bundle/debs") for s in sources)
    assert host.file("/etc/apt/sources.list").content_string.strip().startswith("#")
    assert host.check_output("ls /etc/apt/sources.list.d") == "sovstack-bundle.sources"
    policy = host.check_output("apt-cache policy nftables")
    assert "file:/var/lib/sovstack/bundle/debs" in policy
    assert "http" not in policy
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.run("systemctl is-enabled %s", timer).stdout.strip() == "masked"


def test_pip_has_no_index(host: Host) -> None:
    conf = host.file("/etc/pip.conf").content_string
    assert "no-index = true" in conf
    assert "find-links = /var/lib/sovstack/bundle/wheels" in conf


def test_the_node_records_the_bundle_it_came_from(host: Host) -> None:
    record = host.file("/etc/sovstack/bundle.json")
    assert record.exists
    assert '"profile": "cpu"' in record.content_string


def test_sshd_takes_keys_only_no_root_and_only_the_allowed_users(host: Host) -> None:
    lines = host.check_output("sudo -n sshd -T").splitlines()
    settings = dict(line.split(" ", 1) for line in lines)
    assert settings["passwordauthentication"] == "no"
    assert settings["kbdinteractiveauthentication"] == "no"
    assert settings["permitrootlogin"] == "no"
    assert settings["pubkeyauthentication"] == "yes"
    # sshd -T prints one allowusers line per user.
    users = [v for k, v in (ln.split(" ", 1) for ln in lines) if k == "allowusers"]
    allowed = host.ansible.get_variables()["base_hardening_ssh_allowed_users"]
    assert "sovstack" in allowed
    assert users == allowed
    assert settings["x11forwarding"] == "no"


def test_no_filesystem_is_blacklisted_and_auditd_is_installed(host: Host) -> None:
    modprobe = host.run("grep -rhs 'install vfat\\|blacklist vfat' /etc/modprobe.d").stdout
    assert modprobe == ""
    assert host.package("auditd").is_installed
    # A container shares the host's kernel audit: auditd is installed but masked there.
    assert host.run("systemctl is-enabled auditd").stdout.strip() == "masked"


def test_egress_is_dropped_by_default_counted_and_logged(host: Host) -> None:
    ruleset = host.check_output("sudo -n nft list table inet sovstack_egress")
    assert "type filter hook output priority filter; policy drop;" in ruleset
    assert "counter egress_drop" in ruleset
    assert 'log prefix "sovstack-egress-drop: "' in ruleset
    assert 'counter name "egress_drop" drop' in ruleset
    assert host.service("nftables").is_enabled


def test_there_is_no_default_route_v4_or_v6(host: Host) -> None:
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""


def test_chrony_asks_only_the_sites_time_server(host: Host, cluster_info: dict[str, Any]) -> None:
    conf = host.file("/etc/chrony/chrony.conf").content_string
    servers = [line.split()[1] for line in conf.splitlines() if line.startswith(("server", "pool"))]
    assert servers == [cluster_info["host_address"]]
    assert host.service("chrony").is_running
    sources = host.check_output("sudo -n chronyc -n sources")
    listed = [
        line.split()[1]
        for line in sources.splitlines()
        if line[:2] in ("^?", "^*", "^+", "^-", "^x", "^~")
    ]
    assert listed == [cluster_info["host_address"]]


def test_the_nodes_certificate_verifies_against_the_site_ca(host: Host) -> None:
    assert host.file("/etc/sovstack/pki/node.key").mode == 0o600
    assert host.file("/etc/sovstack/pki/node.key").user == "root"
    verified = host.run(
        "openssl verify -CAfile /etc/sovstack/pki/ca.pem /etc/sovstack/pki/node.pem"
    )
    assert verified.rc == 0, verified.stderr
    # The system trust store has the site CA too: a TLS client on the node trusts it as is.
    assert host.run("openssl verify /etc/sovstack/pki/node.pem").rc == 0
    # The CA's private key never leaves the controller.
    assert host.run("sudo -n find / -xdev -name ca.key -print -quit").stdout == ""


def test_the_runtimes_import_their_packages(host: Host) -> None:
    groups = host.ansible.get_variables()["group_names"]
    if "gateways" in groups or "audit_nodes" in groups:
        out = host.run("/opt/sovstack/venvs/gateway/bin/python -c 'import sovstack.gateway.app'")
        assert out.rc == 0, out.stderr
    if "gpu_nodes" in groups:
        out = host.run(
            "HF_HUB_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 "
            "/opt/sovstack/venvs/vllm/bin/python -c 'import vllm, torch'"
        )
        assert out.rc == 0, out.stderr
    if not {"gateways", "audit_nodes", "gpu_nodes"} & set(groups):
        assert not host.file("/opt/sovstack/venvs").exists
