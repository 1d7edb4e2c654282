"""The gateway as worker processes, against the real Keycloak, OPA and vLLM.

Each gateway here is ``sovstack gateway`` with ``workers: 2``: a supervisor
and two worker processes sharing its listener, each with its own audit log.
What a user relies on is checked from outside: each worker's log verifies
with ``sovstack audit verify`` on the folder; a client's in-flight and rate
budgets are the whole gateway's, however its connections land; quotas hold across workers; a
killed worker is restarted and its open request closed while the other's
records stay; SIGHUP applies new settings without cutting a stream in
flight; ``/metrics`` counts every worker's requests.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core.paths import Paths
from sovstack.devstack.gatewaysetup import GATEWAY_NAMES
from sovstack.pki.ca import issue
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway
from tests.integration.test_gateway_abuse import _head, _read_until_closed, _status, _tls
from tests.integration.test_gateway_quota import quota_opa  # noqa: F401 (a fixture used below)

CHAT = {"model": VLLM_MODEL_NAME, "max_tokens": 2,
        "messages": [{"role": "user", "content": "Summarise the shift log"}]}  # fmt: skip
STREAM = CHAT | {"max_tokens": 200, "stream": True, "ignore_eos": True}
# Sixteen sequences as long as the replica allows: still streaming when a worker is killed.
LONG = {"model": VLLM_MODEL_NAME, "prompt": ["Pump"] * 4, "n": 4, "max_tokens": 240,
        "ignore_eos": True, "stream": True}  # fmt: skip
INTERNAL = {"X-Data-Classification": "internal"}
WORKERS: dict[str, Any] = {
    "workers": 2,
    "vllm_extensions": ["ignore_eos"],
    "max_concurrent_requests": 64,
    "body_read_timeout_s": 3.0,
}


@pytest.fixture
def start(
    project_paths: Paths, tmp_path: Path, keycloak_server: KeycloakServed,
    policy_opa: Served, vllm_server: Served,
) -> Callable[..., Any]:  # fmt: skip
    """Start a two-worker gateway of this test's own, with ``settings`` over WORKERS."""

    def started(opa: Served = policy_opa, **settings: Any) -> Any:
        return run_gateway(
            project_paths, tmp_path / "gw", keycloak_server.issuer, opa.url,
            dev_upstreams(vllm_server), **(WORKERS | settings),
        )  # fmt: skip

    return started


@pytest.fixture
def gateway(start: Callable[..., Any]) -> Iterator[Gateway]:
    with start() as gw:
        yield gw


def _workers(gateway: Gateway) -> dict[int, int]:
    """Worker index -> pid, as the supervisor last logged them."""
    found = re.findall(r"worker (\d+) started \(pid (\d+)\)", gateway.log.read_text())
    return {int(index): int(pid) for index, pid in found}


