"""What the gateway benches start, each stopped when the bench's ExitStack closes.

Keycloak (the demo realm), OPA (the signed policy bundle), the 20 ms stub,
vLLM (the tiny model, CPU) and gateways: a variant (bench/gateway_variant.py,
steps switched off) or the shipped entry point (``sovstack gateway``, for N
workers and for the code at a git ref, checked out with ``git worktree``).
All on loopback; the benches run them inside their network namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.core.services import Launch
from sovstack.devstack import realm
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.devstack.stack import DEV_REPLICA, DEV_SITE
from sovstack.policy import serve as policy_serve

__all__ = [
    "BENCH_SETTINGS", "CLIENT", "Core", "Gateway", "baseline_tree", "gateway", "known_settings",
    "start", "start_core", "stub", "token", "vllm",
]  # fmt: skip

BENCH = Path(__file__).resolve().parent
CLIENT = "line-monitor"
# The load comes from one client: no rate or in-flight limit of its own may cut it short
# (the in-flight one is the global default, 256; a baseline without it drops it).
# One process unless a row says otherwise ("all on, N workers"): each variant is
# the same process it always was, and the workers row is its own.
BENCH_SETTINGS: dict[str, Any] = {
    "workers": 1,
    "rate_limit_per_client": 1e9,
    "rate_limit_burst": 10**9,
    "max_in_flight_per_client": 256,
    "log_level": "warning",
}


def start(stack: ExitStack, launch: Launch, log: Path) -> services.Running:
    """Start ``launch`` (not waiting), stopped with ``stack``."""
    running = services.start(launch, log)
    stack.callback(services.stop, running.pid)
    return running


@dataclass(frozen=True)
class Core:
    keycloak: services.Running
    opa: services.Running
    issuer: str
    opa_url: str
    client: realm.DemoClient


def start_core(stack: ExitStack, paths: Paths, work: Path, echo: Any) -> Core:
    """Keycloak with the demo realm and OPA with the signed bundle (not waited for)."""
    clients = realm.demo_clients()
    kc_port, opa_port = services.free_port(), services.free_port()
    kc = start(stack, launches.keycloak(
        paths, kc_port, services.free_port(), work / "keycloak",
        realm.render_realm(paths.realm_template, clients), realm.REALM,
    ), work / "keycloak.log")  # fmt: skip
    opa = start(stack, policy_serve.dev_opa(paths, opa_port, echo), work / "opa.log")
    return Core(
        kc, opa, f"http://127.0.0.1:{kc_port}/realms/{realm.REALM}", f"http://127.0.0.1:{opa_port}",
        next(c for c in clients if c.client_id == CLIENT),
    )  # fmt: skip


def token(core: Core) -> str:
    """A fresh access token of the bench's client (client credentials)."""
    response = httpx.post(
        f"{core.issuer}/protocol/openid-connect/token", trust_env=False,
        data={"grant_type": "client_credentials", "client_id": core.client.client_id,
              "client_secret": core.client.client_secret},
    )  # fmt: skip
    response.raise_for_status()
    return str(response.json()["access_token"])


def stub(stack: ExitStack, work: Path, delay_ms: float = 20.0) -> tuple[services.Running, str]:
    """bench/stub_upstream.py (not waited for), and its URL."""
    port = services.free_port()
    running = start(stack, Launch(
        name="stub", port=port, ready_url=f"http://127.0.0.1:{port}/health",
        argv=[sys.executable, str(BENCH / "stub_upstream.py"), "--port", str(port),
              "--delay-ms", str(delay_ms)],
    ), work / "stub.log")  # fmt: skip
    return running, f"http://127.0.0.1:{port}"


def vllm(stack: ExitStack, paths: Paths, work: Path) -> tuple[services.Running, str]:
    """vLLM (CPU) serving the tiny model (not waited for), and its URL."""
    port = services.free_port()
    return start(stack, launches.vllm(paths, port), work / "vllm.log"), f"http://127.0.0.1:{port}"


def known_settings(env: dict[str, str] | None = None) -> set[str]:
    """The gateway settings that the code on ``PYTHONPATH`` (or this one) knows."""
    done = subprocess.run(
        [sys.executable, "-c", "import json; from sovstack.gateway.config import Settings; "
         "print(json.dumps(sorted(Settings.model_fields)))"],
        capture_output=True, text=True, check=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return set(json.loads(done.stdout))


@dataclass(frozen=True)
class Gateway:
    url: str
    ca_file: Path
    running: services.Running


def gateway(stack: ExitStack, state: Path, name: str, core: Core, upstream_url: str, *,
            overrides: dict[str, Any] | None = None, variant_flags: list[str] | None = None,
            tree: Path | None = None) -> Gateway:  # fmt: skip
    """A gateway in front of ``upstream_url`` with the bench's settings and ``overrides``.

    With ``variant_flags`` (a list, maybe empty) it is bench/gateway_variant.py;
    without, the shipped ``sovstack gateway``, from ``tree`` (a checkout) when
    given, with only the settings that code knows.
    """
    port = services.free_port()
    files = prepare_gateway(state, port, core.issuer, core.opa_url, [{
        "id": DEV_REPLICA, "model": launches.VLLM_MODEL_NAME, "url": upstream_url,
        "site": DEV_SITE, "jurisdiction": "DE", "hosting": "on-prem"}])  # fmt: skip
    config = yaml.safe_load(files.config.read_text()) | BENCH_SETTINGS | (overrides or {})
    env = {"PYTHONPATH": str(tree / "services")} if tree is not None else {}
    if tree is not None:
        known = known_settings(env)
        config = {k: v for k, v in config.items() if k in known}
    files.config.write_text(yaml.safe_dump(config))
    if variant_flags is not None:
        argv = [sys.executable, str(BENCH / "gateway_variant.py"), "--config", str(files.config),
                *variant_flags]  # fmt: skip
    else:
        argv = [sys.executable, "-m", "sovstack.cli", "gateway", "--config", str(files.config)]
    launch = Launch(
        name=name, port=port, ready_url=f"https://127.0.0.1:{port}/readyz", ca_file=files.ca_file,
        env=env, argv=argv, ready_timeout=120.0,
    )  # fmt: skip
    running = start(stack, launch, state / "gateway.log")
    return Gateway(f"https://127.0.0.1:{port}", files.ca_file, running)


def baseline_tree(stack: ExitStack, root: Path, ref: str, into: Path) -> Path:
    """The repository at ``ref`` in ``into`` (``git worktree add``), removed with ``stack``."""
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", "--quiet", str(into), ref],
        check=True, timeout=120,
    )  # fmt: skip
    stack.callback(
        subprocess.run, ["git", "-C", str(root), "worktree", "remove", "--force", str(into)],
        check=False, timeout=120,
    )  # fmt: skip
    return into
