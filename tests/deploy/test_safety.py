"""Bad input changes nothing anywhere: a bad inventory, an unreachable node, a bad bundle.

Each case runs the real site playbook against the deployed local cluster,
exactly as `make deploy` would, and checks the message names what is wrong
and that no node reports a change.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sovstack.deploy.ansible import Run
from tests.conftest import ROOT
from tests.deploy.conftest import STATE, extra_vars, playbook

pytestmark = pytest.mark.usefixtures("first_deploy")


def _nothing_changed(run: Run) -> None:
    assert run.returncode != 0
    assert all(r.changed == 0 for r in run.recap), run.recap


def _log(run: Run) -> str:
    return run.log.read_text()


def test_an_unknown_variable_is_refused_by_name_before_any_host_changes() -> None:
    run = playbook(extra_vars(egress_firewall_peer=[]))
    _nothing_changed(run)
    assert "unknown variable(s) egress_firewall_peer for role egress_firewall" in _log(run)


def test_a_wrongly_typed_variable_is_refused_by_name_before_any_host_changes() -> None:
    run = playbook(extra_vars(base_hardening_ssh_max_auth_tries="many"))
    _nothing_changed(run)
    assert "base_hardening_ssh_max_auth_tries" in _log(run)
    assert "int" in _log(run)


def test_a_peer_missing_its_ports_is_refused_before_any_host_changes() -> None:
    peers = [{"comment": "no ports", "addresses": ["10.77.0.30"], "proto": "tcp"}]
    run = playbook(extra_vars(egress_firewall_peers=peers))
    _nothing_changed(run)
    assert "ports" in _log(run)


def _inventory_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "inventory"
    shutil.copytree(ROOT / "inventory" / "local", copy)
    return copy


def test_a_missing_group_is_named_before_any_host_changes(tmp_path: Path) -> None:
    inventory = _inventory_copy(tmp_path)
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    del hosts["all"]["children"]["audit_nodes"]
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    run = playbook(extra_vars(), inventory=inventory)
    _nothing_changed(run)
    assert "no hosts in group(s) audit_nodes" in _log(run)


def test_an_unreachable_node_is_named_and_nothing_changes(tmp_path: Path) -> None:
    inventory = _inventory_copy(tmp_path)
    (inventory / "host_vars").mkdir()
    # A port nothing listens on, on one of the cluster's own nodes.
    (inventory / "host_vars" / "gpu-2.yml").write_text("ansible_port: 2\n")
    run = playbook(extra_vars(), inventory=inventory)
    _nothing_changed(run)
    assert "fatal: [gpu-2]: UNREACHABLE!" in _log(run)
    assert "PLAY [Verify the offline bundle" not in _log(run)
    assert [r.host for r in run.recap if r.unreachable] == ["gpu-2"]


def test_a_bundle_that_does_not_verify_changes_nothing_anywhere() -> None:
    tampered = STATE / "deploy" / "tampered-bundle"
    shutil.rmtree(tampered, ignore_errors=True)
    # Hard links: a copy in no time; the one file changed is replaced, never written through.
    subprocess.run(["cp", "-al", str(STATE / "bundle" / "cpu"), str(tampered)], check=True)
    changed = tampered / "policy" / "policy-signing.pub"
    text = changed.read_text()
    changed.unlink()
    changed.write_text(text.replace("A", "B", 1))
    try:
        run = playbook(extra_vars(sovstack_bundle_dir=str(tampered)))
    finally:
        shutil.rmtree(tampered)
    _nothing_changed(run)
    assert "policy/policy-signing.pub" in _log(run)
    assert "Verify the signature and every file of the bundle" in _log(run)
