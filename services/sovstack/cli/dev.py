"""``sovstack dev``: the development stack on this machine (``make dev``)."""

from __future__ import annotations

from pathlib import Path

import click

from sovstack.cli._errors import friendly
from sovstack.cli._example import example_call
from sovstack.cli._options import root_option, state_dir_option
from sovstack.core.errors import SovstackError
from sovstack.core.paths import Paths, find_root
from sovstack.devstack import stack

__all__ = ["dev"]

_root = root_option
_state = state_dir_option(
    "Where the stack keeps dev.json, logs and its run record (default: ROOT/.sovstack)."
)


def _paths(root: Path | None, state_dir: Path | None) -> Paths:
    return Paths(root or find_root(), state_dir.resolve() if state_dir else None)


@click.group()
def dev() -> None:
    """Run the whole request path on this machine, on loopback."""


@dev.command()
@_root
@_state
@click.option("--opa-port", type=int, default=stack.DevPorts.opa, show_default=True)
@click.option("--keycloak-port", type=int, default=stack.DevPorts.keycloak, show_default=True)
@click.option(
    "--keycloak-management-port",
    type=int,
    default=stack.DevPorts.keycloak_management,
    show_default=True,
)
@click.option("--vllm-port", type=int, default=stack.DevPorts.vllm, show_default=True)
@click.option("--gateway-port", type=int, default=stack.DevPorts.gateway, show_default=True)
@friendly(SovstackError)
def up(
    root: Path | None,
    state_dir: Path | None,
    opa_port: int,
    keycloak_port: int,
    keycloak_management_port: int,
    vllm_port: int,
    gateway_port: int,
) -> None:
    """Start OPA, Keycloak, vLLM and the gateway; wait until each is healthy; write dev.json."""
    paths = _paths(root, state_dir)
    ports = stack.DevPorts(
        opa_port, keycloak_port, keycloak_management_port, vllm_port, gateway_port
    )
    info = stack.up(paths, click.echo, ports)
    click.echo("")
    click.echo("The dev stack is up (stop it with 'make dev-down'):")
    click.echo(f"  gateway          {info['gateway_url']}  (site CA {info['ca_file']})")
    click.echo(f"  keycloak issuer  {info['keycloak']['issuer']}")
    click.echo(f"  opa              {info['opa_url']}")
    for replica in info["vllm"]:
        click.echo(f"  vllm             {replica['url']}  (model {replica['model']})")
    click.echo(f"  clients          {', '.join(c['client_id'] for c in info['clients'])}")
    click.echo(f"  written to       {stack.dev_json(paths)}  (the client secrets; mode 0600)")
    click.echo("")
    click.echo("Try it:")
    click.echo(example_call(info, stack.dev_json(paths)))


@dev.command()
@_root
@_state
@friendly(SovstackError)
def down(root: Path | None, state_dir: Path | None) -> None:
    """Stop every process 'dev up' started, and nothing else."""
    stopped = stack.down(_paths(root, state_dir), click.echo)
    click.echo(f"stopped {stopped} process(es)")


@dev.command()
@_root
@_state
@friendly(SovstackError)
def status(root: Path | None, state_dir: Path | None) -> None:
    """Show which dev-stack processes are running."""
    rows = stack.status(_paths(root, state_dir))
    if not rows:
        click.echo("the dev stack is not running")
    for name, pid, running in rows:
        click.echo(f"{name:10} pid {pid:<8} {'running' if running else 'stopped'}")
