"""The ``sovstack`` command line.

Each subcommand group lives in its own module and is registered here. Errors
a user can act on are raised as :class:`click.ClickException` (or a
``SovstackError``) and printed as one clear message, never a stack trace.
"""

from __future__ import annotations

import click

from sovstack import __version__
from sovstack.cli.audit import audit
from sovstack.cli.bundle import bundle
from sovstack.cli.cluster import cluster
from sovstack.cli.deps import deps
from sovstack.cli.dev import dev
from sovstack.cli.gateway import gateway
from sovstack.cli.pki import pki
from sovstack.cli.policy import policy

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sovstack")
def cli() -> None:
    """sovstack: a sovereign AI stack in a box.

    vLLM on your own GPUs behind one authenticated, policy-checked, audited
    OpenAI-compatible gateway, deployed from a signed offline bundle.
    """


cli.add_command(audit)
cli.add_command(bundle)
cli.add_command(cluster)
cli.add_command(deps)
cli.add_command(dev)
cli.add_command(gateway)
cli.add_command(pki)
cli.add_command(policy)


def main() -> None:
    cli()
