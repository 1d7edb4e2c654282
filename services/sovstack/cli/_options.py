"""Options several command groups share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["root_option", "state_dir_option"]

root_option = click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Project root (default: the checkout around the current directory).",
)


def state_dir_option(help_: str) -> Callable[[Any], Any]:
    """``--state-dir``: where a command keeps what it makes; ``help_`` says what and where."""
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=help_,
    )
