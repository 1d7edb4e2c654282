"""``sovstack deploy``: the stack onto the local cluster or a site's nodes (``make deploy``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sovstack.bundle.errors import BundleError
from sovstack.cli._errors import friendly
from sovstack.cli._example import example_call
from sovstack.cli._options import root_option
from sovstack.core.errors import ComponentError
from sovstack.core.paths import Paths, find_root
from sovstack.deploy import run as deploy_run
from sovstack.deploy.errors import DeployError, DeployUsageError

__all__ = ["deploy"]


@click.command("deploy", context_settings={"ignore_unknown_options": True})
@root_option
@click.option(
    "--inventory",
    type=click.Path(file_okay=False, path_type=Path),
    help="A site's Ansible inventory (copy inventory/example). Without it: the local cluster.",
)
@click.option(
    "--bundle",
    type=click.Path(path_type=Path),
    help="The site's bundle, a folder or its .tar (with --inventory).",
)
@click.option(
    "--pubkey",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The public key the bundle must be signed with (with --inventory).",
)
@click.option("--force", is_flag=True, help="Accept a bundle older than the one installed last.")
@click.argument("ansible_args", nargs=-1, type=click.UNPROCESSED)
@friendly(DeployError, BundleError, ComponentError, exit_code=1)
@friendly(DeployUsageError, exit_code=2)
def deploy(
    root: Path | None,
    inventory: Path | None,
    bundle: Path | None,
    pubkey: Path | None,
    force: bool,
    ansible_args: tuple[str, ...],
) -> None:
    """Deploy the stack from a verified offline bundle alone.

    With no --inventory, the embedded default: makes the signing keys if there
    are none (in .sovstack/keys/), builds a cpu bundle unless the last one was
    built from the same inputs, brings the local cluster up, then runs
    playbooks/site.yml on it. With --inventory, --bundle and --pubkey, deploys
    a real site and builds nothing. Either way the bundle verifies on this
    machine before any node is touched, and the inventory is checked against
    every role's argument spec first. ANSIBLE_ARGS (after --) go to
    ansible-playbook as given, e.g. `sovstack deploy -- --check --diff`.
    """
    paths = Paths(root or find_root())
    request = deploy_run.Request(inventory, bundle, pubkey, force, ansible_args)
    deploy_run.deploy(paths, request, click.echo)
    info_file = paths.state / "deploy.json"
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        if info.get("clients"):
            click.echo("")
            click.echo(f"Try it (the client secret is read from {info_file}, never typed):")
            click.echo(example_call(info, info_file))
