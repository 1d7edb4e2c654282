"""Abuse stays bounded: slow clients, floods and oversized headers against the real gateway.

Each gateway here is a real ``sovstack gateway`` process over HTTPS on
loopback, in front of real Keycloak, OPA (the project's policies) and vLLM,
with small limits so that each is reached in seconds. Slow clients are raw
TLS sockets that send exactly the bytes a hostile client would.
"""

from __future__ import annotations

import json
import math
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core import services
from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

CHAT = {
    "model": VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Summarise the log"}],
    "max_tokens": 4,
}
LIMITS: dict[str, Any] = {
    "max_concurrent_requests": 8,
    "max_in_flight_per_client": 4,
    "header_read_timeout_s": 2.0,
    "body_read_timeout_s": 3.0,
    "keep_alive_timeout_s": 2,
    "max_header_count": 50,
    "refusal_records_per_interval": 5,
    "refusal_interval_s": 3.0,
}


@pytest.fixture
def small_gateway(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> Iterator[Gateway]:
    """A gateway of this test's own (its log holds only this test's records)."""
    with run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, policy_opa.url,
        dev_upstreams(vllm_server), **LIMITS,
    ) as gw:  # fmt: skip
        yield gw


def _port(gateway: Gateway) -> int:
    return int(gateway.url.rsplit(":", 1)[1])


def _tls(gateway: Gateway, port: int | None = None) -> ssl.SSLSocket:
    """A raw TLS connection to the gateway, verified against the site CA."""
    context = ssl.create_default_context(cafile=str(gateway.files.ca_file))
    raw = socket.create_connection(("127.0.0.1", port or _port(gateway)), timeout=30)
    return context.wrap_socket(raw, server_hostname="127.0.0.1")


