"""What runs where: each node's roles, read from the inventory and the site playbook.

The playbooks are the one source: each play maps a host pattern (a group,
``all``, or ``localhost``) to roles, and ``ansible-inventory --list`` says
which hosts each group holds.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from sovstack.deploy.ansible import tool

__all__ = ["roles_by_host"]


def _plays(playbook: Path) -> list[dict[str, Any]]:
    plays: list[dict[str, Any]] = []
    for entry in yaml.safe_load(playbook.read_text()) or []:
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if imported:
            plays += _plays(playbook.parent / str(imported))
        elif isinstance(entry, dict) and "hosts" in entry:
            plays.append(entry)
    return plays


def _role_name(role: Any) -> str:
    return str(role.get("role") or role.get("name")) if isinstance(role, dict) else str(role)


def roles_by_host(root: Path, inventory: Path) -> dict[str, tuple[str, list[str]]]:
    """Each host of ``inventory``: its address and, in order, the roles site.yml gives it."""
    listed = subprocess.run(
        [tool("ansible-inventory"), "-i", str(inventory), "--list"],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        env={"ANSIBLE_CONFIG": str(root / "ansible.cfg"), "PATH": "/usr/bin:/bin"},
    )
    data = json.loads(listed.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})

    def hosts_of(group: str) -> list[str]:
        found = list(data.get(group, {}).get("hosts", []))
        for child in data.get(group, {}).get("children", []):
            found += hosts_of(child)
        return found

    out: dict[str, tuple[str, list[str]]] = {
        h: (str(hostvars.get(h, {}).get("ansible_host", h)), []) for h in hosts_of("all")
    }
    for play in _plays(root / "playbooks" / "site.yml"):
        for pattern in str(play["hosts"]).split(":"):
            for host in hosts_of(pattern) if pattern != "localhost" else []:
                roles = out[host][1]
                roles += [r for r in map(_role_name, play.get("roles", [])) if r not in roles]
    return out
