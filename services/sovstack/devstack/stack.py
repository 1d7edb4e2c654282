"""``make dev`` and ``make dev-down``: the whole request path on this machine.

``up`` starts OPA, Keycloak and vLLM on loopback, waits until each answers,
and writes ``.sovstack/dev.json`` (the endpoints and demo credentials, the
contract other tools and people read). It records what it started, with each
process's start time, in ``.sovstack/run.json``; ``down`` stops exactly those
processes and nothing else, even after a crash or a half-finished ``up``.
OPA's API is on ``.sovstack/opa.sock`` (where the gateway asks it), its
port on loopback serving /health and /metrics only; where the state folder's
path is too long for a socket, the API is on that port instead.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sovstack.components import launches
from sovstack.core import keyfiles, services
from sovstack.core.errors import ComponentError
from sovstack.core.paths import Paths
from sovstack.core.progress import Echo
from sovstack.core.services import Launch, Running
from sovstack.devstack import realm
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.gateway.endpoints import SUN_PATH_MAX
from sovstack.policy import serve as policy_serve

__all__ = ["DevPorts", "dev_json", "down", "opa_socket", "status", "up"]


# The dev stack's one vLLM replica, as the demo policy data declares it
# (policies/data/models.json): the policy refuses replicas it does not know.
DEV_REPLICA = "gpu-1"
DEV_SITE = "plant-a"


@dataclass(frozen=True)
class DevPorts:
    opa: int = 8181
    keycloak: int = 8180
    keycloak_management: int = 9180
    vllm: int = 8100
    gateway: int = 8443


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``: tells our process from a later one reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, counted after the command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _run_file(paths: Paths) -> Path:
    return paths.state / "run.json"


def dev_json(paths: Paths) -> Path:
    return paths.state / "dev.json"


def _record(paths: Paths, started: list[Running]) -> None:
    entries = [
        {"name": r.launch.name, "pid": r.pid, "start_time": _start_time(r.pid), "log": str(r.log)}
        for r in started
    ]
    _run_file(paths).write_text(json.dumps(entries, indent=2) + "\n")


def _recorded(paths: Paths) -> list[dict[str, Any]]:
    try:
        entries: list[dict[str, Any]] = json.loads(_run_file(paths).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ComponentError(
            f"{_run_file(paths)} is unreadable ({exc}); remove it by hand"
        ) from exc
    return entries


def _ours(entry: dict[str, Any]) -> bool:
    pid = int(entry["pid"])
    return services.alive(pid) and _start_time(pid) == entry["start_time"]


def status(paths: Paths) -> list[tuple[str, int, bool]]:
    """(name, pid, running) for each process the last ``up`` started."""
    return [(e["name"], int(e["pid"]), _ours(e)) for e in _recorded(paths)]


def up(paths: Paths, echo: Echo, ports: DevPorts | None = None) -> dict[str, Any]:
    """Start the stack, wait until every component is ready, write dev.json and return it."""
    ports = ports or DevPorts()
    if any(running for _, _, running in status(paths)):
        raise ComponentError("the dev stack is already running: 'make dev-down' stops it")
    for name, port in vars(ports).items():
        if services.port_in_use(port):
            raise ComponentError(
                f"port {port} (for {name}) on 127.0.0.1 is already in use; "
                "stop what holds it, or run 'make dev-down' if it is an old dev stack"
            )
    paths.state.mkdir(parents=True, exist_ok=True)
    clients = realm.demo_clients()
    socket = opa_socket(paths, echo)
    to_start: list[Launch] = [
        policy_serve.dev_opa(paths, ports.opa, echo, socket),  # the signed bundle, verified
        launches.keycloak(
            paths,
            ports.keycloak,
            ports.keycloak_management,
            paths.state / "keycloak",
            realm.render_realm(paths.realm_template, clients),
            realm.REALM,
        ),
        launches.vllm(paths, ports.vllm),
    ]
    started: list[Running] = []
    info = _describe(paths, ports, clients, socket)
    try:
        _start_all(paths, to_start, started, echo)
        files = prepare_gateway(
            paths.state, ports.gateway, info["keycloak"]["issuer"], info["opa_url"],
            [{"id": DEV_REPLICA, "model": r["model"], "url": r["url"], "site": DEV_SITE,
              "jurisdiction": "DE", "hosting": "on-prem"} for r in info["vllm"]],
        )  # fmt: skip
        _start_all(paths, [launches.gateway(paths, ports.gateway, files.config, files.ca_file)],
                   started, echo)  # fmt: skip
    except BaseException:
        for running in started:
            services.stop(running.pid)
        _run_file(paths).unlink(missing_ok=True)
        raise
    info["ca_file"] = str(files.ca_file)
    # It holds the demo client secrets: 0600 from its creation.
    keyfiles.write_private(
        dev_json(paths), (json.dumps(info, indent=2) + "\n").encode(), overwrite=True
    )
    return info


def _start_all(paths: Paths, launches: list[Launch], started: list[Running], echo: Echo) -> None:
    """Start each launch, record it at once (so 'down' can clean up a crashed 'up'), wait."""
    logs = paths.state / "logs"
    t0 = time.monotonic()
    batch: list[Running] = []
    for launch in launches:
        log = logs / f"{launch.name}.log"
        log.unlink(missing_ok=True)
        batch.append(services.start(launch, log))
        started.append(batch[-1])
        _record(paths, started)
        echo(f"started {launch.name} (pid {batch[-1].pid}), log: {log}")
    for running in batch:
        echo(f"waiting for {running.launch.name} at {running.launch.ready_url} ...")
        services.wait_ready(running)
        echo(f"{running.launch.name} is ready ({time.monotonic() - t0:.0f}s)")


def opa_socket(paths: Paths, echo: Echo) -> Path | None:
    """Where the dev OPA serves its API: ``<state>/opa.sock``, as the opa role serves it.

    None (OPA's API on loopback TCP instead, and a line saying so) when that
    path is longer than a Unix socket's address can hold.
    """
    socket = paths.state.resolve() / "opa.sock"
    if len(os.fsencode(socket)) > SUN_PATH_MAX:
        echo(
            f"{socket} is longer than a Unix socket path may be ({SUN_PATH_MAX} bytes): "
            "OPA's API is on 127.0.0.1 instead"
        )
        return None
    return socket


def _describe(
    paths: Paths, ports: DevPorts, clients: list[realm.DemoClient], socket: Path | None
) -> dict[str, Any]:
    issuer = f"http://127.0.0.1:{ports.keycloak}/realms/{realm.REALM}"
    return {
        "gateway_url": f"https://127.0.0.1:{ports.gateway}",
        "ca_file": None,  # set once the site CA exists
        "keycloak": {
            "issuer": issuer,
            "token_url": f"{issuer}/protocol/openid-connect/token",
            "realm": realm.REALM,
            "server_url": f"http://127.0.0.1:{ports.keycloak}",
        },
        "clients": [
            {
                "client_id": c.client_id,
                "client_secret": c.client_secret,
                "roles": list(c.roles),
                "site": c.site,
            }
            for c in clients
        ],
        "opa_url": f"unix://{socket}" if socket else f"http://127.0.0.1:{ports.opa}",
        "vllm": [{"url": f"http://127.0.0.1:{ports.vllm}", "model": launches.VLLM_MODEL_NAME}],
        "audit_dir": str(paths.state / "audit"),
    }


def down(paths: Paths, echo: Echo) -> int:
    """Stop every process the last ``up`` started and is still ours; return how many."""
    stopped = 0
    for entry in _recorded(paths):
        if _ours(entry):
            echo(f"stopping {entry['name']} (pid {entry['pid']})")
            services.stop(int(entry["pid"]))
            stopped += 1
        else:
            echo(f"{entry['name']} (pid {entry['pid']}) is no longer running")
    _run_file(paths).unlink(missing_ok=True)
    dev_json(paths).unlink(missing_ok=True)
    return stopped
