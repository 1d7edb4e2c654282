"""`make dev` serves the policies as the app's OPA does: a signed bundle, verified."""

from __future__ import annotations

from pathlib import Path

import httpx

from sovstack.core import services
from sovstack.core.paths import Paths
from sovstack.policy import serve


def test_dev_opa_serves_the_signed_bundle_and_keeps_its_key(
    project_paths: Paths, tmp_path: Path
) -> None:
    paths = Paths(project_paths.root, tmp_path / "state")
    said: list[str] = []
    launch = serve.dev_opa(paths, services.free_port(), said.append)
    assert "--verification-key" in launch.argv and "--config-file" in launch.argv
    assert any("made a development signing key" in line for line in said)
    key = (tmp_path / "state" / "policy" / "policy-signing.key").read_bytes()

    running = services.start(launch, tmp_path / "opa.log")
    try:
        services.wait_ready(running)
        body = {
            "input": {
                "subject": {"roles": ["operator"], "site": "plant-a", "clearance": "internal"},
                "action": {"kind": "chat"},
                "model": "tiny-llama",
                "data_classification": "internal",
                "replicas": [{"id": "gpu-1", "model": "tiny-llama", "site": "plant-a",
                              "jurisdiction": "DE", "hosting": "on-prem"}],
            }
        }  # fmt: skip
        url = f"http://127.0.0.1:{launch.port}/v1/data/sovstack/decision"
        assert httpx.post(url, json=body, trust_env=False).json()["result"]["allow"] is True
    finally:
        services.stop(running.pid)

    again: list[str] = []
    serve.dev_opa(paths, services.free_port(), again.append)
    assert not any("made a development signing key" in line for line in again)
    assert (tmp_path / "state" / "policy" / "policy-signing.key").read_bytes() == key
