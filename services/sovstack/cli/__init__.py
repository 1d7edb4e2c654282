"""The ``sovstack`` command line.

Each subcommand group lives in its own module and is imported only when it is
used, so that an install with one extra (the gateway's nodes install
``sovstack[gateway]``) runs its own commands without the others'
dependencies; a group whose dependencies are missing says which extra brings
them. Errors a user can act on are raised as :class:`click.ClickException`
(or a ``SovstackError``) and printed as one clear message, never a stack trace.
"""

from __future__ import annotations

import click

from sovstack import __version__
from sovstack.cli._lazy import LazyGroup

__all__ = ["cli", "main"]

# Group name -> (its module, the extra that brings what it needs).
GROUPS: dict[str, tuple[str, str]] = {
    "audit": ("sovstack.cli.audit", "gateway"),
    "bundle": ("sovstack.cli.bundle", "control"),
    "cluster": ("sovstack.cli.cluster", "build"),
    "deploy": ("sovstack.cli.deploy", "control"),
    "deps": ("sovstack.cli.deps", "build"),
    "dev": ("sovstack.cli.dev", "dev"),
    "gateway": ("sovstack.cli.gateway", "gateway"),
    "pki": ("sovstack.cli.pki", "gateway"),
    "policy": ("sovstack.cli.policy", "build"),
    "usage": ("sovstack.cli.usage", "gateway"),
}


@click.group(cls=LazyGroup, lazy=GROUPS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sovstack")
def cli() -> None:
    """sovstack: a sovereign AI stack in a box.

    vLLM on your own GPUs behind one authenticated, policy-checked, audited
    OpenAI-compatible gateway, deployed from a signed offline bundle.
    """


def main() -> None:
    cli()
