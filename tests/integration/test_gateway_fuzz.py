"""Schemathesis against a real gateway, from the OpenAPI document kept in the repository.

Every operation of services/sovstack/gateway/openapi.yaml is fuzzed with a
valid token, in both of schemathesis's modes (bodies the document allows, and
bodies it refuses), in front of real Keycloak, OPA (the project's policies)
and vLLM. Whatever the input, the gateway must:

* never answer 5xx (the stack is healthy: a 5xx is the gateway's own fault);
* give only statuses and content types the document lists;
* answer in OpenAI's shape: ``{"error": {message, type, param, code}}`` for
  an error, the documented object (or an event stream) for a success;
* carry ``X-Request-ID``, and leave that request's records in the audit log:
  one ``denied``, or one ``accepted`` and exactly one end after it.

Generation is derandomized (a fixed seed per operation) and bounded, so a CI
run is reproducible and takes a few minutes on two cores. The document is
narrowed to this test site before generating: the served model, the
classifications the fuzzing client is cleared for, token ids in the model's
vocabulary and small token budgets are the valid values (the negative mode
still sends every other value).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, status_code_conformance

from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "services/sovstack/gateway/openapi.yaml"
CLASSIFICATIONS = ROOT / "policies/data/classifications.json"
SEED = 14  # the number: any fixed value makes the run reproducible
ENDS = frozenset({"completed", "aborted", "error"})
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
SUCCESS_OBJECTS = {
    "/v1/chat/completions": "chat.completion",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "list",
    "/v1/models": "list",
}


def _site_profile(document: dict[str, Any]) -> dict[str, Any]:
    """The document with this test site's values as the valid ones, and small budgets."""
    narrowed = copy.deepcopy(document)
    schemas = narrowed["components"]["schemas"]
    schemas["Model"] = {"type": "string", "enum": [VLLM_MODEL_NAME]}
    # What the fuzzing client (line-monitor, cleared for internal data) may send; the
    # negative mode still sends the site's other classes, unknown ones and none.
    site = json.loads(CLASSIFICATIONS.read_text())["plant"]["classifications"]
    cleared = [name for name, data in site.items() if data["rank"] <= site["internal"]["rank"]]
    header = narrowed["components"]["parameters"]["DataClassification"]
    header["required"] = True
    header["schema"] = {"type": "string", "enum": sorted(cleared)}
    schemas["TokenIds"]["items"]["maximum"] = 500  # the tiny model's vocabulary
    for name in ("ChatCompletionRequest", "CompletionRequest"):
        fields = schemas[name]["properties"]
        for key in ("max_tokens", "max_completion_tokens"):
            if key in fields:
                fields[key] = {"type": "integer", "minimum": 1, "maximum": 8, "nullable": True}
        for key in ("n", "best_of"):
            if key in fields:
                fields[key] = {"type": "integer", "minimum": 1, "maximum": 2, "nullable": True}
    schemas["ChatCompletionRequest"]["properties"]["messages"]["maxItems"] = 4
    return narrowed


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"mode": "all", "deterministic": True},
        # The fuzzing phase only: its example count is what bounds the run.
        "phases": {"examples": {"enabled": False}, "coverage": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_dict(
    _site_profile(yaml.safe_load(DOCUMENT.read_text())), config=CONFIG
)


def _header(response: schemathesis.Response, name: str) -> str | None:
    for key, values in response.headers.items():
        if key.lower() == name:
            return values[0] if values else None
    return None


def _error_shaped(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (
        isinstance(error, dict)
        and set(error) >= {"message", "type", "param", "code"}
        and isinstance(error["message"], str)
        and isinstance(error["type"], str)
        and all(error[k] is None or isinstance(error[k], str) for k in ("param", "code"))
    )


def _event_stream_shaped(text: str) -> bool:
    events = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        return False
    for event in events[:-1]:
        try:
            chunk = json.loads(event)
        except ValueError:
            return False
        if not isinstance(chunk, dict) or ("error" in chunk and not _error_shaped(chunk)):
            return False
    return True


@schemathesis.check
def openai_shaped(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Errors in OpenAI's error object; successes the documented object or an event stream."""
    path, status = case.path, response.status_code
    content_type = _header(response, "content-type") or ""
    if path == "/metrics" and status == 200:
        return
    if content_type.startswith("text/event-stream"):
        assert status == 200 and _event_stream_shaped(response.content.decode("utf-8", "replace"))
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{status} answer is not JSON: {response.content[:200]!r}") from None
    if path in PROBES and status in (200, 503) and isinstance(body, dict) and "error" not in body:
        return  # the probes' own documented bodies (a 503 /readyz says which check failed)
    if status >= 400:
        assert _error_shaped(body), f"{status} answer is not an OpenAI error: {body!r:.300}"
    else:
        assert isinstance(body, dict) and body.get("object") == SUCCESS_OBJECTS[path], body


@pytest.fixture(scope="module")
def fuzz_gateway(
    project_paths: Paths,
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> Iterator[Gateway]:
    """A gateway of this module's own: the fuzzer's records are all its log holds."""
    with run_gateway(
        project_paths,
        tmp_path_factory.mktemp("fuzz-gateway"),
        keycloak_server.issuer,
        policy_opa.url,
        dev_upstreams(vllm_server),
        rate_limit_per_client=1000.0,
        rate_limit_burst=1000,
    ) as gw:
        yield gw


@pytest.fixture(scope="module")
def token(keycloak_server: KeycloakServed) -> str:
    return keycloak_server.token("line-monitor")


def _trail(audit_dir: Path, request_id: str) -> list[str]:
    """The events the log holds for one request, in log order."""
    return [
        record["event"]
        for record in (decode_entry(line)[2] for _, line, _ in Scanner(audit_dir))
        if record["request_id"] == request_id
    ]


def _complete(events: list[str]) -> bool:
    return events == ["denied"] or (
        len(events) == 2 and events[0] == "accepted" and events[1] in ENDS
    )


def _assert_recorded(gateway: Gateway, request_id: str, status: int) -> None:
    deadline = time.monotonic() + 10  # the end record follows the response by a moment
    events = _trail(gateway.files.audit_dir, request_id)
    while not _complete(events) and time.monotonic() < deadline:
        time.sleep(0.05)
        events = _trail(gateway.files.audit_dir, request_id)
    assert _complete(events), f"request {request_id} ({status}) left the records {events}"
    if 200 <= status < 300:
        assert events == ["accepted", "completed"], f"request {request_id}: {events}"


@schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    phases=[Phase.generate],  # no shrinking: a failure is reported as found, in bounded time
    suppress_health_check=list(HealthCheck),
)
def test_any_input_gets_a_documented_openai_answer_and_its_records(
    case: schemathesis.Case, fuzz_gateway: Gateway, token: str
) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
    response = case.call(
        base_url=fuzz_gateway.url, verify=str(fuzz_gateway.files.ca_file), timeout=120
    )
    case.validate_response(
        response,
        checks=[
            not_a_server_error, status_code_conformance, content_type_conformance, openai_shaped,
        ],
    )  # fmt: skip
    request_id = _header(response, "x-request-id")
    assert request_id, f"{response.status_code} answer without X-Request-ID"
    if case.path not in PROBES:
        _assert_recorded(fuzz_gateway, request_id, response.status_code)
