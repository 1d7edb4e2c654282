"""Whatever a client sends, and however a replica fails, the records are all there.

Each request leaves a ``denied`` record, or ``accepted`` and exactly one end
record, read back with ``sovstack audit export`` as an auditor would; no
input gets a 500; nothing malformed reaches the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway, upstream_calls

MESSAGES = [{"role": "user", "content": "Summarise the log"}]
CHAT: dict[str, Any] = {"model": VLLM_MODEL_NAME, "messages": MESSAGES, "max_tokens": 3}
INTERNAL = {"X-Data-Classification": "internal"}


def _client(gateway: Gateway, keycloak: KeycloakServed, **headers: Any) -> httpx.Client:
    return gateway.client(keycloak.token("line-monitor"), **(INTERNAL | headers))


def _denied_before_the_model(
    gateway: Gateway, vllm: Served, response: httpx.Response, status: int = 400
) -> dict[str, Any]:
    """The response is an OpenAI-shaped ``status``, with one denied record and nothing upstream."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    records = gateway.records_of(response.headers["x-request-id"])
    assert [r["event"] for r in records] == ["denied"], records
    assert records[0]["client"] == "line-monitor"
    return records[0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (CHAT | {"stream": True, "stream_options": "x"}, "stream_options"),
        (CHAT | {"max_tokens": "3"}, "max_tokens"),
        (CHAT | {"messages": [{"role": "user", "content": {"text": "hi"}}]}, "messages[0].content"),
        (CHAT | {"model": "m" * 1100}, "model"),
        (CHAT | {"model": "no-such\u2028model"}, "model"),
        (CHAT | {"use_beam_search": True}, "use_beam_search"),
        (CHAT | {"best_of": 2}, "best_of"),
        (CHAT | {"chat_template": "{{ messages }}"}, "chat_template"),
        (CHAT | {"vllm_xargs": {"x": 1}}, "vllm_xargs"),
        (CHAT | {"request_id": "mine"}, "request_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_a_wrong_or_unadmitted_field_is_refused_before_the_policy_is_asked(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served,
    body: dict[str, Any], param: str,
) -> None:  # fmt: skip
    before = upstream_calls(vllm_server.url)
    with _client(gateway, keycloak_server) as client:
        response = client.post("/v1/chat/completions", json=body)
    denied = _denied_before_the_model(gateway, vllm_server, response)
    assert response.json()["error"]["param"] == param
    assert denied["decision"]["reasons"] and denied["model"] is None  # the policy was not asked
    assert upstream_calls(vllm_server.url) == before


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,
        b'{"model": "tiny\\ud800llama", "messages": []}',
        b'{"model": "tiny-llama", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b'{"model": "tiny-llama", "temperature": NaN, "messages": []}',
    ],
    ids=["nested-100000-deep", "lone-surrogate", "not-utf8", "nan"],
)
def test_a_malformed_body_is_a_400_with_a_denied_record(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served, raw: bytes
) -> None:
    with _client(gateway, keycloak_server) as client:
        response = client.post(
            "/v1/chat/completions", content=raw, headers={"content-type": "application/json"}
        )
    denied = _denied_before_the_model(gateway, vllm_server, response)
    assert response.json()["error"]["code"] == "invalid_json"
    assert len(json.dumps(denied)) < 4096


@pytest.mark.parametrize(
    "value", [b"x" * 1100, b"intern\xe4l", b"internal\x85"], ids=["long", "latin-1", "nel"]
)
def test_a_malformed_classification_header_is_a_400_with_a_denied_record(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served, value: bytes
) -> None:
    with gateway.client(keycloak_server.token("line-monitor")) as client:
        response = client.post(
            "/v1/chat/completions", json=CHAT, headers={"X-Data-Classification": value}
        )
    denied = _denied_before_the_model(gateway, vllm_server, response)
    assert response.json()["error"]["param"] == "X-Data-Classification"
    assert denied["data_classification"] is None and value.decode("latin-1") not in response.text


