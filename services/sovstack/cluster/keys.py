"""SSH keys: the control host's key for the cluster, each node's host key, and known_hosts.

A fresh Ed25519 key pair is made for every ``cluster up``; its public half is
each node's ``authorized_keys`` for the cluster user. Every node gets its own
host key (the image carries none), and the control host's ``known_hosts`` for
the cluster lists them, so SSH checks host keys strictly instead of trusting
whatever answers first. The inventory (``inventory/local/group_vars``) points
Ansible and testinfra at these files by their paths relative to the project
root: :data:`SSH_DIR`, :data:`CLIENT_KEY` and :data:`KNOWN_HOSTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sovstack.cluster.commands import run

__all__ = ["CLIENT_KEY", "KNOWN_HOSTS", "SSH_DIR", "make_key", "ssh_options", "write_known_hosts"]

# Relative to the state folder (ROOT/.sovstack/cluster by default).
SSH_DIR = Path("ssh")
CLIENT_KEY = SSH_DIR / "id_ed25519"
KNOWN_HOSTS = SSH_DIR / "known_hosts"


def make_key(path: Path, comment: str) -> str:
    """Make an Ed25519 key pair without a passphrase at ``path``; return the public line."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.with_suffix(".pub").unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_suffix(".pub").read_text().strip()


def write_known_hosts(path: Path, entries: Sequence[tuple[str, str, str]]) -> None:
    """Write (name, address, public host key line) entries, each under both its name and address."""
    lines = []
    for name, address, public in entries:
        key_type, key = public.split()[:2]
        lines.append(f"{name},{address} {key_type} {key}")
    path.write_text("\n".join(lines) + "\n")


def ssh_options(key: Path, known_hosts: Path) -> list[str]:
    """The options every SSH connection to a node uses: this key only, strict host keys."""
    return [
        "-i",
        str(key),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "ConnectTimeout=5",
    ]
