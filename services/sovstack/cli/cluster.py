"""``sovstack cluster``: the local isolated cluster of systemd nodes (``make cluster-test``)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sovstack.cli._errors import friendly
from sovstack.cli._options import root_option, state_dir_option
from sovstack.cluster import image, lifecycle
from sovstack.core.errors import SovstackError
from sovstack.core.paths import Paths, find_root

__all__ = ["cluster"]

_root = root_option
_state = state_dir_option(
    "Where the cluster keeps its record, keys, node layers and consoles "
    "(default: ROOT/.sovstack/cluster, where inventory/local expects the keys)."
)


def _where(root: Path | None, state_dir: Path | None) -> lifecycle.Where:
    paths = Paths(root or find_root())
    state = state_dir.resolve() if state_dir else paths.state / "cluster"
    return lifecycle.Where(state=state, cache=paths.cache.resolve())


@click.group()
def cluster() -> None:
    """The local isolated cluster: systemd nodes on a private network, on this host.

    One systemd-nspawn container per host of inventory/local, each in its own
    network namespace on a private bridge with no default route, reached over
    SSH with a key made for the cluster. Needs root and Linux.
    """


@cluster.command()
@_root
@_state
@click.option(
    "--inventory",
    "inventory_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Ansible inventory folder naming the nodes and the network "
    "[default: ROOT/inventory/local].",
)
@click.option(
    "--mirror",
    default=image.DEFAULT_MIRROR,
    show_default=True,
    help="Debian package repository debootstrap builds the root image from (first run only).",
)
@friendly(SovstackError)
def up(root: Path | None, state_dir: Path | None, inventory_dir: Path | None, mirror: str) -> None:
    """Build (once) the nodes' Debian 12 image, boot every node, wait until each is ready."""
    project = Paths(root or find_root()).root
    where = _where(root, state_dir)
    inventory_dir = (inventory_dir or project / "inventory/local").resolve()
    record = lifecycle.up(where, inventory_dir, mirror, click.echo)
    info = record.info
    click.echo("")
    for node in info["nodes"]:
        click.echo(f"  {node['name']:12} {node['address']}")
    click.echo("")
    click.echo("Try:")
    if inventory_dir == (project / "inventory/local").resolve() and state_dir is None:
        # The inventory names the key by a path relative to the project root.
        click.echo(
            f"  cd {project} && .venv/bin/ansible all -m ansible.builtin.ping -i inventory/local"
        )
    click.echo(f"  sovstack cluster ssh {info['nodes'][0]['name']}")
    click.echo("  sovstack cluster down")


@cluster.command()
@_root
@_state
@friendly(SovstackError)
def down(root: Path | None, state_dir: Path | None) -> None:
    """Remove everything 'up' made (nodes, namespaces, veths, bridge, mounts), and nothing else.

    Also cleans up after a crash or a half-finished 'up'; a second 'down' is harmless.
    """
    removed = lifecycle.down(_where(root, state_dir), click.echo)
    if removed:
        click.echo(f"the cluster is down: removed {removed} object(s)")


@cluster.command()
@_root
@_state
@friendly(SovstackError)
def status(root: Path | None, state_dir: Path | None) -> None:
    """Show each node, its address, whether it runs and what its systemd reports."""
    found = lifecycle.status(_where(root, state_dir))
    if found is None:
        click.echo("the local cluster is not up ('sovstack cluster up' starts it)")
        return
    info, rows = found
    click.echo(
        f"cluster {info['name']}: bridge {info['bridge']} {info['network']}, "
        f"control host {info['host_address']}"
        + ("" if info.get("ready") else " (not ready: 'up' did not finish)")
    )
    for row in rows:
        click.echo(f"  {row['name']:12} {row['address']:15} {row['process']:14} {row['systemd']}")


@cluster.command(context_settings={"ignore_unknown_options": True})
@_root
@_state
@click.argument("node")
@click.argument("ssh_args", nargs=-1, type=click.UNPROCESSED)
@friendly(SovstackError)
def ssh(root: Path | None, state_dir: Path | None, node: str, ssh_args: tuple[str, ...]) -> None:
    """Log in to NODE over SSH as the cluster user, with the cluster's key.

    Words after NODE (put them after --) are a command to run there instead
    of a login shell: sovstack cluster ssh gateway -- systemctl status ssh
    """
    argv = lifecycle.ssh_argv(_where(root, state_dir), node, list(ssh_args))
    os.execvp(argv[0], argv)  # noqa: S606 -- replaces this process with ssh, argv is ours


@cluster.command(name="exec", context_settings={"ignore_unknown_options": True})
@_root
@_state
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@friendly(SovstackError)
def exec_(root: Path | None, state_dir: Path | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND as root inside NODE, without SSH: sovstack cluster exec NODE -- CMD ...

    The exit status is COMMAND's.
    """
    where = _where(root, state_dir)
    argv = lifecycle.exec_argv(where, node, list(command), os.environ.get("TERM"))
    os.execvp(argv[0], argv)  # noqa: S606 -- replaces this process with nsenter, argv is ours
