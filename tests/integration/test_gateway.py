"""The gateway in front of real Keycloak, OPA and vLLM: what a plant application sees."""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import subprocess
import sys
import time

import httpx
import openai
import pytest
import yaml

from sovstack.components.launches import VLLM_MODEL_NAME
from tests.integration.conftest import KeycloakServed, Served
from tests.integration.gateway_harness import Gateway, upstream_calls

CHAT = {"model": VLLM_MODEL_NAME, "messages": [{"role": "user", "content": "Summarise the log"}]}


def _sdk(gateway: Gateway, token: str, classification: str = "internal") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=token,
        default_headers={"X-Data-Classification": classification},
        http_client=gateway.client(),
        max_retries=0,
    )


def test_allow_a_chat_completion_through_the_openai_sdk(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    sdk = _sdk(gateway, keycloak_server.token("line-monitor"))
    reply = sdk.chat.completions.create(
        model=VLLM_MODEL_NAME,
        messages=CHAT["messages"],
        max_tokens=8,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.role == "assistant"
    assert reply.usage is not None and reply.usage.completion_tokens == 8


def test_allow_a_streamed_chat_through_the_openai_sdk_with_usage(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    sdk = _sdk(gateway, keycloak_server.token("line-monitor"))
    stream = sdk.chat.completions.create(
        model=VLLM_MODEL_NAME,
        messages=CHAT["messages"],
        max_tokens=6,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) >= 2  # streamed chunk by chunk
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_allow_a_stream_without_usage_keeps_the_usage_event_from_the_client(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    sdk = _sdk(gateway, keycloak_server.token("line-monitor"))
    chunks = list(
        sdk.completions.create(model=VLLM_MODEL_NAME, prompt="Pump", max_tokens=4, stream=True)
    )
    assert chunks and all(c.usage is None for c in chunks)


def test_every_request_is_audited_with_tokens_and_response_digest(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    with gateway.client(
        keycloak_server.token("line-monitor"), **{"X-Data-Classification": "internal"}
    ) as client:
        response = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 5})
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    events = {r["event"]: r for r in gateway.records_of(request_id, count=2)}
    assert set(events) == {"accepted", "completed"}
    done = events["completed"]
    assert done["client"] == "line-monitor" and done["site"] == "plant-a"
    assert done["data_classification"] == "internal"
    assert done["tokens"]["completion"] == 5
    assert done["status"] == 200 and done["replica"] == "gpu-1"
    import hashlib

    assert done["completion_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert events["accepted"]["decision"]["allow"] is True
    # The signed bundle's revision (version + content hash) names the policy that decided.
    assert re.fullmatch(r"\d+\.\d+\.\d+\+[0-9a-f]{16}", done["decision"]["policy_revision"])


def test_the_audit_log_verifies_offline(gateway: Gateway, keycloak_server: KeycloakServed) -> None:
    with gateway.client(
        keycloak_server.token("line-monitor"), **{"X-Data-Classification": "internal"}
    ) as client:
        assert (
            client.post(
                "/v1/completions", json={"model": VLLM_MODEL_NAME, "prompt": "x", "max_tokens": 2}
            ).status_code
            == 200
        )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sovstack.cli",
            "audit",
            "verify",
            str(gateway.files.audit_dir),
            "--pubkey",
            str(gateway.files.audit_public_key),
            "--check-records",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_deny_without_a_token_with_401_and_nothing_upstream(
    gateway: Gateway, vllm_server: Served
) -> None:
    before = upstream_calls(vllm_server.url)
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert upstream_calls(vllm_server.url) == before
    sdk = _sdk(gateway, "not-a-token")
    with pytest.raises(openai.AuthenticationError):
        sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=CHAT["messages"])  # type: ignore[arg-type]


def test_deny_a_role_the_policy_refuses_with_403_and_record_why(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served
) -> None:
    before = upstream_calls(vllm_server.url)
    sdk = _sdk(gateway, keycloak_server.token("audit-office"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=CHAT["messages"])  # type: ignore[arg-type]
    assert upstream_calls(vllm_server.url) == before
    assert caught.value.response.json()["error"]["code"] == "policy_denied"
    records = gateway.records_of(caught.value.response.headers["x-request-id"])
    assert [r["event"] for r in records] == ["denied"]
    assert records[0]["client"] == "audit-office"
    assert records[0]["decision"]["allow"] is False and records[0]["decision"]["reasons"]


def test_deny_an_unknown_classification(gateway: Gateway, keycloak_server: KeycloakServed) -> None:
    sdk = _sdk(gateway, keycloak_server.token("line-monitor"), classification="top-secret-ish")
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=CHAT["messages"])  # type: ignore[arg-type]


def test_models_lists_only_what_the_caller_may_use(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    raw = _sdk(gateway, keycloak_server.token("line-monitor")).models.with_raw_response.list()
    allowed = raw.parse()
    assert [m.id for m in allowed.data] == [VLLM_MODEL_NAME]
    # A listing is a request like any other: accepted, then exactly one end.
    records = gateway.records_of(raw.headers["x-request-id"], count=2)
    assert [(r["event"], r.get("status")) for r in records] == [
        ("accepted", None),
        ("completed", 200),
    ]
    refused = _sdk(gateway, keycloak_server.token("audit-office")).models.list()
    assert [m.id for m in refused.data] == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("POST", "/pause"),
        ("POST", "/invocations"),
        ("GET", "/health"),
        ("GET", "/version"),
        ("POST", "/v1/chat/completions/../../tokenize"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("POST", "/v1/responses"),
    ],
)
def test_vllms_own_endpoints_are_not_reachable(
    gateway: Gateway, keycloak_server: KeycloakServed, method: str, path: str
) -> None:
    with gateway.client(keycloak_server.token("line-monitor")) as client:
        response = client.request(method, path, json={})
    assert response.status_code in (404, 405)
    assert "error" in response.json()


def test_the_gateways_own_metrics_are_not_vllms(gateway: Gateway) -> None:
    with gateway.client() as client:
        text = client.get("/metrics").text
    assert "sovstack_requests_total" in text
    assert "sovstack_audit_writable 1.0" in text
    assert "vllm:" not in text


def test_limits_refuse_oversized_and_over_cap_requests(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    with gateway.client(
        keycloak_server.token("line-monitor"), **{"X-Data-Classification": "internal"}
    ) as client:
        too_big = client.post(
            "/v1/completions",
            content=b"x" * (2 << 20),
            headers={"content-type": "application/json"},
        )
        assert too_big.status_code == 413
        assert client.post("/v1/chat/completions", json=CHAT | {"n": 99}).status_code == 400
        huge = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 10**6})
        assert huge.status_code == 400
        assert huge.json()["error"]["param"] == "max_tokens"
        refused = gateway.records_of(huge.headers["x-request-id"])
        assert [r["event"] for r in refused] == ["denied"]
        assert "from 1 to 4096" in refused[0]["decision"]["reasons"][0]  # the limit, named
        bad = client.post(
            "/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"


def test_readyz_reports_every_dependency(gateway: Gateway) -> None:
    with gateway.client() as client:
        body = client.get("/readyz").json()
    assert body == {
        "ready": True,
        "checks": {"jwks": True, "policy": True, "audit": True, "upstream": True},
    }


def test_a_client_that_disconnects_mid_stream_is_recorded_as_aborted(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    body = json.dumps({
        "model": VLLM_MODEL_NAME,
        # Sixteen sequences as long as the replica allows (256 tokens of context),
        # so that the client is gone long before the replica could finish them.
        "prompt": ["Pump"] * 4, "n": 4, "max_tokens": 240, "ignore_eos": True,
        "stream": True,
    }).encode()  # fmt: skip
    host, port = gateway.url.removeprefix("https://").split(":")
    request = (
        f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {keycloak_server.token('line-monitor')}\r\n"
        "X-Data-Classification: internal\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    context = ssl.create_default_context(cafile=str(gateway.files.ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=60) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        received = b""
        deadline = time.monotonic() + 60
        while b"data: {" not in received:  # the first event has arrived: hang up now
            assert time.monotonic() < deadline, f"no event within 60 s: {received[:500]!r}"
            chunk = tls.recv(65536)  # each recv is bounded by the socket's 60 s timeout
            assert chunk, f"the gateway closed before the first event: {received[:500]!r}"
            received += chunk
    head = received.split(b"\r\n\r\n", 1)[0].decode()
    assert head.startswith("HTTP/1.1 200")
    request_id = re.search(r"(?im)^x-request-id: (\w+)", head).group(1)  # type: ignore[union-attr]
    records = gateway.records_of(request_id, count=2)
    assert [r["event"] for r in records] == ["accepted", "aborted"], records


def test_http_is_not_served_on_the_https_port(gateway: Gateway) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(
            gateway.url.replace("https://", "http://") + "/healthz", trust_env=False, timeout=5
        )


def test_deny_plant_b_restricted_data_to_a_plant_a_replica(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served
) -> None:
    # quality-lab is at plant B; the only replica here is at plant A, and no
    # agreement lets restricted data cross: sovereignty is the policy's decision.
    before = upstream_calls(vllm_server.url)
    sdk = _sdk(gateway, keycloak_server.token("quality-lab"), classification="restricted")
    with pytest.raises(openai.PermissionDeniedError):
        sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=CHAT["messages"])  # type: ignore[arg-type]
    assert upstream_calls(vllm_server.url) == before
    internal = _sdk(gateway, keycloak_server.token("quality-lab"), classification="internal")
    reply = internal.chat.completions.create(
        model=VLLM_MODEL_NAME,
        messages=CHAT["messages"],
        max_tokens=2,  # type: ignore[arg-type]
    )
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_a_request_the_replica_refuses_comes_back_in_openai_shape(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    with gateway.client(
        keycloak_server.token("process-engineering"), **{"X-Data-Classification": "internal"}
    ) as client:
        # The tiny model is a generator: it serves no embeddings.
        embed = client.post("/v1/embeddings", json={"model": VLLM_MODEL_NAME, "input": "pump"})
        # Longer than the replica's context (256 tokens): vLLM refuses it.
        long = client.post(
            "/v1/completions", json={"model": VLLM_MODEL_NAME, "prompt": "x", "max_tokens": 1000}
        )
    for response in (embed, long):
        assert 400 <= response.status_code < 500, response.text
        error = response.json()["error"]
        assert error["code"] == "upstream_refused" and error["message"]
        assert "Traceback" not in response.text


def test_content_is_kept_encrypted_only_when_the_policy_says_so(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    token = keycloak_server.token("process-engineering")  # clearance: confidential
    with gateway.client(token, **{"X-Data-Classification": "confidential"}) as client:
        kept = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 3})
    with gateway.client(token, **{"X-Data-Classification": "internal"}) as client:
        plain = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 3})
    assert kept.status_code == plain.status_code == 200
    sealed = gateway.records_of(kept.headers["x-request-id"], count=2)[-1]
    assert sealed["decision"]["obligations"]["store_content"] is True
    assert sealed["content"]["prompt"]["alg"] == "AES-256-GCM"
    assert "Summarise the log" not in json.dumps(sealed)  # no clear text in the log
    assert gateway.records_of(plain.headers["x-request-id"], count=2)[-1]["content"] is None

    site_key = yaml.safe_load(gateway.files.config.read_text())["audit_site_key_file"]
    exported = subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "audit", "export", str(gateway.files.audit_dir),
         "--site-key", site_key],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    opened = [
        json.loads(line)["record"]
        for line in exported.splitlines()
        if json.loads(line)["record"]["request_id"] == kept.headers["x-request-id"]
    ][-1]
    assert "Summarise the log" in opened["content"]["prompt"]["text"]
    assert opened["content"]["completion"]["text"]


def test_allow_the_openai_sdk_with_no_classification_header_as_the_clients_default(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    # The SDK as a plant application uses it: the token as the API key, nothing else.
    sdk = openai.OpenAI(
        base_url=f"{gateway.url}/v1",
        api_key=keycloak_server.token("line-monitor"),
        http_client=gateway.client(),
        max_retries=0,
    )
    raw = sdk.chat.completions.with_raw_response.create(
        model=VLLM_MODEL_NAME,
        messages=CHAT["messages"],
        max_tokens=2,  # type: ignore[arg-type]
    )
    reply = raw.parse()
    assert reply.usage is not None and reply.usage.completion_tokens == 2
    records = gateway.records_of(raw.headers["x-request-id"], count=2)
    assert [r["event"] for r in records] == ["accepted", "completed"]
    # The classification the policy judged by (line-monitor's default) is what is recorded.
    assert {r["data_classification"] for r in records} == {"internal"}


def test_a_clients_default_decides_what_is_kept(
    gateway: Gateway, keycloak_server: KeycloakServed
) -> None:
    # process-engineering's data is confidential unless it says otherwise: kept, encrypted.
    with gateway.client(keycloak_server.token("process-engineering")) as client:
        response = client.post("/v1/chat/completions", json=CHAT | {"max_tokens": 2})
    assert response.status_code == 200, response.text
    records = gateway.records_of(response.headers["x-request-id"], count=2)
    assert records[-1]["data_classification"] == "confidential"
    assert records[-1]["decision"]["obligations"]["store_content"] is True
    assert records[-1]["content"]["prompt"]["alg"] == "AES-256-GCM"


def test_deny_declaring_data_below_the_clients_floor_with_403_and_record_why(
    gateway: Gateway, keycloak_server: KeycloakServed, vllm_server: Served
) -> None:
    before = upstream_calls(vllm_server.url)
    sdk = _sdk(gateway, keycloak_server.token("line-monitor"), classification="public")
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.chat.completions.create(model=VLLM_MODEL_NAME, messages=CHAT["messages"])  # type: ignore[arg-type]
    assert upstream_calls(vllm_server.url) == before
    error = caught.value.response.json()["error"]
    assert error["code"] == "policy_denied"
    assert "may not declare its data public" in error["message"]
    records = gateway.records_of(caught.value.response.headers["x-request-id"])
    assert [r["event"] for r in records] == ["denied"]
    assert records[0]["data_classification"] == "public"
    assert records[0]["decision"]["allow"] is False
    assert any("at least internal" in r for r in records[0]["decision"]["reasons"])


def test_deny_a_forged_token_without_copying_its_header_into_the_record(
    gateway: Gateway,
) -> None:
    def b64(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = {"alg": "X" * 4000 + "\u2028", "kid": "k", "typ": "JWT"}
    forged = f"{b64(header)}.{b64({})}.c2ln"
    with gateway.client(forged) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 401
    assert "XXXX" not in response.text
    records = gateway.records_of(response.headers["x-request-id"])
    assert [r["event"] for r in records] == ["denied"]
    assert "XXXX" not in json.dumps(records[0])
