"""The gateway role deploys worker processes: one per core unless set, a key per worker.

The role's own Jinja, rendered as Ansible renders it (tests/unit/roles), and
the settings it writes checked by the gateway's own settings class, so the
role and the gateway agree on the workers and their keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sovstack.gateway.config import Settings
from tests.unit.roles import RoleVars
from tests.unit.roles.test_opa import _service

HOST = {"inventory_hostname": "gw-1", "ansible_host": "10.0.0.11",
        "ansible_managed": "Ansible managed", "ansible_facts": {"processor_nproc": 4},
        "sovstack_state_dir": "/ctl/.sovstack",
        "groups": {"gpu_nodes": [], "identity_nodes": ["idp"]},
        "hostvars": {"idp": {"ansible_host": "10.0.0.2"}}}  # fmt: skip


def _vars(**inventory: Any) -> RoleVars:
    return RoleVars("gateway", HOST, inventory)


def _settings(role: RoleVars, tmp_path: Path) -> Settings:
    """The role's settings file as the gateway reads it (paths made local, one upstream)."""
    config = {
        name: role.render(value) if isinstance(value, str) and "{{" in value else value
        for name, value in role["__gateway_config"].items()
        if name != "upstreams"
    }
    written = yaml.safe_load(yaml.safe_dump(config))
    written |= {"tls_cert": None, "tls_key": None, "ca_file": None, "allow_plain_http": True,
                "host": "127.0.0.1", "audit_dir": str(tmp_path),
                "upstreams": [{"id": "r", "model": "m", "url": "http://10.0.0.5:8000",
                               "site": "plant-a"}]}  # fmt: skip
    return Settings(**written)


def test_unset_workers_are_the_nodes_cores_each_with_its_own_key(tmp_path: Path) -> None:
    role = _vars()
    assert role["__gateway_workers"] == 4
    assert role["__gateway_worker_keys"] == [f"audit-signing.key.worker-{i}" for i in range(4)]
    assert _settings(role, tmp_path).worker_count() == 4


@pytest.mark.parametrize(("workers", "keys"), [(1, 0), (3, 3)])
def test_set_workers_are_written_and_one_process_needs_no_worker_key(
    tmp_path: Path, workers: int, keys: int
) -> None:
    role = _vars(gateway_workers=workers)
    assert _settings(role, tmp_path).worker_count() == workers
    assert len(role["__gateway_worker_keys"]) == keys


def test_the_unit_reloads_with_sighup_and_stops_through_the_supervisor() -> None:
    settings, argv = _service(_vars().template("sovstack-gateway.service.j2"))
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["KillMode"] == ["mixed"]
    assert argv[1:3] == ["gateway", "--config"]
