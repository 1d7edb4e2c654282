"""Session fixtures that start each real component on loopback, on free ports.

Each fixture starts the real thing (OPA, Keycloak, vLLM) exactly as ``make
dev`` does, waits until it answers, and stops it when the session ends. A
component missing from the cache is an error that says to run ``make deps``:
integration tests never skip and never stand in a fake.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sovstack.components import launches
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.core.services import Launch
from sovstack.devstack import realm
from sovstack.devstack.stack import DEV_REPLICA, DEV_SITE
from sovstack.policy import serve as policy_serve
from tests.integration.gateway_harness import Gateway, run_gateway


@dataclass(frozen=True)
class Served:
    url: str
    log: Path


@dataclass(frozen=True)
class KeycloakServed(Served):
    issuer: str
    clients: tuple[realm.DemoClient, ...]
    # A master-realm admin client (Keycloak's bootstrap admin), for tests that
    # change the realm the way an administrator would (rotating keys).
    admin_client_id: str = ""
    admin_secret: str = ""

    def client(self, client_id: str) -> realm.DemoClient:
        return next(c for c in self.clients if c.client_id == client_id)

    def token(self, client_id: str) -> str:
        """A client-credentials access token for one of the demo clients."""
        client = self.client(client_id)
        return client_credentials_token(self.issuer, client.client_id, client.client_secret)

    def admin_token(self) -> str:
        return client_credentials_token(
            f"{self.url}/realms/master", self.admin_client_id, self.admin_secret
        )


def client_credentials_token(issuer: str, client_id: str, secret: str) -> str:
    """An access token from the realm ``issuer`` for a confidential client."""
    response = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        trust_env=False,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def _serve(launch: Launch, log: Path) -> Iterator[services.Running]:
    running = services.start(launch, log)
    try:
        services.wait_ready(running)
        yield running
    finally:
        services.stop(running.pid)


OPA_POLICY = """\
package fixture.gate

import rego.v1

default allow := false

allow if input.role in data.fixture.allowed_roles
"""


@pytest.fixture(scope="session")
def opa_server(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real OPA server, given a small policy and its data."""
    work = tmp_path_factory.mktemp("opa")
    (work / "gate.rego").write_text(OPA_POLICY)
    (work / "data.json").write_text('{"fixture": {"allowed_roles": ["engineer"]}}')
    port = services.free_port()
    launch = launches.opa(project_paths, port, [work / "gate.rego", work / "data.json"])
    for running in _serve(launch, work / "opa.log"):
        yield Served(url=f"http://127.0.0.1:{port}", log=running.log)


@pytest.fixture(scope="session")
def keycloak_server(
    project_paths: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeycloakServed]:
    """A real Keycloak in dev mode with the plant realm imported from the template."""
    work = tmp_path_factory.mktemp("keycloak")
    clients = realm.demo_clients()
    port, management = services.free_port(), services.free_port()
    launch = launches.keycloak(
        project_paths,
        port,
        management,
        work / "home",
        realm.render_realm(project_paths.realm_template, clients),
        realm.REALM,
    )
    admin_id, admin_secret = "sovstack-test-admin", secrets.token_urlsafe(32)
    launch = dataclasses.replace(launch, env={
        **launch.env,
        "KC_BOOTSTRAP_ADMIN_CLIENT_ID": admin_id,
        "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET": admin_secret,
    })  # fmt: skip
    for running in _serve(launch, work / "keycloak.log"):
        url = f"http://127.0.0.1:{port}"
        yield KeycloakServed(
            url=url,
            log=running.log,
            issuer=f"{url}/realms/{realm.REALM}",
            clients=tuple(clients),
            admin_client_id=admin_id,
            admin_secret=admin_secret,
        )


@pytest.fixture(scope="session")
def vllm_server(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real vLLM (CPU build) serving the locally generated tiny model."""
    work = tmp_path_factory.mktemp("vllm")
    port = services.free_port()
    for running in _serve(launches.vllm(project_paths, port), work / "vllm.log"):
        yield Served(url=f"http://127.0.0.1:{port}", log=running.log)


@pytest.fixture(scope="session")
def policy_opa(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real OPA serving the project's policies as make dev does: a signed bundle, verified."""
    work = tmp_path_factory.mktemp("policy-opa")
    port = services.free_port()
    launch = policy_serve.dev_opa(Paths(project_paths.root, work), port, lambda _: None)
    for running in _serve(launch, work / "opa.log"):
        yield Served(url=f"http://127.0.0.1:{port}", log=running.log)


def dev_upstreams(vllm: Served) -> list[dict[str, object]]:
    return [
        {
            "id": DEV_REPLICA,
            "model": launches.VLLM_MODEL_NAME,
            "url": vllm.url,
            "site": DEV_SITE,
            "jurisdiction": "DE",
            "hosting": "on-prem",
        }
    ]


@pytest.fixture(scope="session")
def gateway(
    project_paths: Paths,
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> Iterator[Gateway]:
    """The real gateway in front of real Keycloak, OPA (project policies) and vLLM."""
    state = tmp_path_factory.mktemp("gateway")
    # ignore_eos makes the tiny model stream as long as a test needs (vLLM fields are
    # refused unless a site admits them, gateway/protocol.py).
    with run_gateway(
        project_paths, state, keycloak_server.issuer, policy_opa.url, dev_upstreams(vllm_server),
        vllm_extensions=["ignore_eos"],
    ) as gw:  # fmt: skip
        yield gw
