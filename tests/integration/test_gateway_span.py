"""A replica spanning nodes, through the real gateway and the project's real policy (OPA).

The gateway's settings name replica tiny-pp-1 (model tiny-llama-pp) with its
nodes and their sites, as the gateway role writes them for a replica over
several nodes: gpu-1 at plant A, gpu-2 at plant B. The gateway tells the policy
each node's site; the policy data says the same. Plant B's internal data may use
it (agreement DSA-2026-014 covers its node at plant A); plant A's may not (no
agreement lets it reach plant B's node); and a gateway whose settings put the
nodes elsewhere than the policy data does is refused for everyone. The replica's
URL is the dev vLLM, which serves only tiny-llama: a request the policy lets
through reaches it and is answered there, which the records show.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

NODES = {"gpu-1": "plant-a", "gpu-2": "plant-b"}
CHAT = {
    "model": "tiny-llama-pp",
    "messages": [{"role": "user", "content": "Summarise the lab report"}],
    "max_tokens": 2,
}


def _span(vllm: Served, nodes: dict[str, str]) -> dict[str, Any]:
    return {
        "id": "tiny-pp-1",
        "model": "tiny-llama-pp",
        "url": vllm.url,
        "site": "plant-a",
        "jurisdiction": "DE",
        "hosting": "on-prem",
        "nodes": nodes,
    }


@pytest.fixture(scope="module")
def span_gateway(
    project_paths: Paths,
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> Iterator[Gateway]:
    upstreams = [*dev_upstreams(vllm_server), _span(vllm_server, NODES)]
    state = tmp_path_factory.mktemp("span-gateway")
    with run_gateway(project_paths, state, keycloak_server.issuer, policy_opa.url, upstreams) as gw:
        yield gw


def _chat(gw: Gateway, keycloak: KeycloakServed, client_id: str) -> tuple[int, str]:
    with gw.client(keycloak.token(client_id), **{"X-Data-Classification": "internal"}) as http:
        answer = http.post("/v1/chat/completions", json=CHAT)
    return answer.status_code, answer.headers["x-request-id"]


def test_allow_plant_b_data_on_the_replica_under_the_agreement_covering_its_other_node(
    span_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    status, request_id = _chat(span_gateway, keycloak_server, "quality-lab")
    accepted, end = span_gateway.records_of(request_id, count=2)
    assert accepted["event"] == "accepted"
    # The request reached the split replica (the dev vLLM behind it knows no tiny-llama-pp).
    assert end["replica"] == "tiny-pp-1"
    assert status != 403


def test_deny_plant_a_data_on_the_replica_with_a_node_at_plant_b(
    span_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    status, request_id = _chat(span_gateway, keycloak_server, "line-monitor")
    assert status == 403
    (denied,) = span_gateway.records_of(request_id)
    assert denied["event"] == "denied"


def test_deny_everyone_when_the_gateway_places_the_nodes_elsewhere_than_the_policy_data(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> None:
    moved = _span(vllm_server, {"gpu-1": "plant-b", "gpu-2": "plant-b"})
    with run_gateway(
        project_paths, tmp_path, keycloak_server.issuer, policy_opa.url, [moved]
    ) as gw:
        status, request_id = _chat(gw, keycloak_server, "quality-lab")
        assert status == 403
        (denied,) = gw.records_of(request_id)
        assert denied["event"] == "denied"
