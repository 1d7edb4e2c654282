"""The signed policy bundle, served by the real OPA exactly as `make dev` serves it.

A bundle signed with the project's key loads and answers the gateway's
contract; one that was changed after signing, signed by another key, or
stripped of its signature is refused: OPA exits instead of serving it.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sovstack.core import services
from sovstack.core.errors import ComponentError
from sovstack.core.paths import Paths
from sovstack.policy import bundle, keys, serve

GPU_1 = {"id": "gpu-1", "model": "tiny-llama", "site": "plant-a", "jurisdiction": "DE",
         "hosting": "on-prem"}  # fmt: skip
GPU_B1 = {**GPU_1, "id": "gpu-b1", "site": "plant-b"}


@dataclass(frozen=True)
class Signed:
    built: bundle.BuiltBundle
    pair: keys.KeyPair


@dataclass(frozen=True)
class OpaServed:
    url: str
    log: Path
    signed: Signed


@pytest.fixture(scope="module")
def signed(project_paths: Paths, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    work = tmp_path_factory.mktemp("bundle")
    pair = keys.generate(work / "keys")
    return Signed(bundle.build(project_paths, pair.private, work / "bundle.tar.gz"), pair)


@pytest.fixture(scope="module")
def opa(
    project_paths: Paths, signed: Signed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OpaServed]:
    port = services.free_port()
    launch = serve.opa_launch(project_paths, port, signed.built.path, signed.pair.public)
    running = services.start(launch, tmp_path_factory.mktemp("opa") / "opa.log")
    try:
        services.wait_ready(running)
        yield OpaServed(f"http://127.0.0.1:{port}", running.log, signed)
    finally:
        services.stop(running.pid)


def _ask(opa: OpaServed, rule: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{opa.url}/v1/data/sovstack/{rule}?provenance=true", json={"input": body}, trust_env=False
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def _chat(client_id: str, roles: list[str], site: str, clearance: str | None, **extra: Any) -> Any:
    return {
        "subject": {"sub": f"sub-{client_id}", "client_id": client_id, "roles": roles,
                    "site": site, "clearance": clearance, "groups": ["plant-staff"]},
        "action": {"route": "/v1/chat/completions", "method": "POST", "kind": "chat"},
        "model": "tiny-llama",
        "data_classification": "internal",
        "replicas": [GPU_1, GPU_B1],
        "request": {"max_tokens": 64, "stream": False},
        # As the gateway always sends it: the client's usage in the current day and month.
        "usage": {"day": {"period": "2026-12-07", "requests": 0, "tokens": 0, "joules": 0},
                  "month": {"period": "2026-12", "requests": 0, "tokens": 0, "joules": 0}},
        **extra,
    }  # fmt: skip


def test_a_signed_bundle_loads_and_line_monitor_may_chat_with_internal_data(opa: OpaServed) -> None:
    answer = _ask(opa, "decision", _chat("line-monitor", ["operator"], "plant-a", "internal"))
    assert answer["result"]["allow"] is True
    assert answer["result"]["allowed_replicas"] == ["gpu-1"]
    assert answer["result"]["obligations"] == {"store_content": False, "max_tokens": 256}
    assert answer["result"]["reasons"]


def test_the_decision_carries_the_bundle_revision(opa: OpaServed) -> None:
    answer = _ask(opa, "decision", _chat("line-monitor", ["operator"], "plant-a", "internal"))
    revisions = [b["revision"] for b in answer["provenance"]["bundles"].values()]
    assert revisions == [opa.signed.built.revision]


def test_audit_office_may_not_call_chat_completions(opa: OpaServed) -> None:
    result = _ask(opa, "decision", _chat("audit-office", ["auditor"], "plant-a", "internal"))[
        "result"
    ]
    assert result["allow"] is False
    assert result["allowed_replicas"] == []
    assert result["reasons"]


def test_plant_b_restricted_data_does_not_go_to_a_plant_a_replica(opa: OpaServed) -> None:
    body = _chat("quality-lab", ["engineer", "data-steward"], "plant-b", "restricted",
                 data_classification="restricted", replicas=[GPU_1])  # fmt: skip
    assert _ask(opa, "decision", body)["result"]["allow"] is False
    body["replicas"] = [GPU_1, GPU_B1]
    result = _ask(opa, "decision", body)["result"]
    assert result["allow"] is True
    assert result["allowed_replicas"] == ["gpu-b1"]
    assert result["obligations"] == {"store_content": True, "max_tokens": 2048}


@pytest.mark.parametrize(
    ("client_id", "classification"),
    [("line-monitor", "top-secret"), ("line-monitor", "public"), ("unlisted-app", None)],
)
def test_an_unknown_missing_or_below_the_floor_classification_is_refused(
    opa: OpaServed, client_id: str, classification: str | None
) -> None:
    body = _chat(client_id, ["operator"], "plant-a", "internal",
                 data_classification=classification)  # fmt: skip
    result = _ask(opa, "decision", body)["result"]
    assert result["allow"] is False
    assert result["allowed_replicas"] == []
    assert result["data_classification"] == classification


def test_a_missing_classification_is_the_clients_default(opa: OpaServed) -> None:
    body = _chat("line-monitor", ["operator"], "plant-a", "internal", data_classification=None)
    result = _ask(opa, "decision", body)["result"]
    assert result["allow"] is True
    assert result["data_classification"] == "internal"


def test_a_malformed_input_still_gets_a_whole_denied_decision(opa: OpaServed) -> None:
    result = _ask(opa, "decision", {"subject": "nobody"})["result"]
    assert result["allow"] is False
    assert set(result) == {
        "allow",
        "reasons",
        "obligations",
        "allowed_replicas",
        "data_classification",
    }
    assert result["obligations"] == {"store_content": False, "max_tokens": None}
    assert result["data_classification"] is None


def test_visible_models_follow_the_same_rules(opa: OpaServed) -> None:
    body = _chat("process-engineering", ["engineer"], "plant-a", "confidential",
                 data_classification="confidential", model=None,
                 action={"route": "/v1/models", "method": "GET", "kind": "models"},
                 replicas=[GPU_1, {**GPU_1, "id": "gpu-2", "model": "ops-llama-8b"}])  # fmt: skip
    assert _ask(opa, "visible_models", body)["result"] == ["ops-llama-8b", "tiny-llama"]
    auditor = {**body, "subject": {**body["subject"], "roles": ["auditor"]}}
    assert _ask(opa, "visible_models", auditor)["result"] == []


def test_decision_logs_stay_local_and_mask_who_the_caller_is(opa: OpaServed) -> None:
    _ask(opa, "decision", _chat("line-monitor", ["operator"], "plant-a", "internal"))
    logged = [
        json.loads(line) for line in opa.log.read_text().splitlines() if "Decision Log" in line
    ]
    decision = next(e for e in reversed(logged) if e.get("path") == "sovstack/decision")
    assert "sub" not in decision["input"]["subject"]
    assert "groups" not in decision["input"]["subject"]
    assert decision["input"]["subject"]["client_id"] == "line-monitor"
    assert set(decision["erased"]) == {"/input/subject/sub", "/input/subject/groups"}
    assert [b["revision"] for b in decision["bundles"].values()] == [opa.signed.built.revision]


# --- refused bundles -------------------------------------------------------


def _rewrite(source: Path, target: Path, change: Any) -> Path:
    """Copy a bundle archive, letting ``change`` edit its {name: bytes} members."""
    with tarfile.open(source) as tar:
        members = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]  # files only
            for m in tar.getmembers()
            if m.isfile()
        }
    change(members)
    with tarfile.open(target, "w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return target


def _refused(paths: Paths, archive: Path, public_key: Path, log: Path) -> str:
    launch = serve.opa_launch(paths, services.free_port(), archive, public_key)
    running = services.start(launch, log)
    try:
        with pytest.raises(ComponentError, match="exited with status") as refused:
            services.wait_ready(running)
    finally:
        services.stop(running.pid)
    return str(refused.value)


def _raise_the_operator_cap(members: dict[str, bytes]) -> None:
    data = json.loads(members["/data.json"])
    data["plant"]["roles"]["operator"]["max_tokens"] = 100000
    members["/data.json"] = json.dumps(data).encode()


def _add_a_policy(members: dict[str, bytes]) -> None:
    members["/sovstack/backdoor.rego"] = b"package sovstack.backdoor\n\nallow := true\n"


def _strip_the_signature(members: dict[str, bytes]) -> None:
    del members["/.signatures.json"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (_raise_the_operator_cap, "digest mismatch"),
        (_add_a_policy, "backdoor.rego"),
        (_strip_the_signature, "missing .signatures.json"),
    ],
)
def test_a_changed_or_unsigned_bundle_is_refused(
    project_paths: Paths, signed: Signed, tmp_path: Path, change: Any, why: str
) -> None:
    archive = _rewrite(signed.built.path, tmp_path / "changed.tar.gz", change)
    assert why in _refused(project_paths, archive, signed.pair.public, tmp_path / "opa.log")


def test_a_bundle_signed_by_another_key_is_refused(
    project_paths: Paths, signed: Signed, tmp_path: Path
) -> None:
    other = keys.generate(tmp_path / "other")
    foreign = bundle.build(project_paths, other.private, tmp_path / "foreign.tar.gz")
    message = _refused(project_paths, foreign.path, signed.pair.public, tmp_path / "opa.log")
    assert "invalid ECDSA signature" in message


def test_the_untouched_copy_of_the_bundle_is_not_refused(
    project_paths: Paths, signed: Signed, tmp_path: Path
) -> None:
    # The refusals above are about the changes, not about rewriting the archive.
    archive = _rewrite(signed.built.path, tmp_path / "same.tar.gz", lambda members: None)
    launch = serve.opa_launch(project_paths, services.free_port(), archive, signed.pair.public)
    running = services.start(launch, tmp_path / "opa.log")
    try:
        services.wait_ready(running)
    finally:
        services.stop(running.pid)
