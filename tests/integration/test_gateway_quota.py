"""Quotas through the real stack: spent, refused with the reason, still refused after a restart.

The real Keycloak and vLLM, and an OPA of its own serving the project's
policies (a signed bundle, as ``make dev`` builds it) with small budgets in
place of policies/data/quotas.json: line-monitor may send 2 requests a day,
process-engineering 1 token a day (so its first request spends it). A
gateway of its own spends them, is refused, is restarted on the same audit
folder and state, and is still refused; a gateway whose log holds only
yesterday's usage starts the day afresh.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from sovstack.audit import AuditLog, Decision, build_record, load_signing_key
from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.devstack.gatewaysetup import prepare_gateway
from sovstack.policy import serve as policy_serve
from tests.integration.conftest import KeycloakServed, Served, _serve, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway

BUDGETS = {
    "clients": {
        "line-monitor": {"period": "day", "requests": 2},
        "process-engineering": {"period": "day", "tokens": 1},
    },
    "roles": {},
}
CHAT = {"model": VLLM_MODEL_NAME, "max_tokens": 2,
        "messages": [{"role": "user", "content": "Summarise the shift log of line 4"}]}  # fmt: skip


@pytest.fixture(scope="module")
def quota_opa(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The project's policies with small budgets, built, signed and served as make dev does."""
    root = tmp_path_factory.mktemp("quota-policies")
    shutil.copytree(project_paths.policies, root / "policies")
    (root / ".cache").symlink_to(project_paths.cache)  # the OPA binary
    (root / "policies" / "data" / "quotas.json").write_text(
        json.dumps({"plant": {"quotas": BUDGETS}})
    )
    work = tmp_path_factory.mktemp("quota-opa")
    port = services.free_port()
    launch = policy_serve.dev_opa(Paths(root, work), port, lambda _: None)
    for running in _serve(launch, work / "opa.log"):
        yield Served(url=f"http://127.0.0.1:{port}", log=running.log)


@pytest.fixture
def start(
    project_paths: Paths, tmp_path: Path, keycloak_server: KeycloakServed,
    quota_opa: Served, vllm_server: Served,
) -> Callable[[], AbstractContextManager[Gateway]]:  # fmt: skip
    """Start a gateway on this test's state folder (the same audit log each time)."""
    return functools.partial(
        run_gateway, project_paths, tmp_path, keycloak_server.issuer, quota_opa.url,
        dev_upstreams(vllm_server),
    )  # fmt: skip


def _sample(metrics: str, prefix: str) -> float:
    """The value of the one sample whose line starts with ``prefix``."""
    [line] = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.rsplit(" ", 1)[1])


def _chat(gateway: Gateway, token: str) -> Any:
    with gateway.client(token, **{"X-Data-Classification": "internal"}) as http:
        return http.post("/v1/chat/completions", json=CHAT)


def test_a_spent_budget_is_refused_across_a_restart_until_the_next_period(
    start: Callable[[], AbstractContextManager[Gateway]], keycloak_server: KeycloakServed
) -> None:
    lm, pe = keycloak_server.token("line-monitor"), keycloak_server.token("process-engineering")
    with start() as gw:
        assert [_chat(gw, lm).status_code for _ in range(2)] == [200, 200]
        refused = _chat(gw, lm)
        assert _chat(gw, pe).status_code == 200  # 0 tokens used: its budget has room
        # Tokens count from the end record, written just after the answer: wait for it.
        ends = gw.wait_for(lambda r: r["event"] == "completed", 3)
        tokens_spent = _chat(gw, pe)
        with gw.client() as http:
            metrics = http.get("/metrics").text
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "policy_denied"
    assert "quota spent" in refused.json()["error"]["message"]
    assert "requests" in refused.json()["error"]["message"]
    assert tokens_spent.status_code == 403 and "tokens" in tokens_spent.json()["error"]["message"]
    # The dev replica runs on a CPU: time is measured, energy is not, and says why.
    for end in ends:
        assert end["replica_us"] > 0 and 0 < end["gpu_us"] <= end["replica_us"]
        assert end["energy_mj"] is None and "no energy counter" in end["energy_unmeasured"]
    assert _sample(metrics, 'sovstack_refusals_total{reason="policy_denied"}') == 2
    assert _sample(metrics, 'sovstack_energy_unmeasured_requests_total{client="line-monitor"') == 2
    for stage in ("authenticate", "authorize", "audit", "upstream_first_byte", "total"):
        assert _sample(metrics, f'sovstack_stage_seconds_count{{stage="{stage}"}}') >= 3

    with start() as again:  # the same audit folder: usage rebuilt from it
        after = _chat(again, lm)
        assert _chat(again, pe).status_code == 403
        denied = [r for r in again.records() if r["event"] == "denied"]
    assert after.status_code == 403 and "quota spent" in after.json()["error"]["message"]
    assert any("quota spent" in reason for reason in denied[-1]["decision"]["reasons"])
    assert again.verify_log().returncode == 0


def test_usage_of_an_earlier_day_does_not_count_today(
    start: Callable[[], AbstractContextManager[Gateway]], tmp_path: Path,
    keycloak_server: KeycloakServed, quota_opa: Served,
) -> None:  # fmt: skip
    # The same gateway files the harness uses; its log holds yesterday's spent budget.
    files = prepare_gateway(tmp_path, 1, keycloak_server.issuer, quota_opa.url, [])
    yesterday = datetime.now(UTC) - timedelta(days=1)
    anyio.run(_spent_yesterday, files.audit_dir, tmp_path / "keys" / "audit-signing.key",
              yesterday)  # fmt: skip

    lm = keycloak_server.token("line-monitor")
    with start() as gw:
        assert _chat(gw, lm).status_code == 200
        assert _chat(gw, lm).status_code == 200
        assert _chat(gw, lm).status_code == 403  # today's two are spent now


async def _spent_yesterday(audit_dir: Path, key: Path, when: datetime) -> None:
    log = AuditLog.open(audit_dir, load_signing_key(key), "sovstack-dev-gateway")
    try:
        for i in range(3):
            who: dict[str, Any] = {
                "request_id": f"yesterday-{i}", "route": "/v1/chat/completions",
                "subject": "sub", "client": "line-monitor", "roles": ["operator"],
                "site": "plant-a", "model": VLLM_MODEL_NAME, "time": when,
                "decision": Decision(True, ["within quota"]),
            }  # fmt: skip
            await log.append(build_record(event="accepted", **who))
            await log.append(build_record(event="completed", status=200, prompt_tokens=9,
                                          completion_tokens=2, **who))  # fmt: skip
    finally:
        await log.aclose()
