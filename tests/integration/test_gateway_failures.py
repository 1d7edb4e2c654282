"""Fail closed: with the policy or the audit log gone, nothing reaches the model."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.policy import serve as policy_serve
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway, upstream_calls

CHAT = {
    "model": VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Summarise the log"}],
    "max_tokens": 4,
}


@pytest.fixture
def own_opa(project_paths: Paths, tmp_path: Path) -> Iterator[services.Running]:
    """An OPA of this test's own, so that the test may stop it."""
    port = services.free_port()
    launch = policy_serve.dev_opa(Paths(project_paths.root, tmp_path), port, lambda _: None)
    running = services.start(launch, tmp_path / "opa.log")
    try:
        services.wait_ready(running)
        yield running
    finally:
        services.stop(running.pid)


@pytest.fixture
def own_gateway(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    own_opa: services.Running,
    vllm_server: Served,
) -> Iterator[Gateway]:
    opa_url = f"http://127.0.0.1:{own_opa.launch.port}"
    with run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, opa_url, dev_upstreams(vllm_server)
    ) as gw:
        yield gw


def _post(gateway: Gateway, token: str) -> tuple[int, dict[str, object]]:
    with gateway.client(token, **{"X-Data-Classification": "internal"}) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    return response.status_code, response.json()


def _assert_refused_before_the_model(gateway: Gateway, token: str, vllm: Served, code: str) -> None:
    """The request gets 503 with ``code``, and the replica saw no request at all."""
    before = upstream_calls(vllm.url)
    status, body = _post(gateway, token)
    assert status == 503
    assert body["error"]["code"] == code  # type: ignore[index]
    assert upstream_calls(vllm.url) == before


def _stop(opa: services.Running) -> None:
    services.stop(opa.pid)


def _freeze(opa: services.Running) -> None:
    # A stopped (SIGSTOP) OPA still accepts connections but never answers: the timeout path.
    os.kill(opa.pid, signal.SIGSTOP)


@pytest.mark.parametrize("break_opa", [_stop, _freeze], ids=["opa-stopped", "opa-too-slow"])
def test_with_opa_down_or_too_slow_requests_get_503_and_nothing_reaches_the_model(
    own_gateway: Gateway,
    own_opa: services.Running,
    keycloak_server: KeycloakServed,
    vllm_server: Served,
    break_opa: Callable[[services.Running], None],
) -> None:
    token = keycloak_server.token("line-monitor")
    assert _post(own_gateway, token)[0] == 200
    break_opa(own_opa)
    try:
        _assert_refused_before_the_model(own_gateway, token, vllm_server, "policy_unavailable")
        with own_gateway.client() as client:
            ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["policy"] is False
    finally:
        if break_opa is _freeze:
            os.kill(own_opa.pid, signal.SIGCONT)


def test_with_the_audit_log_unwritable_requests_get_503_and_nothing_reaches_the_model(
    own_gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served
) -> None:
    token = keycloak_server.token("line-monitor")
    assert _post(own_gateway, token)[0] == 200
    # Let the gateway process grow no file by a single byte (RLIMIT_FSIZE 0): the
    # kernel refuses the audit log's next write, as it would on a full disk.
    subprocess.run(["prlimit", f"--pid={own_gateway.pid}", "--fsize=0"], check=True)
    _assert_refused_before_the_model(own_gateway, token, vllm_server, "audit_unavailable")
    with own_gateway.client() as client:
        assert client.get("/readyz").json()["checks"]["audit"] is False


def test_a_dead_replica_is_skipped_and_requests_still_succeed(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    own_opa: services.Running,
    vllm_server: Served,
) -> None:
    # quality-lab (plant B) may send internal data to plant B's replica and, under
    # agreement DSA-2026-014, to plant A's: both are allowed; plant B's is dead.
    alive = dev_upstreams(vllm_server)[0]
    dead = alive | {
        "id": "gpu-b1",
        "site": "plant-b",
        "url": f"http://127.0.0.1:{services.free_port()}",
    }
    opa_url = f"http://127.0.0.1:{own_opa.launch.port}"
    with run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, opa_url, [dead, alive]
    ) as gw:
        token = keycloak_server.token("quality-lab")
        statuses = [_post(gw, token)[0] for _ in range(4)]
        assert statuses == [200] * 4
        done = gw.wait_for(lambda r: r["event"] == "completed", 4)
        assert [r["replica"] for r in done] == ["gpu-1"] * 4


def test_a_client_over_its_rate_gets_429(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    own_opa: services.Running,
    vllm_server: Served,
) -> None:
    opa_url = f"http://127.0.0.1:{own_opa.launch.port}"
    with run_gateway(
        project_paths,
        tmp_path / "gw",
        keycloak_server.issuer,
        opa_url,
        dev_upstreams(vllm_server),
        rate_limit_per_client=0.01,
        rate_limit_burst=1,
    ) as gw:
        token = keycloak_server.token("line-monitor")
        assert _post(gw, token)[0] == 200
        with gw.client(token, **{"X-Data-Classification": "internal"}) as client:
            limited = client.post("/v1/chat/completions", json=CHAT)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        other = keycloak_server.token("process-engineering")
        assert _post(gw, other)[0] != 429
