"""A node: its root (an overlay on the cached image), its boot under systemd-nspawn, its state.

Each node boots with ``systemd-nspawn --boot --register=no --keep-unit
--network-namespace-path=/run/netns/NAME`` (the host has no system D-Bus to
register with), in a control group of its own, from an overlay whose upper
layer lives in the state folder, so the image stays untouched. Its console
goes to a log file. Commands run inside a node through ``nsenter`` into its
init process, which works before SSH does: that is how ``up`` waits for
``systemctl is-system-running`` and how ``cluster exec`` works.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from sovstack.cluster.commands import ClusterError, run, try_run
from sovstack.cluster.network import NETNS_DIR

__all__ = [
    "NodeDirs",
    "alive",
    "boot",
    "in_node",
    "leader",
    "mount_overlay",
    "personalize",
    "start_time",
    "system_state",
]

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class NodeDirs:
    """A node's folders: the overlay's upper and work layers, and where its root is mounted."""

    base: Path

    @property
    def upper(self) -> Path:
        return self.base / "upper"

    @property
    def work(self) -> Path:
        return self.base / "work"

    @property
    def root(self) -> Path:
        return self.base / "root"


def mount_overlay(image: Path, dirs: NodeDirs) -> None:
    for path in (image, dirs.base):
        if any(c in str(path) for c in ",:\n"):
            raise ClusterError(f"{path} holds a ',' or ':', which an overlay mount cannot take")
    for folder in (dirs.upper, dirs.work, dirs.root):
        folder.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={image},upperdir={dirs.upper},workdir={dirs.work}"
    run(["mount", "-t", "overlay", "overlay", "-o", options, str(dirs.root)])


def _owner(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise ClusterError(f"the image has no user {user!r}; set ansible_user to the image's user")


def personalize(
    root: Path, name: str, hosts: list[tuple[str, str]], user: str, authorized_key: str
) -> str:
    """Give a node its host name, machine id, /etc/hosts, host key and authorized key.

    Returns the node's public host key line.
    """
    (root / "etc/hostname").write_text(f"{name}\n")
    (root / "etc/machine-id").write_text(f"{uuid.uuid4().hex}\n")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{address}\t{host}" for host, address in hosts]
    (root / "etc/hosts").write_text("\n".join(lines) + "\n")
    host_key = root / "etc/ssh/ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}", "-f", str(host_key)])
    uid, gid = _owner(root, user)
    ssh_dir = root / "home" / user / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(authorized_key + "\n")
    (ssh_dir / "authorized_keys").chmod(0o600)
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, uid, gid)
    return host_key.with_suffix(".pub").read_text().strip()


# Moves itself into the node's control groups, then becomes systemd-nspawn.
_INTO_GROUPS = (
    'for g in $SOVSTACK_CGROUPS; do echo $$ > "$g/cgroup.procs" || exit 1; done; exec "$@"'
)


def boot(name: str, dirs: NodeDirs, netns: str, groups: list[Path], log: Path) -> int:
    """Start the node's systemd under nspawn in ``groups``; return nspawn's pid at once."""
    argv = [
        "systemd-nspawn",
        f"--directory={dirs.root}",
        "--boot",
        f"--machine={name}",
        "--register=no",
        "--keep-unit",
        f"--network-namespace-path={NETNS_DIR / netns}",
        "--console=read-only",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        # The node's own network namespace makes its firewall its own business:
        # nftables inside needs CAP_NET_ADMIN, and it reaches no other namespace.
        "--capability=CAP_NET_ADMIN",
    ]
    env = {**os.environ, "SOVSTACK_CGROUPS": " ".join(str(g) for g in groups)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", "-c", _INTO_GROUPS, "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The fields after the command name, which may itself hold spaces and parentheses.
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``: tells our process from a later one reusing its pid."""
    fields = _stat(pid)
    return fields[19] if fields else None


def alive(pid: int, started: str | None) -> bool:
    """Whether ``pid`` runs and is the process that started at ``started`` (zombies are dead)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z" and fields[19] == started


def leader(pid: int) -> int | None:
    """The node's init (nspawn's child), or None while it has none."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def in_node(init: int, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The argv that runs ``argv`` as root inside the node whose init is ``init``."""
    variables = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
    return [
        "nsenter",
        f"--target={init}",
        "--all",
        "--root",
        "--wd",
        "--",
        "env",
        "-i",
        *(f"{k}={v}" for k, v in variables.items()),
        *argv,
    ]


def system_state(init: int) -> str | None:
    """What ``systemctl is-system-running`` says inside the node, or None if it cannot be asked."""
    code, out = try_run(in_node(init, ["systemctl", "is-system-running"]), timeout=10)
    state = out.strip()
    return state if state and code != 127 else None
