"""A replica larger than a node: the tiny model split over the two gpu nodes, deployed by the roles.

`inventory/local-span` lays replica tiny-pp-1 over gpu-1 (plant A, its API) and
gpu-2 (plant B, the second pipeline stage, headless), pipeline parallel 2 on
vLLM's multiprocess backend, served as model tiny-llama-pp. The module deploys
it with `make deploy`'s own playbook and variables, uses it through the
deployed gateway as a plant application would, stops the second node's share
and starts it again, and ends by deploying without the overlay, which removes
it (so that the last module's second deploy changes nothing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from sovstack.deploy.ansible import Run
from tests.conftest import ROOT
from tests.deploy.conftest import (
    STATE,
    drop_count,
    extra_vars,
    gateway_sdk,
    on_node,
    playbook,
    token,
)

pytestmark = pytest.mark.usefixtures("first_deploy")

SPAN = ["-i", str(ROOT / "inventory" / "local-span")]
HEAD, SECOND = "gpu-1", "gpu-2"
HEAD_UNIT, SECOND_UNIT = "sovstack-vllm-tiny-pp-1", "sovstack-vllm-tiny-pp-1-rank1"
ASK = [{"role": "user", "content": "Which line stopped last night?"}]
# The gateway's health probe runs every 5 s and takes a replica out after two failures.
PROBE_S = 5.0


def _active(node: str, unit: str) -> str:
    return on_node(node, "systemctl", "is-active", unit).stdout.strip()


def _ask(client: openai.OpenAI, model: str) -> str:
    answer = client.chat.completions.create(
        model=model,
        messages=ASK,  # type: ignore[arg-type]
        max_tokens=16,
        temperature=0,
    )
    content = answer.choices[0].message.content
    assert content is not None
    return content


@pytest.fixture(scope="module")
def span(deployed: dict[str, Any]) -> Iterator[Run]:
    run = playbook(extra_vars(), SPAN)
    # After the deploy: loading a ruleset starts its counters again.
    drops = {node: drop_count(node) for node in (HEAD, SECOND, "gateway")}
    try:
        yield run
        # Zero egress held while the split replica loaded and served.
        assert {node: drop_count(node) for node in drops} == drops
    finally:
        gone = playbook(extra_vars())
        assert gone.returncode == 0, gone.log
    for node, unit in ((HEAD, HEAD_UNIT), (SECOND, SECOND_UNIT)):
        assert _active(node, unit) in ("inactive", "unknown")
        assert on_node(node, "test", "-e", f"/etc/systemd/system/{unit}.service").returncode == 1


def test_the_roles_deploy_one_replica_over_two_nodes(span: Run) -> None:
    assert span.returncode == 0, span.log
    assert _active(HEAD, HEAD_UNIT) == "active"
    assert _active(SECOND, SECOND_UNIT) == "active"
    # The same model folder and runtime on each node, every phone-home switch off.
    for node, unit in ((HEAD, HEAD_UNIT), (SECOND, SECOND_UNIT)):
        shown = on_node(node, "systemctl", "show", unit, "-p", "Environment", "-p", "ExecStart")
        assert "--pipeline-parallel-size 2" in shown.stdout
        assert "--distributed-executor-backend mp" in shown.stdout
        assert "/opt/sovstack/models/tiny-llama " in shown.stdout
        for switch in ("VLLM_NO_USAGE_STATS=1", "DO_NOT_TRACK=1", "HF_HUB_OFFLINE=1"):
            assert switch in shown.stdout
    second = on_node(SECOND, "systemctl", "show", SECOND_UNIT, "-p", "ExecStart").stdout
    assert "--headless" in second and "--node-rank 1" in second and "--port" not in second
    digests = {
        node: on_node(node, "sh", "-c", "cd /opt/sovstack/models/tiny-llama && sha256sum *").stdout
        for node in (HEAD, SECOND)
    }
    assert digests[HEAD] == digests[SECOND] and digests[HEAD]


def test_the_egress_firewall_opens_the_span_between_its_nodes_only(span: Run) -> None:
    rules = {
        node: on_node(node, "nft", "list", "chain", "inet", "sovstack_egress", "output").stdout
        for node in (HEAD, SECOND, "gateway", "identity")
    }
    assert "10.77.0.22" in rules[HEAD] and "29501" in rules[HEAD]
    assert "10.77.0.21" in rules[SECOND] and "29501" in rules[SECOND]
    assert "tiny-pp-1" not in rules["gateway"] + rules["identity"]


def test_the_gateway_serves_the_split_replica_as_one_and_it_answers_as_a_single_node_does(
    span: Run, deployed: dict[str, Any]
) -> None:
    client = gateway_sdk(deployed, token(deployed, "quality-lab"))
    split = _ask(client, "tiny-llama-pp")
    single = _ask(client, "tiny-llama")
    assert split == single
    listed = {model.id for model in client.models.list()}
    assert {"tiny-llama", "tiny-llama-pp"} <= listed


def test_the_policy_refuses_the_split_replica_to_a_site_its_second_node_may_not_take(
    span: Run, deployed: dict[str, Any]
) -> None:
    # line-monitor is plant A: no agreement lets plant A's internal data go to plant B's node.
    client = gateway_sdk(deployed, token(deployed, "line-monitor"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _ask(client, "tiny-llama-pp")
    error = caught.value.response.json()["error"]
    assert error["code"] == "policy_denied"
    assert _ask(client, "tiny-llama")


def _healthy() -> bool:
    """The split replica's own /health, on its first node (what the gateway probes)."""
    replicas = json.loads((STATE / "deploy.d" / "vllm.json").read_text())
    url = next(r["url"] for r in replicas if r["id"] == "tiny-pp-1")
    try:
        return httpx.get(f"{url}/health", timeout=5, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _refused(client: openai.OpenAI) -> bool:
    try:
        _ask(client, "tiny-llama-pp")
    except openai.APIStatusError as error:
        assert error.status_code == 503, error.response.text
        return True
    return False


def test_stopping_the_second_node_takes_the_replica_out_and_starting_it_brings_it_back(
    span: Run, deployed: dict[str, Any]
) -> None:
    client = gateway_sdk(deployed, token(deployed, "quality-lab"))
    assert _healthy() and _ask(client, "tiny-llama-pp")
    assert on_node(SECOND, "systemctl", "stop", SECOND_UNIT).returncode == 0
    deadline = time.monotonic() + 180
    while _healthy():
        assert time.monotonic() < deadline, "the first node still answers /health"
        time.sleep(1)
    unhealthy_at = time.monotonic()
    while not _refused(client):
        assert time.monotonic() < unhealthy_at + 3 * PROBE_S, "the gateway still routes to it"
        time.sleep(0.5)
    # The other replicas of the model next door carry on.
    assert _ask(client, "tiny-llama")

    assert on_node(SECOND, "systemctl", "start", SECOND_UNIT).returncode == 0
    deadline = time.monotonic() + 420
    while True:
        try:
            assert _ask(client, "tiny-llama-pp")
            break
        except (openai.APIStatusError, openai.APIConnectionError):
            assert time.monotonic() < deadline, "the replica did not come back"
            time.sleep(5)
