"""What a finished deploy leaves the controller: ``.sovstack/deploy.json`` and a copy of each log.

The service roles write what they know into ``.sovstack/deploy.d/*.json``
(see roles/README.md); this module joins them into ``deploy.json``, with the
same keys as ``make dev``'s ``dev.json`` plus ``prometheus_url``, created 0600
(it holds the demo clients' secrets). ``audit_dir`` is where the controller
keeps a copy of the (first) gateway's audit folder, pulled the way the witness
pulls it (rsync over SSH with the read-only pull key), so that
``sovstack audit verify`` can check it here: one log, or with ``workers: N``
one log per worker process in ``worker-<i>/`` (see :mod:`sovstack.audit.logset`).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from sovstack.core import keyfiles
from sovstack.deploy.errors import DeployError

__all__ = ["PULL_PASSES", "pull_log", "rsync_argvs", "write_deploy_json"]

Echo = Callable[[str], None]


def _load(folder: Path, name: str) -> Any:
    try:
        return json.loads((folder / f"{name}.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DeployError(f"{folder / name}.json is unreadable ({exc}): deploy again") from exc


# Checkpoints first, so that the entries copied after them cover at least what
# they sign. The first pass takes every folder (each worker's log) and only the
# checkpoints files in them; the second takes everything but checkpoints (a
# pattern without a '/' matches at every depth). --delete removes only what the
# gateway no longer has, and never a file its own pass excludes: neither pass
# removes what the other copied.
PULL_PASSES: Final = (
    ("--include=*/", "--include=checkpoints", "--exclude=*"),
    ("--exclude=checkpoints",),
)


def rsync_argvs(source: str, into: Path, rsh: str | None = None) -> list[list[str]]:
    """The rsync commands, in order, that make ``into`` a copy of the audit folder ``source``.

    ``source`` ends with '/' (its contents); ``rsh`` is the remote shell for a
    ``user@host:`` source, None for a local one. The copy takes contents and
    times, not modes (the gateway's folders are setgid).
    """
    shell = [] if rsh is None else ["-e", rsh]
    return [["rsync", "-rt", "--delete", *shell, *p, source, f"{into}/"] for p in PULL_PASSES]


def pull_log(gateway: dict[str, Any], address: str, into: Path, known_hosts: Path | None) -> Path:
    """Copy one gateway's audit folder into ``into``: its log, or every worker's log.

    Checkpoints first, as the witness pulls (:data:`PULL_PASSES`). Raises
    :class:`DeployError` with rsync's message when a pass fails.
    """
    into.mkdir(parents=True, exist_ok=True)
    ssh = [
        "ssh", "-i", str(gateway["audit_pull_key"]), "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10",
    ]  # fmt: skip
    if known_hosts is not None:
        ssh += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null"]
    source = f"{gateway['audit_pull_user']}@{address}:./"
    for argv in rsync_argvs(source, into, " ".join(ssh)):
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise DeployError(
                f"copying {gateway['host']}'s audit log from {address} failed: "
                f"{done.stderr.strip()[-500:]}"
            )
    return into


def write_deploy_json(
    state: Path, addresses: dict[str, str], known_hosts: Path | None, echo: Echo
) -> Path | None:
    """Write ``state/deploy.json`` from ``state/deploy.d``; None when no gateway was deployed."""
    parts = state / "deploy.d"
    gateways = _load(parts, "gateway")
    if not gateways or not gateways.get("gateways"):
        return None
    keycloak = _load(parts, "keycloak") or {}
    replicas = _load(parts, "vllm") or []
    prometheus = _load(parts, "prometheus") or {}
    first = gateways["gateways"][0]
    audit_dir: str | None = None
    try:
        copy = pull_log(
            first,
            addresses.get(first["host"], first["host"]),
            state / "deploy" / "audit" / first["host"],
            known_hosts,
        )
        audit_dir = str(copy)
    except DeployError as exc:
        echo(f"    note: {exc}; deploy.json says audit_dir: null")
    info = {
        "gateway_url": first["url"],
        "ca_file": str(state / "site-pki" / "ca.pem"),
        "keycloak": {k: keycloak.get(k) for k in ("issuer", "token_url", "realm", "server_url")},
        "clients": [
            {k: c.get(k) for k in ("client_id", "client_secret", "roles", "site")}
            for c in keycloak.get("clients", [])
        ],
        "opa_url": None,  # OPA answers on a Unix socket on each gateway node (/run/opa/opa.sock)
        "vllm": [{"url": r["url"], "model": r["model"]} for r in replicas],
        "audit_dir": audit_dir,
        "prometheus_url": prometheus.get("prometheus_url"),
    }
    out = state / "deploy.json"
    data = (json.dumps(info, indent=2, sort_keys=False) + "\n").encode()
    keyfiles.write_private(out, data, overwrite=True)
    return out
