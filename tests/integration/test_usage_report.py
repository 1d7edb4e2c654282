"""``sovstack usage report`` against a real gateway: its totals are what the clients were told.

A gateway of its own (so that no other test's requests are in its log) in
front of the real Keycloak, OPA and vLLM. Two clients send chats and
completions with the OpenAI SDK, plain and streamed with ``include_usage``;
the usage each client received is summed per client and model, and the
report, read from the audit log alone, must give the same sums.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway
from tests.integration.test_gateway import _sdk

CLIENTS = ("line-monitor", "process-engineering")
MESSAGES = [{"role": "user", "content": "Summarise the shift log of line 4"}]


@pytest.fixture(scope="module")
def own_gateway(
    project_paths: Paths,
    tmp_path_factory: pytest.TempPathFactory,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> Iterator[Gateway]:
    state = tmp_path_factory.mktemp("usage-gateway")
    with run_gateway(
        project_paths, state, keycloak_server.issuer, policy_opa.url, dev_upstreams(vllm_server)
    ) as gw:
        yield gw


def _calls(sdk: openai.OpenAI, n: int) -> list[Any]:
    """Four kinds of request; each returns the ``usage`` the client was given."""
    streamed_chat = sdk.chat.completions.create(
        model=VLLM_MODEL_NAME, messages=MESSAGES, max_tokens=3 + n,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    streamed_text = sdk.completions.create(
        model=VLLM_MODEL_NAME, prompt="Pump 7 pressure", max_tokens=2 + n, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    return [
        sdk.chat.completions.create(
            model=VLLM_MODEL_NAME,
            messages=MESSAGES,
            max_tokens=4 + n,  # type: ignore[arg-type]
        ).usage,
        sdk.completions.create(
            model=VLLM_MODEL_NAME, prompt="Valve " * (n + 1), max_tokens=5
        ).usage,
        [c for c in streamed_chat if c.usage][-1].usage,
        [c for c in streamed_text if c.usage][-1].usage,
    ]


def _report(gateway: Gateway, fmt: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sovstack.cli", "usage", "report", str(gateway.files.audit_dir),
         "--pubkey", str(gateway.files.audit_public_key), "--format", fmt, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_report_totals_equal_the_usage_the_clients_received(
    own_gateway: Gateway, keycloak_server: KeycloakServed, tmp_path: Path
) -> None:
    received: dict[tuple[str, str], Counter[str]] = {}
    requests = 0
    for client in CLIENTS:
        sdk = _sdk(own_gateway, keycloak_server.token(client))
        sums = received.setdefault((client, VLLM_MODEL_NAME), Counter())
        for n in range(2 if client == CLIENTS[0] else 1):
            for usage in _calls(sdk, n):
                assert usage is not None and usage.completion_tokens > 0
                sums.update(prompt_tokens=usage.prompt_tokens,
                            completion_tokens=usage.completion_tokens, requests=1)  # fmt: skip
                requests += 1
    # A refused request is no usage: it must not appear in the report.
    refused = _sdk(own_gateway, keycloak_server.token("quality-lab"), "restricted")
    with pytest.raises(openai.PermissionDeniedError):
        refused.chat.completions.create(model=VLLM_MODEL_NAME, messages=MESSAGES)  # type: ignore[arg-type]
    # Every request's records are in, and a checkpoint covers them (published within 1 s).
    expected_entries = 2 * requests + 1
    deadline = time.monotonic() + 30
    while True:
        result = _report(own_gateway, "json")
        assert result.returncode == 0, result.stdout + result.stderr
        doc = json.loads(result.stdout)
        if doc["checkpoints"][0]["size"] >= expected_entries or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert doc["checkpoints"][0]["size"] == expected_entries
    reported = {
        (g["client"], g["model"]): Counter(
            prompt_tokens=g["prompt_tokens"], completion_tokens=g["completion_tokens"],
            requests=g["requests"],
        )
        for g in doc["groups"]
    }  # fmt: skip
    assert reported == received
    for g in doc["groups"]:
        assert g["completed"] == g["requests"] and g["prompt_tokens_unknown"] == 0
        # The dev replica runs on a CPU with no energy counter: unknown, not zero.
        assert g["energy_j_unknown"] == g["requests"]
    total = doc["total"]
    assert total["requests"] == requests
    assert total["completion_tokens"] == sum(c["completion_tokens"] for c in received.values())
    checkpoint = doc["checkpoints"][0]
    assert checkpoint["origin"] == "sovstack-dev-gateway"
    # The page and the table name the same checkpoint.
    page = tmp_path / "usage.html"
    html = _report(own_gateway, "html", "--out", str(page), "--by", "client,model,site,day")
    assert html.returncode == 0, html.stderr
    text = page.read_text()
    assert checkpoint["root"] in text and "<script" not in text and "<svg" in text
    table = _report(own_gateway, "csv", "--by", "client")
    assert table.returncode == 0 and table.stdout.count("line-monitor,") == 1
