"""``sovstack gateway``: serve the gateway."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import click
from pydantic import ValidationError

from sovstack.gateway.config import CONFIG_FILE_ENV, Settings, get_settings

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

    Processes: 'workers' (default: one per core) worker processes share the
    listeners, each with its own audit log in audit_dir/worker-<i> and its
    key <audit_signing_key>.worker-<i> (made when missing); a worker that dies
    is restarted, and SIGHUP re-reads the settings and keys and replaces the
    workers one at a time, each after its requests in flight end. With
    workers: 1 the gateway is one process and SIGHUP is ignored.
    """
    if config_file is not None:
        os.environ[CONFIG_FILE_ENV] = str(config_file.resolve())
    try:
        settings = get_settings()
    except ValidationError as exc:
        raise click.ClickException(_explain(exc)) from exc
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc

    from sovstack.gateway.workers import check_layout

    count = settings.worker_count()
    try:
        check_layout(settings, count)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if count > 1:
        _supervise(settings, count)
        return
    # Imported late: --help and settings errors need none of the server.
    from sovstack.gateway.app import create_app
    from sovstack.gateway.server import serve

    # One process: a reload is a restart (the supervisor rolls workers; there is none).
    signal.signal(signal.SIGHUP, _reload_needs_workers)
    try:
        started = serve(settings, create_app(settings))
    except OSError as exc:  # an address in use or not ours to bind
        raise click.ClickException(f"cannot listen: {exc}") from exc
    if not started:
        raise click.ClickException("the gateway failed to start (its error is logged above)")


def _reload_needs_workers(signum: int, frame: object) -> None:
    logging.getLogger("uvicorn.error").warning(
        "SIGHUP ignored: with workers: 1 the gateway reloads its settings at a restart only"
    )


def _load() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def _supervise(settings: Settings, count: int) -> None:
    from sovstack.gateway.server import listeners
    from sovstack.gateway.workers import Supervisor, ensure_worker_keys

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s"
    )
    try:
        made = ensure_worker_keys(settings, count)
    except OSError as exc:
        raise click.ClickException(f"cannot make the workers' signing keys: {exc}") from exc
    for key in made:
        logging.getLogger("sovstack.gateway.workers").info("made signing key %s (and .pub)", key)
    try:
        sockets = listeners(settings)
    except OSError as exc:
        raise click.ClickException(f"cannot listen: {exc}") from exc
    try:
        status = Supervisor(settings, _load, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
    if status:
        raise click.ClickException("the gateway failed to start (a worker's error is logged above)")
