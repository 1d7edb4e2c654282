"""One deploy, phase by phase: inputs (bundle, cluster), the site playbook, what runs where."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sovstack.core.paths import Paths
from sovstack.deploy.ansible import Run, require_success, run_playbook
from sovstack.deploy.errors import DeployUsageError
from sovstack.deploy.inputs import Inputs, local_inputs, site_inputs
from sovstack.deploy.outputs import write_deploy_json
from sovstack.deploy.summary import roles_by_host

__all__ = ["Request", "deploy"]

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Request:
    """What the user asked for: the local cluster (no inventory), or a real site."""

    inventory: Path | None = None
    bundle: Path | None = None
    pubkey: Path | None = None
    force: bool = False
    ansible_args: tuple[str, ...] = ()


def _inputs(paths: Paths, request: Request, echo: Echo) -> Inputs:
    if request.inventory is None:
        return local_inputs(paths, echo)
    if request.bundle is None or request.pubkey is None:
        raise DeployUsageError(
            "a site's deploy needs its bundle and the public key that signed it: "
            "make deploy INVENTORY=inventory/<site> BUNDLE=<folder or .tar> BUNDLE_PUBKEY=<key.pub>"
        )
    return site_inputs(paths, request.inventory, request.bundle, request.pubkey, echo)


def deploy(paths: Paths, request: Request, echo: Echo) -> Run:
    """Deploy the site; raise DeployError (naming host, task and log) if any step fails."""
    inputs = _inputs(paths, request, echo)
    extra = {
        "sovstack_bundle_dir": str(inputs.bundle_dir.resolve()),
        "sovstack_bundle_pubkey": str(inputs.pubkey.resolve()),
        "sovstack_state_dir": str(paths.state.resolve()),
        "sovstack_cli": str(Path(sys.executable).parent / "sovstack"),
        "bundle_verify_force": request.force,
    }
    echo(f"==> ansible: playbooks/site.yml on {inputs.inventory}")
    run = run_playbook(
        paths.root,
        inputs.inventory,
        extra,
        paths.state / "deploy" / "logs",
        echo,
        request.ansible_args,
    )
    for recap in run.recap:
        echo(
            f"    {recap.host:14} ok={recap.ok} changed={recap.changed} "
            f"unreachable={recap.unreachable} failed={recap.failed}"
        )
    require_success(run)
    echo(f"==> done in {run.seconds:.0f}s, {run.changed} changed; what runs where:")
    where = roles_by_host(paths.root, inputs.inventory)
    for host, (address, roles) in where.items():
        echo(f"    {host:14} {address:15} {', '.join(roles)}")
    echo(f"    the whole output: {run.log}")
    known_hosts = (
        paths.state / "cluster" / "ssh" / "known_hosts" if request.inventory is None else None
    )
    written = write_deploy_json(
        paths.state, {h: a for h, (a, _) in where.items()}, known_hosts, echo
    )
    if written is not None:
        echo(f"==> {written} (0600): the gateway, Keycloak, the clients, vLLM, Prometheus")
    return run
