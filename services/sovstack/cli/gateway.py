"""``sovstack gateway``: serve the gateway."""

from __future__ import annotations

import os
from pathlib import Path

import click
from pydantic import ValidationError

from sovstack.gateway.config import CONFIG_FILE_ENV, get_settings

__all__ = ["gateway"]


def _explain(exc: ValidationError) -> str:
    lines = ["the gateway's settings are incomplete or wrong:"]
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        message = "missing" if error["type"] == "missing" else error["msg"]
        lines.append(f"  {field} (SOVSTACK_{field.split('.')[0].upper()}): {message}")
    return "\n".join(lines)


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="YAML settings file; SOVSTACK_* environment variables override it.",
)
def gateway(config_file: Path | None) -> None:
    """Serve the OpenAI-compatible gateway (HTTPS unless allow_plain_http on loopback).

    Settings: see sovstack/gateway/config.py; each is SOVSTACK_<NAME> in the
    environment or <name> in the YAML file. Required: oidc_issuer, opa_url,
    audit_dir, audit_signing_key, upstreams, and tls_cert/tls_key (or
    allow_plain_http=true on loopback).
    """
    if config_file is not None:
        os.environ[CONFIG_FILE_ENV] = str(config_file.resolve())
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise click.ClickException(_explain(exc)) from exc
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc

    # Imported late: --help and settings errors need none of the server.
    from sovstack.gateway.app import create_app
    from sovstack.gateway.server import serve

    try:
        serve(settings, create_app(settings))
    except OSError as exc:  # an address in use or not ours to bind
        raise click.ClickException(f"cannot listen: {exc}") from exc
