"""``cluster up``, ``down``, ``status``, and how ``ssh`` and ``exec`` reach a node.

``up`` checks everything it can before it creates anything (prerequisites,
inventory, free names and network), gets the cached image (building it the
first time), then creates the cluster's objects one by one, each noted in the
state record first; it boots every node at once and returns when each reports
``running`` and answers SSH with the cluster's key. If anything fails on the
way, it removes what it made before it reports the error. ``down`` removes
what the record lists.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovstack.cluster import cgroups, image, inventory, keys, mounts, network, nodes, prereqs
from sovstack.cluster.commands import ClusterError, try_run
from sovstack.cluster.record import Record
from sovstack.cluster.teardown import NSPAWN_RUN, teardown
from sovstack.core.progress import Echo

__all__ = ["Where", "down", "exec_argv", "ssh_argv", "status", "up"]


BOOT_TIMEOUT = 120.0
SSH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Where:
    """The cluster's state folder (record, keys, node layers, logs) and the image cache."""

    state: Path
    cache: Path

    @property
    def record(self) -> Path:
        return self.state / "state.json"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def key(self) -> Path:
        return self.state / keys.CLIENT_KEY

    @property
    def known_hosts(self) -> Path:
        return self.state / keys.KNOWN_HOSTS

    def node_dirs(self, name: str) -> nodes.NodeDirs:
        return nodes.NodeDirs(self.state / "nodes" / name)


def up(where: Where, inventory_dir: Path, mirror: str, echo: Echo) -> Record:
    """Make the cluster the inventory describes; return its record once every node is ready."""
    started = time.monotonic()
    prereqs.check(prereqs.RUN)
    spec = inventory.load(inventory_dir)
    Record.ensure_absent(where.record)
    names = [spec.bridge, *(spec.veth(i) for i in range(len(spec.nodes)))]
    network.check_free(spec.network, names, [spec.netns(n) for n in spec.nodes], str(inventory_dir))
    root_image = image.ensure(where.cache, mirror, echo)
    record = Record.start(where.record, _info(spec, where, inventory_dir, root_image))
    try:
        _create(spec, where, root_image, record, echo)
        _wait_running(record, echo)
        _wait_ssh(record, where, echo)
    except BaseException:
        echo("'cluster up' did not finish: removing what it made")
        try:
            teardown(record, echo)
        except ClusterError as exc:
            echo(str(exc))
        raise
    took = time.monotonic() - started
    record.update_info(ready=True, up_seconds=round(took, 1))
    echo(f"the cluster is up: {len(spec.nodes)} nodes in {took:.1f}s")
    return record


def _info(spec: inventory.ClusterSpec, where: Where, inv: Path, root_image: Path) -> dict[str, Any]:
    return {
        "name": spec.name,
        "inventory": str(inv),
        "image": str(root_image),
        "bridge": spec.bridge,
        "network": str(spec.network),
        "host_address": str(spec.host_address),
        "user": spec.user,
        "key": str(where.key),
        "known_hosts": str(where.known_hosts),
        "nodes": [
            {
                "name": n.name,
                "address": str(n.address),
                "netns": spec.netns(n),
                "veth": spec.veth(i),
                "log": str(where.logs / f"{n.name}.log"),
            }
            for i, n in enumerate(spec.nodes)
        ],
        "ready": False,
    }


def _create(
    spec: inventory.ClusterSpec, where: Where, root_image: Path, record: Record, echo: Echo
) -> None:
    if not NSPAWN_RUN.exists():
        # Noted first, so removed last: after what nspawn keeps in them.
        for folder in (NSPAWN_RUN, NSPAWN_RUN / "propagate", NSPAWN_RUN / "locks"):
            record.add("empty-dir", path=str(folder))
    record.add("tree", path=str(where.state / keys.SSH_DIR))
    public = keys.make_key(where.key, f"sovstack-cluster-{spec.name}")
    record.add(
        "run-netns",
        existed=network.NETNS_DIR.is_dir(),
        was_mounted=mounts.is_mounted(network.NETNS_DIR),
    )
    prefix = spec.network.prefixlen
    record.add("bridge", name=spec.bridge)
    network.add_bridge(spec.bridge, ipaddress.IPv4Interface(f"{spec.host_address}/{prefix}"))
    echo(f"network: bridge {spec.bridge} with {spec.host_address}/{prefix}, no route beyond it")
    hosts = [(n.name, str(n.address)) for n in spec.nodes]
    record.add("empty-dir", path=str(where.state / "nodes"))
    host_keys: list[tuple[str, str, str]] = []
    for i, node in enumerate(spec.nodes):
        netns = spec.netns(node)
        record.add("netns", name=netns)
        network.add_netns(netns)
        record.add("veth", name=spec.veth(i))
        network.add_veth(
            spec.veth(i), netns, spec.bridge, ipaddress.IPv4Interface(f"{node.address}/{prefix}")
        )
        dirs = where.node_dirs(node.name)
        record.add("tree", path=str(dirs.base))
        dirs.base.mkdir(parents=True, exist_ok=True)
        record.add("mount", path=str(dirs.root))
        nodes.mount_overlay(root_image, dirs)
        # nspawn locks the root by its inode, and leaves the lock file if it is killed.
        st = dirs.root.stat()
        record.add("file", path=str(NSPAWN_RUN / "locks" / f"inode-{st.st_dev}:{st.st_ino}"))
        host_key = nodes.personalize(dirs.root, node.name, hosts, spec.user, public)
        host_keys.append((node.name, str(node.address), host_key))
        for group in cgroups.paths_for(f"{spec.name}-{node.name}"):
            record.add("cgroup", path=str(group))
            group.mkdir()
        echo(f"node {node.name}: {node.address} in namespace {netns}, root {dirs.root}")
    keys.write_known_hosts(where.known_hosts, host_keys)
    where.logs.mkdir(parents=True, exist_ok=True)
    for node in spec.nodes:
        netns = spec.netns(node)
        groups = cgroups.paths_for(f"{spec.name}-{node.name}")
        record.add("nspawn-machine", name=node.name)
        log = where.logs / f"{node.name}.log"
        pid = nodes.boot(node.name, where.node_dirs(node.name), netns, groups, log)
        record.add("process", node=node.name, pid=pid, start_time=nodes.start_time(pid))
    echo(f"booting {len(spec.nodes)} nodes (consoles in {where.logs})")


