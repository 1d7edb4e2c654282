"""Fail closed: with the policy or the audit log gone, nothing reaches the model.

And a gateway killed (SIGKILL) under load loses no acknowledged request's
record; what it had in flight is closed when it starts again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
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
        # What Prometheus alerts on (SovstackAuditUnavailable).
        assert "sovstack_audit_writable 0.0" in client.get("/metrics").text


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


# Sixteen sequences as long as the replica allows: still streaming when the gateway is killed.
LONG = {"model": VLLM_MODEL_NAME, "prompt": ["Pump"] * 4, "n": 4, "max_tokens": 240,
        "ignore_eos": True, "stream": True}  # fmt: skip


class _Load:
    """Bounded load on a gateway: ``streams`` long streams, then ``workers`` short-request loops.

    ``acknowledged`` holds the ids of the requests whose whole 200 answer the
    client received; ``in_flight`` those of the long streams that had sent their
    first event and had not ended when the load stopped.
    """

    def __init__(self, gateway: Gateway, token: str, streams: int = 2, workers: int = 4) -> None:
        self._gateway, self._token = gateway, token
        self.acknowledged: list[str] = []
        self.in_flight: list[str] = []
        self.streaming = threading.Semaphore(0)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._stream) for _ in range(streams)]
        self._threads += [threading.Thread(target=self._requests) for _ in range(workers)]

    def _client(self) -> httpx.Client:
        return self._gateway.client(self._token, **{"X-Data-Classification": "internal"})

    def _stream(self) -> None:
        with (
            self._client() as client,
            contextlib.suppress(httpx.HTTPError),
            client.stream("POST", "/v1/completions", json=LONG) as response,
        ):
            request_id = response.headers["x-request-id"]
            for chunk in response.iter_bytes():
                if b"data: {" in chunk and request_id not in self.in_flight:
                    self.in_flight.append(request_id)
                    self.streaming.release()
            self.in_flight.remove(request_id)  # it ended before the load stopped

    def _requests(self) -> None:
        with self._client() as client, contextlib.suppress(httpx.HTTPError):
            while not self._stop.is_set():
                response = client.post("/v1/chat/completions", json=CHAT)
                if response.status_code == 200:
                    self.acknowledged.append(response.headers["x-request-id"])

    def __enter__(self) -> _Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _ends(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    ends: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record["event"] in {"completed", "aborted", "error"}:
            ends.setdefault(record["request_id"], []).append(record)
    return ends


@pytest.fixture
def gateway_on_one_state(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    own_opa: services.Running,
    vllm_server: Served,
) -> Callable[[], AbstractContextManager[Gateway]]:
    """Starts a gateway, each time on the same state folder (so the same audit log)."""
    opa_url = f"http://127.0.0.1:{own_opa.launch.port}"
    upstreams = dev_upstreams(vllm_server)
    return lambda: run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, opa_url, upstreams,
        vllm_extensions=["ignore_eos"],  # LONG streams as long as the replica allows
    )  # fmt: skip


def test_a_gateway_killed_under_load_keeps_every_acknowledged_record_and_closes_the_rest(
    gateway_on_one_state: Callable[[], AbstractContextManager[Gateway]],
    keycloak_server: KeycloakServed,
) -> None:
    token = keycloak_server.token("line-monitor")
    with gateway_on_one_state() as gw:
        with _Load(gw, token, streams=2) as load:
            deadline = time.monotonic() + 120
            for _ in range(2):  # wait on what is asserted: both streams under way
                assert load.streaming.acquire(timeout=max(0.0, deadline - time.monotonic()))
            # A few answers, not many: on a busy machine the long streams may end first.
            while len(load.acknowledged) < 3:
                assert time.monotonic() < deadline, f"only {len(load.acknowledged)} answers"
                time.sleep(0.05)
            os.kill(gw.pid, signal.SIGKILL)
            acknowledged = list(load.acknowledged)
        in_flight = list(load.in_flight)
        accepted = {r["request_id"] for r in gw.records() if r["event"] == "accepted"}
    # Durable before anything went upstream: every answered request's accepted record.
    assert set(acknowledged) <= accepted
    assert in_flight, "the long streams ended before the kill: nothing was in flight"

    with gateway_on_one_state() as again:  # starts on the log the killed one left
        records = again.records()
    ends = _ends(records)
    assert {r["request_id"] for r in records if r["event"] == "accepted"} == accepted
    assert all(len(ends.get(rid, [])) == 1 for rid in accepted), "an end for each accepted"
    for rid in in_flight:
        assert (ends[rid][0]["event"], ends[rid][0]["error"]) == ("aborted", "gateway_restart")
    verified = subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "audit", "verify", str(again.files.audit_dir),
         "--pubkey", str(again.files.audit_public_key), "--check-records"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
