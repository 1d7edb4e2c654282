"""``sovstack policy``: check, sign and bundle the Rego policies; the control catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from sovstack.cli._errors import friendly
from sovstack.cli._options import root_option
from sovstack.core.errors import SovstackError
from sovstack.core.paths import Paths, find_root
from sovstack.policy import PolicyError, bundle, checks, controls, keys
from sovstack.policy.tree import PolicyTree

__all__ = ["policy"]

_root = root_option
# What a policy command reports as a message, not a traceback.
_friendly = friendly(SovstackError)


def _paths(root: Path | None) -> Paths:
    return Paths(root or find_root())


@click.group()
def policy() -> None:
    """The Rego policies in policies/: check them, sign them into a bundle, map them to controls."""


@policy.command("test")
@_root
@_friendly
def test_(root: Path | None) -> None:
    """Run every policy check ('make policy-test').

    opa fmt, opa check --strict, regal lint, opa test with 100% coverage, and
    the control catalogue (every automated control names checks that exist),
    all with the pinned real binaries in .cache/.
    """
    checks.run_all(_paths(root), click.echo)
    click.echo("all policy checks passed")


@policy.command()
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write the key pair; somewhere kept and backed up, not a build folder.",
)
@click.option("--force", is_flag=True, help="Replace an existing key pair.")
@_friendly
def keygen(out_dir: Path, force: bool) -> None:
    """Make the ES256 key pair that signs the policy bundle.

    The private key (policy-signing.key, owner-only) stays with whoever
    approves policy changes; OPA on the nodes gets the public key
    (policy-signing.pub) only. 'make dev' makes and uses its own development
    key; this one is for bundles that go to a site.
    """
    pair = keys.generate(out_dir, force=force)
    click.echo(f"private key  {pair.private}  (keep it off the nodes)")
    click.echo(f"public key   {pair.public}  (OPA verifies bundles with it)")


@policy.command("bundle")
@_root
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The private key to sign with (policy-signing.key from 'sovstack policy keygen').",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bundle to write (default: ROOT/.sovstack/policy-bundle.tar.gz).",
)
@_friendly
def bundle_(root: Path | None, signing_key: Path, out: Path | None) -> None:
    """Build the signed OPA bundle from policies/ (tests left out).

    Its revision is the sovstack version plus a hash of its content. The
    policy data is checked for consistency first.
    """
    paths = _paths(root)
    built = bundle.build(paths, signing_key, out or paths.state / "policy-bundle.tar.gz")
    click.echo(f"bundle    {built.path}")
    click.echo(f"revision  {built.revision}")
    click.echo(f"roots     {', '.join(built.roots)}")


@policy.command("controls")
@_root
@_friendly
def controls_(root: Path | None) -> None:
    """List the compliance controls, their status and checks; fail if a check does not exist."""
    paths = _paths(root)
    tree = PolicyTree(paths.policies)
    catalogue = controls.load(tree.controls_dir)
    for framework in catalogue.frameworks:
        click.echo(f"{framework.title} ({framework.id})")
        for control in (c for c in catalogue.controls if c.framework == framework.id):
            click.echo(f"  {control.id:8} {control.status:14} {control.title}")
            for check in control.checks:
                click.echo(f"  {'':8} {'':14}   {check}")
    problems = controls.problems(catalogue, controls.existing_checks(paths, tree))
    if problems:
        raise PolicyError("the control catalogue is inconsistent:\n" + "\n".join(problems))
