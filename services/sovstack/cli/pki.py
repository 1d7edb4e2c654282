"""``sovstack pki``: the site CA and the server certificates it issues."""

from __future__ import annotations

from pathlib import Path

import click

from sovstack.pki import PkiError, init_ca, issue

__all__ = ["pki"]

_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("pki"),
    show_default=True,
    help="Folder of the site CA and the certificates it issued.",
)


@click.group()
def pki() -> None:
    """Make a site CA and issue server certificates from it (keys are 0600)."""


@pki.command("init")
@_dir
@click.option("--name", default="sovstack site CA", show_default=True, help="CA common name.")
def init_cmd(directory: Path, name: str) -> None:
    """Create the site CA: DIR/ca.pem and DIR/ca.key."""
    try:
        cert = init_ca(directory, name)
    except PkiError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"site CA written to {cert} (key {directory / 'ca.key'}, mode 0600)")


@pki.command("issue")
@click.argument("name")
@click.option("--san", "sans", multiple=True, help="DNS name or IP address (repeatable).")
@click.option("--days", default=397, show_default=True, help="Validity in days.")
@_dir
@click.option("--force", is_flag=True, help="Replace an existing NAME.key and NAME.pem.")
def issue_cmd(name: str, sans: tuple[str, ...], days: int, directory: Path, force: bool) -> None:
    """Issue a server certificate NAME.pem / NAME.key signed by the site CA."""
    try:
        cert, key = issue(directory, name, list(sans), days, overwrite=force)
    except PkiError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"issued {cert} (key {key}, mode 0600) for {', '.join(sans)}")
