"""The ``sovstack`` command line.

Each subcommand group lives in its own module and is imported only when it is
used, so that an install with one extra (the gateway's nodes install
``sovstack[gateway]``) runs its own commands without the others'
dependencies; a group whose dependencies are missing says which extra brings
them. Errors a user can act on are raised as :class:`click.ClickException`
(or a ``SovstackError``) and printed as one clear message, never a stack trace.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from sovstack import __version__

__all__ = ["cli", "main"]

# Group name -> (its module, the extra that brings what it needs).
GROUPS: dict[str, tuple[str, str]] = {
    "audit": ("sovstack.cli.audit", "gateway"),
    "bundle": ("sovstack.cli.bundle", "control"),
    "cluster": ("sovstack.cli.cluster", "build"),
    "deps": ("sovstack.cli.deps", "build"),
    "dev": ("sovstack.cli.dev", "dev"),
    "gateway": ("sovstack.cli.gateway", "gateway"),
    "pki": ("sovstack.cli.pki", "gateway"),
    "policy": ("sovstack.cli.policy", "build"),
}


def _not_installed(name: str, extra: str, missing: str) -> click.Command:
    message = f"'sovstack {name}' needs {missing}: pip install 'sovstack[{extra}]'"

    def refuse(**_: Any) -> None:
        raise click.UsageError(message)

    return click.Command(
        name, callback=refuse, help=f"(not installed: needs sovstack[{extra}])",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )  # fmt: skip


class _Groups(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(GROUPS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in GROUPS:
            return None
        module, extra = GROUPS[cmd_name]
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("sovstack"):
                raise  # our own code missing is a bug, not an extra left out
            return _not_installed(cmd_name, extra, exc.name or str(exc))
        command: click.Command = getattr(loaded, cmd_name)
        return command


@click.group(cls=_Groups, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sovstack")
def cli() -> None:
    """sovstack: a sovereign AI stack in a box.

    vLLM on your own GPUs behind one authenticated, policy-checked, audited
    OpenAI-compatible gateway, deployed from a signed offline bundle.
    """


def main() -> None:
    cli()
