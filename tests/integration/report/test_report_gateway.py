"""The report over a log the real gateway wrote, in front of real Keycloak, OPA and vLLM."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from sovstack.audit.checkpoint import open_checkpoint
from sovstack.audit.inclusion import latest_note
from sovstack.audit.keys import load_public_key
from sovstack.audit.segments import Scanner
from sovstack.audit.witness import witness
from sovstack.core.paths import Paths
from sovstack.report import Clock, LogInput, build_report
from tests.conftest import ROOT
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway
from tests.integration.report.conftest import Site
from tests.integration.report.test_report_catalogue import HOST_CHECK

CHAT = {"model": "tiny-llama", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


def _chat(gw: Gateway, token: str) -> int:
    with gw.client(token, **{"X-Data-Classification": "internal"}) as client:
        return client.post("/v1/chat/completions", json=CHAT).status_code


def _published(gw: Gateway) -> int:
    """Wait until a checkpoint covers every durable entry; return how many."""
    key = load_public_key(gw.files.audit_public_key)
    deadline = time.monotonic() + 30
    while True:
        entries = sum(1 for _ in Scanner(gw.files.audit_dir))
        size = open_checkpoint(latest_note(gw.files.audit_dir), key).size
        if size == entries or time.monotonic() > deadline:
            return size
        time.sleep(0.2)


def test_a_clean_run_over_the_real_gateways_log_exits_0(
    project_paths: Paths,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
    site: Site,
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    sc = policies / "controls" / "nist_800_53_rev5" / "sc.yml"
    sc.write_text(sc.read_text().replace(HOST_CHECK, ""))  # this machine is not an isolated node
    with run_gateway(
        project_paths,
        tmp_path / "gw",
        keycloak_server.issuer,
        policy_opa.url,
        dev_upstreams(vllm_server),
    ) as gw:
        assert _chat(gw, keycloak_server.token("line-monitor")) == 200
        assert _chat(gw, keycloak_server.token("audit-office")) == 403
        assert _published(gw) == 3
        public = load_public_key(gw.files.audit_public_key)
        witness(gw.files.audit_dir, public, tmp_path / "witness")
        assert _chat(gw, keycloak_server.token("process-engineering")) == 200
        assert _published(gw) == 5
        inputs = site.inputs(
            policies,
            logs=(LogInput(gw.files.audit_dir, gw.files.audit_public_key),),
            witness_state=tmp_path / "witness",
            bundle=site.real_bundle,
        )
        outcome = build_report(inputs, tmp_path / "pack", site.report_key, Clock())
    found = {f.key: f for f in outcome.findings}
    assert outcome.exit_code == 0, {k: f.reason for k, f in found.items() if f.reason}
    for key in ("nist_800_53_rev5/AU-9", "iso_27001_2022/A.8.15", "eu_ai_act/Art.12"):
        assert found[key].state == "satisfied", key
    assert found["eu_ai_act/Art.19"].state == "cannot-yet-be-shown"  # a log minutes old
    witness_check = next(c for c in found["nist_800_53_rev5/AU-9"].checks if "witness" in c.check)
    assert "size 3 -> 5" in witness_check.message
