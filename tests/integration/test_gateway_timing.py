"""The real gateway asks a real OPA over its Unix socket, and shows its stages when asked.

One gateway, with ``server_timing: true``, in front of the real Keycloak and
vLLM and an OPA serving the project's signed policy bundle on a Unix socket
only (as the opa role serves it; its port has /health and /metrics alone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.policy import serve as policy_serve
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

CHAT = {
    "model": VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Summarise the log"}],
    "max_tokens": 4,
}
STAGES = ["authenticate", "authorize", "audit", "upstream_first_byte"]
ENTRY = re.compile(r"^([a-z_]+);dur=(\d+\.\d{3})$")


@pytest.fixture(scope="module")
def socket_opa(
    project_paths: Paths, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, int]]:
    """The project's policies, signed and verified, on a Unix socket; (socket, diagnostic port)."""
    work = tmp_path_factory.mktemp("opa-socket")
    socket, port = work / "opa.sock", services.free_port()
    launch = policy_serve.dev_opa(Paths(project_paths.root, work), port, lambda _: None, socket)
    running = services.start(launch, work / "opa.log")
    try:
        services.wait_ready(running)
        yield socket, port
    finally:
        services.stop(running.pid)


@pytest.fixture(scope="module")
def timed_gateway(
    project_paths: Paths,
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_server: KeycloakServed,
    socket_opa: tuple[Path, int],
    vllm_server: Served,
) -> Iterator[Gateway]:
    state = tmp_path_factory.mktemp("timed-gateway")
    with run_gateway(
        project_paths, state, keycloak_server.issuer, f"unix://{socket_opa[0]}",
        dev_upstreams(vllm_server), server_timing=True,
    ) as gw:  # fmt: skip
        yield gw


def _timings(response: httpx.Response) -> dict[str, float]:
    found = {}
    for entry in response.headers["server-timing"].split(", "):
        match = ENTRY.match(entry)
        assert match, entry
        found[match.group(1)] = float(match.group(2))
    return found


def test_opa_answers_on_its_socket_and_its_port_has_health_only(
    socket_opa: tuple[Path, int],
) -> None:
    socket, port = socket_opa
    assert socket.stat().st_mode & 0o777 == 0o600
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), trust_env=False) as opa:
        assert opa.get("http://localhost/health?bundles=true").status_code == 200
    diagnostic = httpx.post(
        f"http://127.0.0.1:{port}/v1/data/sovstack/decision", json={"input": {}}, trust_env=False
    )
    assert diagnostic.status_code == 404  # no decision is ever asked on the TCP port
    assert httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200


def test_a_chat_names_every_stage_and_the_total(
    timed_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    with timed_gateway.client(token, **{"X-Data-Classification": "internal"}) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    timings = _timings(response)
    assert list(timings) == [*STAGES, "total"]
    assert timings["total"] >= sum(timings[s] for s in STAGES)
    assert timings["upstream_first_byte"] > 0 and timings["authorize"] > 0
    # Decided over the socket: the accepted record names the policy's revision.
    records = timed_gateway.records_of(response.headers["x-request-id"], count=2)
    assert records[0]["decision"]["allow"] is True
    assert records[0]["decision"]["policy_revision"]


def test_a_stream_names_the_stages_before_its_first_byte_and_no_total(
    timed_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    with (
        timed_gateway.client(token, **{"X-Data-Classification": "internal"}) as client,
        client.stream("POST", "/v1/chat/completions", json=CHAT | {"stream": True}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert list(_timings(response)) == STAGES
        assert b"data: [DONE]" in response.read()


def test_a_denied_request_has_no_timing(
    timed_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    with timed_gateway.client(keycloak_server.token("audit-office")) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "policy_denied"
    assert "server-timing" not in response.headers
    assert "dur=" not in response.text
