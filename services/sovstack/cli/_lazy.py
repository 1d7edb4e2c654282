"""A click group whose commands are imported only when used, each needing one extra.

An install with one extra (the gateway's nodes install ``sovstack[gateway]``)
then runs its own commands without the others' dependencies; a command whose
dependencies are missing says which extra brings them.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = ["LazyGroup"]


def _not_installed(name: str, extra: str, missing: str) -> click.Command:
    message = f"'sovstack {name}' needs {missing}: pip install 'sovstack[{extra}]'"

    def refuse(**_: Any) -> None:
        raise click.UsageError(message)

    return click.Command(
        name, callback=refuse, help=f"(not installed: needs sovstack[{extra}])",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )  # fmt: skip


class LazyGroup(click.Group):
    """``lazy``: command name -> (its module, which defines it by that name; the extra it needs)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, extra = self.lazy[cmd_name]
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("sovstack"):
                raise  # our own code missing is a bug, not an extra left out
            return _not_installed(cmd_name, extra, exc.name or str(exc))
        command: click.Command = getattr(loaded, cmd_name)
        return command