def _read_until_closed(conn: ssl.SSLSocket) -> bytes:
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except (ConnectionError, ssl.SSLError):
        pass
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _head(method: str, path: str, **headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_slowloris_headers_get_the_connection_closed_within_the_timeout(
    small_gateway: Gateway,
) -> None:
    conn = _tls(small_gateway)
    started = time.monotonic()
    conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n")
    stop = threading.Event()

    def trickle() -> None:
        # One header byte every 0.3 s: finished, the headers would take minutes.
        while not stop.wait(0.3):
            try:
                conn.sendall(b"x")
            except (OSError, ssl.SSLError):
                return

    dripping = threading.Thread(target=trickle, daemon=True)
    dripping.start()
    answer = _read_until_closed(conn)
    elapsed = time.monotonic() - started
    stop.set()
    conn.close()
    assert 1.5 < elapsed < 5.0  # header_read_timeout_s is 2
    assert _status(answer) == 408
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "header_timeout"


def test_a_slow_body_gets_408_and_a_denied_record(
    small_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    conn = _tls(small_gateway)
    started = time.monotonic()
    head = _head(
        "POST", "/v1/chat/completions", authorization=f"Bearer {token}",
        **{"content-type": "application/json", "content-length": "500"},
    )  # fmt: skip
    conn.sendall(head + b'{"model": ')  # and then the rest never comes
    answer = _read_until_closed(conn)
    elapsed = time.monotonic() - started
    conn.close()
    assert 2.5 < elapsed < 6.0  # body_read_timeout_s is 3
    assert _status(answer) == 408
    head_part, body = answer.split(b"\r\n\r\n", 1)
    assert json.loads(body)["error"]["code"] == "body_timeout"
    request_id = next(
        line.split(b": ", 1)[1].decode()
        for line in head_part.split(b"\r\n")
        if line.lower().startswith(b"x-request-id:")
    )
    records = small_gateway.records_of(request_id)
    assert [r["event"] for r in records] == ["denied"]
    assert records[0]["client"] == "line-monitor"  # the caller was known before its body
    assert "did not arrive" in records[0]["decision"]["reasons"][0]


def test_one_client_holding_its_in_flight_budget_does_not_starve_another(
    small_gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    hog = keycloak_server.token("quality-lab")
    head = _head(
        "POST", "/v1/chat/completions", authorization=f"Bearer {hog}",
        **{"content-type": "application/json", "content-length": "500",
           "x-data-classification": "internal"},
    )  # fmt: skip
    # As many slow bodies as the whole gateway takes (max_concurrent_requests 8).
    held = [_tls(small_gateway) for _ in range(LIMITS["max_concurrent_requests"])]
    for conn in held:
        conn.sendall(head + b"{")
    time.sleep(0.5)  # every one of them is in the gateway, waiting on its body
    with small_gateway.client(
        keycloak_server.token("line-monitor"), **{"X-Data-Classification": "internal"}
    ) as client:
        served = client.post("/v1/chat/completions", json=CHAT)
    answers = [_read_until_closed(conn) for conn in held]
    for conn in held:
        conn.close()
    assert served.status_code == 200, served.text
    statuses = sorted(_status(a) for a in answers)
    # The client's own limit refused what was over it at once; the rest timed out.
    assert statuses == [408] * 4 + [429] * 4
    refused = next(a for a in answers if _status(a) == 429)
    assert json.loads(refused.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "too_many_in_flight"


def test_an_unauthenticated_flood_grows_the_log_by_a_bounded_amount_with_a_summary(
    small_gateway: Gateway,
) -> None:
    sent = 60
    ids = []
    started = time.monotonic()
    with small_gateway.client("not-a-token") as client:
        for _ in range(sent):
            response = client.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 401
            ids.append(response.headers["x-request-id"])
    lasted = time.monotonic() - started
    summaries = small_gateway.wait_for(lambda r: "refusals" in r, 1)
    records = small_gateway.records()
    alone = [r for r in records if r["request_id"] in ids]
    assert all(r["event"] == "denied" and r["subject"] is None for r in alone)
    budget = LIMITS["refusal_records_per_interval"]
    refill = math.ceil(lasted / LIMITS["refusal_interval_s"] * budget)
    assert budget <= len(alone) <= budget + refill < sent
    counted = sum(r["refusals"]["count"] for r in summaries)
    assert counted == sent - len(alone)  # every refusal is in the log, alone or counted
    assert len(summaries) <= math.ceil(lasted / LIMITS["refusal_interval_s"]) + 1
    summary = summaries[0]
    assert summary["event"] == "denied" and summary["refusals"]["source"] == "127.0.0.1"
    assert summary["route"] == "/v1/chat/completions"
    assert summary["decision"]["allow"] is False and summary["decision"]["reasons"]
    assert len(records) == len(alone) + len(summaries)
    verified = subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "audit", "verify", "--check-records",
         str(small_gateway.files.audit_dir), "--pubkey", str(small_gateway.files.audit_public_key)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize(
    "headers",
    [
        {f"x-h{i}": "v" for i in range(60)},  # over max_header_count (50)
        {"x-big": "a" * (40 << 10)},  # over max_header_bytes (32 KiB)
        # A token whose header holds a 6 MB "alg" (what grew the log by 6 MB).
        {"authorization": "Bearer eyJhbGciOi" + "A" * (6 << 20) + ".e30.c2ln"},
    ],
    ids=["too-many", "too-large", "6mb-alg"],
)
def test_oversized_or_too_many_headers_are_refused_with_431_and_never_500(
    small_gateway: Gateway, headers: dict[str, str]
) -> None:
    before = len(small_gateway.records())
    try:
        with small_gateway.client() as client:
            status = client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code
    except httpx.TransportError:
        status = None  # refused while the request was still being sent: the peer closed
    assert status in (431, None)
    with small_gateway.client() as client:
        assert client.get("/healthz").status_code == 200  # the gateway is still serving
    # The refusal leaves its denied record, and nothing of what was sent is in it.
    added = small_gateway.wait_for(lambda r: True, before + 1)[before:]
    assert [(r["event"], r["route"], r["subject"]) for r in added] == [("denied", None, None)]
    assert added[0]["decision"]["reasons"][0].startswith("the request")
    assert len(json.dumps(added[0])) < 2000


def test_metrics_can_be_served_on_their_own_address_only(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> None:
    metrics_port = services.free_port()
    with run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, policy_opa.url,
        dev_upstreams(vllm_server), metrics_host="127.0.0.1", metrics_port=metrics_port,
    ) as gw, gw.client() as client:  # fmt: skip
        main = client.get("/metrics")
        assert client.get("/healthz").status_code == 200
        metrics = client.get(f"https://127.0.0.1:{metrics_port}/metrics")
        other = client.get(f"https://127.0.0.1:{metrics_port}/v1/models")
    assert main.status_code == 404 and main.json()["error"]["code"] == "unknown_route"
    assert metrics.status_code == 200 and "sovstack_requests_total" in metrics.text
    assert other.status_code == 404
