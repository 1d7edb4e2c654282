"""The opa role's unit: OPA's API on a Unix socket only the gateway may open, GOGC set.

No node here runs systemd, so the role's own Jinja runs as the template module
runs it (role vars over inventory over role defaults, each variable rendered
when first read), and the tests read the rendered unit back; the flags are
OPA 1.22's (``opa run --help``). The gateway role's settings are rendered the
same way, to hold the two roles to one socket and one group.
"""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from sovstack.gateway.endpoints import parse_opa_url
from tests.unit import roles
from tests.unit.roles import ROLES
from tests.unit.roles import read_yaml as _yaml

HOST = {"inventory_hostname": "gw-1", "ansible_host": "10.0.0.11",
        "ansible_managed": "Ansible managed"}  # fmt: skip


class RoleVars(roles.RoleVars):
    """A role's variables on HOST, ``inventory`` being the host's inventory variables."""

    def __init__(self, role: str, **inventory: Any) -> None:
        super().__init__(role, HOST, inventory)


def _service(unit: str) -> tuple[dict[str, list[str]], list[str]]:
    """The [Service] section's settings (each key's values, in order), and ExecStart as argv."""
    joined = unit.replace("\\\n", " ")
    section = joined.split("[Service]\n", 1)[1].split("\n[", 1)[0]
    settings: dict[str, list[str]] = {}
    for line in section.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings, shlex.split(settings["ExecStart"][0])


def _listeners(argv: list[str], flag: str) -> list[str]:
    return [a.removeprefix(f"{flag}=") for a in argv if a.startswith(f"{flag}=")]


def test_the_api_is_on_the_socket_only_and_health_on_the_cluster_address() -> None:
    settings, argv = _service(RoleVars("opa").template("opa.service.j2"))
    assert _listeners(argv, "--addr") == ["unix:///run/opa/opa.sock"]  # no TCP listener
    assert _listeners(argv, "--unix-socket-perm") == ["660"]
    assert _listeners(argv, "--diagnostic-addr") == ["10.0.0.11:8282"]
    assert settings["RuntimeDirectory"] == ["opa"]
    assert "--bundle" in argv and argv[-1] == "/opt/sovstack/opa/policy-bundle.tar.gz"


def test_the_socket_is_made_in_the_api_group_and_never_open_to_others() -> None:
    settings, _ = _service(RoleVars("opa").template("opa.service.j2"))
    # OPA's primary group names the socket's group; it reads its own files as opa.
    assert (settings["User"], settings["Group"]) == (["opa"], ["sovstack-opa-api"])
    assert settings["SupplementaryGroups"] == ["opa"]
    assert settings["RuntimeDirectoryMode"] == ["0750"]
    assert settings["UMask"] == ["0077"]  # owner-only until OPA sets 0660


def test_opa_port_adds_a_loopback_listener_only() -> None:
    _, argv = _service(RoleVars("opa", opa_port=8181).template("opa.service.j2"))
    assert _listeners(argv, "--addr") == ["unix:///run/opa/opa.sock", "127.0.0.1:8181"]


@pytest.mark.parametrize("gogc", [400, 200])
def test_opa_runs_with_the_gc_target_given(gogc: int) -> None:
    settings, _ = _service(RoleVars("opa", opa_gogc=gogc).template("opa.service.j2"))
    assert settings["Environment"] == [f"GOGC={gogc}"]


def test_the_gateway_asks_opa_on_the_socket_the_opa_role_serves() -> None:
    opa, gateway = RoleVars("opa"), RoleVars("gateway")
    url = gateway.render(
        _yaml(ROLES / "gateway" / "vars" / "main.yml")["__gateway_config"]["opa_url"]
    )
    assert url == "unix:///run/opa/opa.sock"
    assert parse_opa_url(url).socket == opa["__opa_socket"]
    assert gateway["gateway_opa_api_group"] == opa["opa_api_group"]


def test_prometheus_scrapes_the_diagnostic_port_opa_serves() -> None:
    scraped = RoleVars("prometheus")["prometheus_opa_diagnostic_port"]
    assert scraped == RoleVars("opa")["opa_diagnostic_port"]
