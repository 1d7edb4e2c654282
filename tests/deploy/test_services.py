"""The deployed stack, used from the controller as a plant application on the cluster network.

A token from the deployed Keycloak (python-keycloak, HTTPS trusting the site
CA), chat and streaming chat through the deployed gateway (the openai SDK), a
refused client, a replica refusing a call without its key, the controller's
copy of the gateway's log verifying and holding those calls, the witness's
cosigned checkpoint verifying, Prometheus with every target up, and the
services restarted with the log intact. Every address is a cluster node's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from sovstack.audit.logset import member_pubkey
from sovstack.deploy.outputs import pull_log
from tests.deploy.conftest import STATE, gateway_sdk, on_node, token  # the deploy tier's helpers

pytestmark = pytest.mark.usefixtures("first_deploy")

MODEL = "tiny-llama"
ASK = [{"role": "user", "content": "Summarise the shift log"}]


def _sovstack(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sovstack.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _log_copy(info: dict[str, Any]) -> Path:
    gateways = json.loads((STATE / "deploy.d" / "gateway.json").read_text())["gateways"]
    first = gateways[0]
    address = info["gateway_url"].split("//", 1)[1].rsplit(":", 1)[0]
    return pull_log(
        first,
        address,
        STATE / "deploy" / "audit" / first["host"],
        STATE / "cluster" / "ssh" / "known_hosts",
    )


def _verify_copy(info: dict[str, Any]) -> tuple[Path, str]:
    copy = _log_copy(info)
    pubkey = STATE / "nodes" / "gateway" / "audit-signing.key.pub"
    done = _sovstack("audit", "verify", str(copy), "--pubkey", str(pubkey))
    assert done.returncode == 0, done.stdout + done.stderr
    return copy, done.stdout


def test_deploy_json_has_the_dev_json_keys_and_prometheus(deployed: dict[str, Any]) -> None:
    assert set(deployed) == {
        "gateway_url", "ca_file", "keycloak", "clients", "opa_url", "vllm", "audit_dir",
        "prometheus_url",
    }  # fmt: skip
    assert deployed["gateway_url"].startswith("https://10.77.0.10:")
    assert deployed["opa_url"] is None
    assert {c["client_id"] for c in deployed["clients"]} >= {"line-monitor", "audit-office"}
    assert deployed["vllm"] and all(r["model"] == MODEL for r in deployed["vllm"])


def test_a_plant_app_chats_and_streams_through_the_deployed_gateway(
    deployed: dict[str, Any],
) -> None:
    sdk = gateway_sdk(deployed, token(deployed, "line-monitor"))
    answer = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    chunks = list(
        sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8, stream=True)  # type: ignore[arg-type]
    )
    assert len(chunks) > 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_client_the_policy_refuses_gets_403_with_its_reasons(deployed: dict[str, Any]) -> None:
    sdk = gateway_sdk(deployed, token(deployed, "audit-office"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=8)  # type: ignore[arg-type]
    error = caught.value.response.json()["error"]
    assert error["code"] == "policy_denied"
    assert error["message"]


def test_a_replica_refuses_a_call_without_its_key(deployed: dict[str, Any]) -> None:
    for replica in deployed["vllm"]:
        bare = httpx.get(f"{replica['url']}/v1/models", timeout=30, trust_env=False)
        assert bare.status_code == 401


def test_the_copy_of_the_log_verifies_and_holds_the_calls(deployed: dict[str, Any]) -> None:
    sdk = gateway_sdk(deployed, token(deployed, "line-monitor"))
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=ASK, max_tokens=4)  # type: ignore[arg-type]
    request_id = raw.headers["x-request-id"]
    deadline = time.monotonic() + 30
    while True:
        copy, _ = _verify_copy(deployed)
        export = _sovstack("audit", "export", str(copy))
        events = [
            json.loads(line)["record"]["event"]
            for line in export.stdout.splitlines()
            if request_id in line
        ]
        if "completed" in events or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert events == ["accepted", "completed"]


def test_the_witness_cosigns_a_checkpoint_of_each_worker_log_that_verifies(
    deployed: dict[str, Any],
) -> None:
    witness = json.loads((STATE / "deploy.d" / "audit_witness.json").read_text())["witnesses"][0]
    gateway = json.loads((STATE / "deploy.d" / "gateway.json").read_text())["gateways"][0]
    ran = on_node(witness["host"], "systemctl", "start", "--wait", "sovstack-witness.service")
    assert ran.returncode == 0, ran.stderr
    listed = on_node(witness["host"], "sh", "-c", f"ls {witness['state_dir']}/*.cosigned")
    assert listed.returncode == 0, listed.stderr
    notes = listed.stdout.split()
    # One log per worker process (the gateway role's default: one per core of the node).
    assert len(notes) == gateway["audit_workers"], notes
    for path in notes:
        note = on_node(witness["host"], "cat", path).stdout
        origin = note.split("\n", 1)[0]
        name = origin.removeprefix(gateway["audit_origin"]).lstrip("/")
        saved = STATE / "deploy" / "cosigned.note"
        saved.write_text(note)
        pubkey = member_pubkey(STATE / "nodes" / "gateway" / "audit-signing.key.pub", name)
        done = _sovstack(
            "audit", "verify-cosigned", str(saved), "--pubkey", str(pubkey),
            "--witness-pubkey", witness["public_key"], "--witness-name", witness["name"],
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"cosigned by {witness['name']}" in done.stdout


def test_prometheus_has_every_target_up(deployed: dict[str, Any]) -> None:
    deadline = time.monotonic() + 90
    while True:
        targets = httpx.get(
            f"{deployed['prometheus_url']}/api/v1/targets", timeout=30, trust_env=False
        ).json()["data"]["activeTargets"]
        down = [
            (t["scrapePool"], t["scrapeUrl"], t["lastError"])
            for t in targets
            if t["health"] != "up"
        ]
        if (targets and not down) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert targets and not down, down
    pools = {t["scrapePool"] for t in targets}
    assert len(pools) >= 5, pools


def test_every_service_restarted_comes_back_with_the_log_intact(
    deployed: dict[str, Any],
) -> None:
    _, before = _verify_copy(deployed)
    units = {
        "identity": ["keycloak"],
        "gpu-1": ["sovstack-vllm-gpu-1"],
        "gateway": ["opa", "sovstack-gateway"],
        "audit": ["prometheus"],
    }
    for node, names in units.items():
        done = on_node(node, "systemctl", "restart", *names)
        assert done.returncode == 0, (node, done.stderr)
    deadline = time.monotonic() + 240
    while True:
        try:
            sdk = gateway_sdk(deployed, token(deployed, "line-monitor"))
            answer = sdk.chat.completions.create(model=MODEL, messages=ASK, max_tokens=4)  # type: ignore[arg-type]
            break
        except (openai.APIError, httpx.HTTPError, Exception):  # still starting
            if time.monotonic() > deadline:
                raise
            time.sleep(5)
    assert answer.choices
    _, after = _verify_copy(deployed)
    entries = [int(w) for w in (before + " " + after).split() if w.isdigit()]
    assert entries, (before, after)


def test_the_whole_deployment_fits_in_12_gib(cluster_info: dict[str, Any]) -> None:
    # Proportional set size: each shared page counted once across the processes sharing it.
    pss = "cat /proc/[0-9]*/smaps_rollup 2>/dev/null | awk '/^Pss:/ {s += $2} END {print s}'"
    per_node: dict[str, float] = {}
    for node in cluster_info["nodes"]:
        done = on_node(node["name"], "sh", "-c", pss)
        assert done.returncode == 0 and done.stdout.strip().isdigit(), done.stderr
        per_node[node["name"]] = int(done.stdout.strip()) / 2**20  # kB to GiB
    used = sum(per_node.values())
    lines = [f"{name}: {gib:.2f} GiB" for name, gib in per_node.items()]
    (STATE / "deploy" / "memory.txt").write_text(
        "\n".join([*lines, f"total: {used:.2f} GiB"]) + "\n"
    )
    assert min(per_node.values()) > 0
    assert used < 12, lines