def _raw_request(gateway: Gateway, head: str, body: bytes) -> bytes:
    """Send ``head`` and then only ``body`` over TLS, hang up, and return what came back."""
    host, port = gateway.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(gateway.files.ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(head.encode() + body)
        tls.shutdown(socket.SHUT_WR)
        try:
            return tls.recv(65536)
        except (OSError, ssl.SSLError):
            return b""


def test_a_client_that_leaves_mid_body_leaves_a_denied_record(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    def gone(record: dict[str, Any]) -> bool:
        reasons = (record["decision"] or {}).get("reasons") or []
        return record["event"] == "denied" and any("went away" in r for r in reasons)

    before = len([r for r in gateway.records() if gone(r)])
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: Bearer {keycloak_server.token('line-monitor')}\r\n"
        "X-Data-Classification: internal\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n"
    )
    answer = _raw_request(gateway, head, b'{"model": "tiny-llama", "mess')
    assert b" 500 " not in answer.split(b"\r\n", 1)[0]
    records = gateway.wait_for(gone, before + 1)
    assert len(records) == before + 1
    assert records[-1]["client"] == "line-monitor" and records[-1]["model"] is None


def _sealed(gateway: Gateway, request_id: str) -> dict[str, Any]:
    """The request's end record with its content opened by the site key."""
    site_key = yaml.safe_load(gateway.files.config.read_text())["audit_site_key_file"]
    gateway.records_of(request_id, count=2)
    exported = subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "audit", "export", str(gateway.files.audit_dir),
         "--site-key", site_key],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    records = [json.loads(line)["record"] for line in exported.splitlines()]
    return [r for r in records if r["request_id"] == request_id][-1]


PUMP = {"type": "object", "properties": {"pump": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": "stop_pump", "parameters": PUMP}}]


def test_kept_content_is_all_the_model_saw_and_all_the_client_got(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("process-engineering")  # clearance: confidential
    body = CHAT | {"tools": TOOLS, "tool_choice": "none", "stream": True, "seed": 7}
    with (
        gateway.client(token, **{"X-Data-Classification": "confidential"}) as client,
        client.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        got = response.read()
    assert response.status_code == 200, got
    end = _sealed(gateway, response.headers["x-request-id"])
    assert end["event"] == "completed"
    seen = json.loads(end["content"]["prompt"]["text"])
    # The whole body the model received: the tools too, and what the gateway added.
    assert seen == body | {"stream_options": {"include_usage": True}}
    kept = end["content"]["completion"]["text"]
    assert kept.encode() == got and end["completion_sha256"] == hashlib.sha256(got).hexdigest()


class _Replica(BaseHTTPRequestHandler):
    """A replica that passes its health checks but takes a request and never answers it,
    or (``hang_up``) closes the connection instead, as a crashed vLLM would."""

    hang_up = False
    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        if not self.hang_up:
            self.release.wait(60)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["never-answers", "hangs-up"])
def bad_replica(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    handler = type("Handler", (_Replica,), {"hang_up": request.param,
                                            "release": threading.Event()})  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", request.param
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_a_replica_that_does_not_answer_gets_504_or_502_an_error_record_and_is_marked_down(
    project_paths: Paths, tmp_path: Path, keycloak_server: KeycloakServed,
    policy_opa: Served, vllm_server: Served, bad_replica: tuple[str, bool],
) -> None:  # fmt: skip
    url, hangs_up = bad_replica
    replica = dev_upstreams(vllm_server)[0] | {"url": url}
    with run_gateway(
        project_paths, tmp_path / "gw", keycloak_server.issuer, policy_opa.url, [replica],
        upstream_read_timeout_s=1.0, health_interval_s=300.0,
    ) as gw, _client(gw, keycloak_server) as client:  # fmt: skip
        started = time.monotonic()
        failed = client.post("/v1/chat/completions", json=CHAT)
        assert time.monotonic() - started < 30
        after = client.post("/v1/chat/completions", json=CHAT)
        metrics = client.get("/metrics").text
        records = gw.records_of(failed.headers["x-request-id"], count=2)
        next_records = gw.records_of(after.headers["x-request-id"], count=2)
    status, code = (502, "upstream") if hangs_up else (504, "upstream_timeout")
    assert failed.status_code == status, failed.text
    assert failed.json()["error"]["code"] == code and "Traceback" not in failed.text
    assert [r["event"] for r in records] == ["accepted", "error"]
    assert (records[1]["status"], records[1]["replica"]) == (status, "gpu-1")
    # Marked down: the next request finds no healthy replica (no probe for 300 s).
    assert 'sovstack_upstream_healthy{model="tiny-llama",replica="gpu-1",site="plant-a"} 0.0' in (
        metrics
    )
    assert after.status_code == 503 and after.json()["error"]["code"] == "no_replica"
    assert [r["event"] for r in next_records] == ["accepted", "error"]


def test_the_openai_sdk_can_send_a_reply_back_in_the_next_turn(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    sdk = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=keycloak_server.token("line-monitor"),
        default_headers=INTERNAL, http_client=gateway.client(), max_retries=0,
    )  # fmt: skip
    first = sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=MESSAGES, max_tokens=3)  # type: ignore[arg-type]
    turns = [*MESSAGES, first.choices[0].message, {"role": "user", "content": "And line 2?"}]
    second = sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=turns, max_tokens=3)  # type: ignore[arg-type]
    assert second.usage is not None and second.usage.completion_tokens == 3