def _tail(log: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console log)"


def _processes(record: Record) -> dict[str, tuple[int, str]]:
    return {
        r["node"]: (int(r["pid"]), r["start_time"])
        for r in record.resources
        if r["kind"] == "process"
    }


def _wait_running(record: Record, echo: Echo) -> None:
    logs = {n["name"]: n["log"] for n in record.info["nodes"]}
    pending = _processes(record)
    t0 = time.monotonic()
    while pending:
        for name, (pid, started) in list(pending.items()):
            if not nodes.alive(pid, started):
                raise ClusterError(
                    f"node {name} stopped while it booted; its console ({logs[name]}) ends:\n"
                    + _tail(logs[name])
                )
            init = nodes.leader(pid)
            state = nodes.system_state(init) if init else None
            if state == "running":
                echo(f"    {name}: running ({time.monotonic() - t0:.1f}s)")
                del pending[name]
            elif state in ("degraded", "maintenance", "stopping") and init:
                _, failed = try_run(nodes.in_node(init, ["systemctl", "--failed", "--plain"]))
                raise ClusterError(f"node {name} booted {state}:\n{failed.strip()}")
        if pending and time.monotonic() - t0 > BOOT_TIMEOUT:
            name = next(iter(pending))
            raise ClusterError(
                f"node {name} was not running after {BOOT_TIMEOUT:.0f}s; its console "
                f"({logs[name]}) ends:\n{_tail(logs[name])}"
            )
        time.sleep(0.3)


def _ssh_base(info: dict[str, Any]) -> list[str]:
    return ["ssh", *keys.ssh_options(Path(info["key"]), Path(info["known_hosts"]))]


def _wait_ssh(record: Record, where: Where, echo: Echo) -> None:
    for node in record.info["nodes"]:
        deadline = time.monotonic() + SSH_TIMEOUT
        target = f"{record.info['user']}@{node['address']}"
        argv = [*_ssh_base(record.info), "-o", "BatchMode=yes", target, "true"]
        while try_run(argv, timeout=15)[0] != 0:
            if time.monotonic() > deadline:
                code, _ = try_run(argv, timeout=15)
                raise ClusterError(
                    f"node {node['name']} does not answer SSH at {target} with {where.key} "
                    f"(ssh exit {code}) after {SSH_TIMEOUT:.0f}s"
                )
            time.sleep(0.5)
    echo(f"    SSH answers on every node as {record.info['user']}, host keys checked")


def down(where: Where, echo: Echo) -> int:
    """Remove everything the record lists; return how many objects; 0 if there is no cluster."""
    record = Record.load(where.record)
    if record is None:
        echo(f"no cluster to remove (no record at {where.record})")
        return 0
    prereqs.check(prereqs.RUN)
    return teardown(record, echo)


def _running_record(where: Where) -> Record:
    record = Record.load(where.record)
    if record is None:
        raise ClusterError("the local cluster is not up: 'sovstack cluster up' starts it")
    return record


def status(where: Where) -> tuple[dict[str, Any], list[dict[str, str]]] | None:
    """The cluster's description and, per node, whether it runs and what systemd says; or None."""
    record = Record.load(where.record)
    if record is None:
        return None
    procs = _processes(record)
    rows = []
    for node in record.info.get("nodes", []):
        pid, started = procs.get(node["name"], (0, None))
        running = bool(pid) and nodes.alive(pid, started)
        init = nodes.leader(pid) if running else None
        state = (nodes.system_state(init) if init else None) or "-"
        rows.append(
            {
                "name": node["name"],
                "address": node["address"],
                "process": f"pid {pid}" if running else "not running",
                "systemd": state,
            }
        )
    return record.info, rows


def ssh_argv(where: Where, name: str, args: list[str]) -> list[str]:
    """The ssh command line that logs in to node ``name`` as the cluster user."""
    info = _running_record(where).info
    node = _find(info, name)
    return [*_ssh_base(info), f"{info['user']}@{node['address']}", *args]


def exec_argv(where: Where, name: str, command: list[str], term: str | None) -> list[str]:
    """The command line that runs ``command`` as root inside node ``name`` (no SSH needed)."""
    record = _running_record(where)
    _find(record.info, name)
    pid, started = _processes(record).get(name, (0, None))
    init = nodes.leader(pid) if pid and nodes.alive(pid, started) else None
    if init is None:
        raise ClusterError(f"node {name} is not running: 'sovstack cluster status' shows the nodes")
    prereqs.check(prereqs.RUN)
    return nodes.in_node(init, command, {"TERM": term} if term else None)


def _find(info: dict[str, Any], name: str) -> dict[str, Any]:
    for node in info.get("nodes", []):
        if node["name"] == name:
            return dict(node)
    names = ", ".join(n["name"] for n in info.get("nodes", []))
    raise ClusterError(f"no node named {name!r}: the nodes are {names}")