def _member_records(gateway: Gateway) -> dict[str, list[dict[str, Any]]]:
    """Each worker log's records, read with `sovstack audit export` on the worker's folder."""
    members = {}
    for folder in sorted(gateway.files.audit_dir.glob("worker-*")):
        out = subprocess.run(
            [sys.executable, "-m", "sovstack.cli", "audit", "export", str(folder)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        members[folder.name] = [json.loads(line)["record"] for line in out.stdout.splitlines()]
    return members


def _chats(gateway: Gateway, token: str, count: int) -> list[httpx.Response]:
    """``count`` chats at once, each on a connection of its own (so the kernel spreads them)."""

    def one(_: int) -> httpx.Response:
        with gateway.client(token, **INTERNAL) as client:
            return client.post("/v1/chat/completions", json=CHAT)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def _served_certificate(gateway: Gateway) -> bytes:
    host, port = gateway.url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(gateway.files.ca_file))
    with socket.create_connection((host, int(port)), timeout=30) as raw, context.wrap_socket(
        raw, server_hostname=host
    ) as conn:  # fmt: skip
        served = conn.getpeercert(binary_form=True)
    assert served is not None
    return served


def _until(check: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_each_worker_keeps_its_own_log_and_the_folder_verifies(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    # Connections land on whichever worker accepts first: go on until both have served.
    for _ in range(10):
        assert all(r.status_code == 200 for r in _chats(gateway, token, 8))
        members = _member_records(gateway)
        if all(any(r["event"] == "completed" for r in members.get(n, [])) for n in
               ("worker-0", "worker-1")):  # fmt: skip
            break
    assert sorted(members) == ["worker-0", "worker-1"]
    assert all(any(r["event"] == "completed" for r in rs) for rs in members.values()), members
    for name in members:  # each signed by its own key, under its own origin
        assert (gateway.files.audit_dir / name / "checkpoints").is_file()
        pub = gateway.files.audit_public_key.with_name(
            gateway.files.audit_public_key.name.removesuffix(".pub") + f".{name}.pub"
        )
        assert pub.is_file()
    verified = gateway.verify_log()  # `audit verify` on the folder: every worker's log
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.count("verified:") == 2, verified.stdout
    # Every request has its accepted and its one end record, in one log.
    everything = [r for rs in members.values() for r in rs]
    for request_id in {r["request_id"] for r in everything if r["event"] == "accepted"}:
        events = sorted(r["event"] for r in everything if r["request_id"] == request_id)
        assert events == ["accepted", "completed"], (request_id, events)


def test_a_clients_in_flight_budget_holds_across_workers(
    start: Callable[..., Any], keycloak_server: KeycloakServed
) -> None:
    """8 slow bodies of one client over 8 connections: its 4, wherever each lands."""
    with start(max_in_flight_per_client=4) as gateway:
        head = _head(
            "POST", "/v1/chat/completions",
            authorization=f"Bearer {keycloak_server.token('quality-lab')}",
            **{"content-type": "application/json", "content-length": "500",
               "x-data-classification": "internal"},
        )  # fmt: skip
        held = [_tls(gateway) for _ in range(8)]
        for conn in held:
            conn.sendall(head + b"{")
        answers = [_read_until_closed(conn) for conn in held]
        for conn in held:
            conn.close()
    statuses = sorted(_status(a) for a in answers)
    # Admitted ones wait on their body until it times out (408); the rest are refused at once.
    assert statuses == [408] * 4 + [429] * 4


def test_a_clients_rate_budget_holds_across_workers(
    start: Callable[..., Any], keycloak_server: KeycloakServed
) -> None:
    """A burst of 2 for the gateway: 8 requests at once get 2 through, wherever each lands."""
    with start(rate_limit_per_client=0.1, rate_limit_burst=2) as gateway:
        answers = _chats(gateway, keycloak_server.token("line-monitor"), 8)
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 2 + [429] * 6, codes
    assert all(r.json()["error"]["code"] == "rate_limited" for r in answers if r.status_code == 429)


def test_a_quota_holds_across_workers(
    start: Callable[..., Any],
    keycloak_server: KeycloakServed,
    quota_opa: Served,  # noqa: F811
) -> None:
    """line-monitor may send 2 requests a day: 2 of 6, wherever each lands."""
    token = keycloak_server.token("line-monitor")
    with start(opa=quota_opa) as gateway:
        codes = []
        for _ in range(6):
            codes += [r.status_code for r in _chats(gateway, token, 1)]
            time.sleep(0.5)  # longer than a worker takes to read its sibling's records
    assert codes[:2] == [200, 200], codes
    assert codes[2:] == [403] * 4, codes


def test_a_killed_worker_is_restarted_and_no_record_is_lost(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    assert all(r.status_code == 200 for r in _chats(gateway, token, 8))
    before = _member_records(gateway)
    with gateway.client(token, **INTERNAL) as client, client.stream(
        "POST", "/v1/completions", json=LONG
    ) as stream:  # fmt: skip
        assert stream.status_code == 200
        lines = stream.iter_lines()
        next(lines)
        request_id = stream.headers["x-request-id"]
        [holder] = [
            folder.name for folder in gateway.files.audit_dir.glob("worker-*")
            if any(request_id.encode() in f.read_bytes() for f in folder.glob("entries-*"))
        ]  # fmt: skip
        index = int(holder.removeprefix("worker-"))
        killed = _workers(gateway)[index]
        os.kill(killed, signal.SIGKILL)
        with pytest.raises(httpx.HTTPError):
            for _ in lines:
                pass
    _until(lambda: _workers(gateway).get(index, killed) != killed)
    # The new worker closed what its predecessor left open, before taking requests.
    records = gateway.records_of(request_id, 2)
    assert [r["event"] for r in records] == ["accepted", "aborted"]
    assert records[1]["error"] == "gateway_restart"
    _until(lambda: all(r.status_code == 200 for r in _chats(gateway, token, 4)))
    after = _member_records(gateway)
    for name, records in before.items():  # nothing either worker had made durable is gone
        assert after[name][: len(records)] == records
    verified = gateway.verify_log()
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_sighup_applies_new_settings_and_keys_without_cutting_a_stream(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    old = _workers(gateway)
    with gateway.client(token, **INTERNAL) as client:
        assert "server-timing" not in client.post("/v1/chat/completions", json=CHAT).headers
        with client.stream("POST", "/v1/chat/completions", json=STREAM) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("data: ")
            config = yaml.safe_load(gateway.files.config.read_text())
            gateway.files.config.write_text(yaml.safe_dump(config | {"server_timing": True}))
            old_cert = _served_certificate(gateway)
            issue(gateway.files.ca_file.parent, "gateway", GATEWAY_NAMES, overwrite=True)
            os.kill(gateway.pid, signal.SIGHUP)
            rest = [line for line in lines if line]
            request_id = stream.headers["x-request-id"]
        assert rest[-1] == "data: [DONE]"
        _until(lambda: "every worker runs the new settings" in gateway.log.read_text())
        new = _workers(gateway)
        assert set(new.values()).isdisjoint(old.values()), (old, new)
        # The new workers read the key files again: the certificate issued meanwhile is served.
        assert _served_certificate(gateway) != old_cert
        answer = client.post("/v1/chat/completions", json=CHAT)
    assert answer.status_code == 200
    assert "authorize;dur=" in answer.headers["server-timing"]
    ended = gateway.records_of(request_id, 2)
    assert [r["event"] for r in ended] == ["accepted", "completed"]


def test_refused_settings_on_sighup_keep_the_workers_serving(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    old = _workers(gateway)
    config = yaml.safe_load(gateway.files.config.read_text())
    gateway.files.config.write_text(yaml.safe_dump(config | {"max_n": "many"}))
    os.kill(gateway.pid, signal.SIGHUP)
    _until(lambda: "the new settings are refused" in gateway.log.read_text())
    assert _workers(gateway) == old
    answers = _chats(gateway, keycloak_server.token("line-monitor"), 2)
    assert [r.status_code for r in answers] == [200, 200]


def test_metrics_count_every_workers_requests(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("line-monitor")
    served = 0
    for _ in range(10):
        served += sum(r.status_code == 200 for r in _chats(gateway, token, 8))
        if all(any(r["event"] == "completed" for r in rs)
               for rs in _member_records(gateway).values()):  # fmt: skip
            break
    pattern = re.compile(
        r'^sovstack_requests_total\{route="/v1/chat/completions",status="200"\} (\S+)$', re.M
    )
    for _ in range(4):  # whichever worker answers /metrics
        with gateway.client() as client:
            text = client.get("/metrics").text
        assert float(pattern.search(text).group(1)) == served  # type: ignore[union-attr]
        assert re.search(r"^sovstack_audit_writable 1\.0$", text, re.M), text
