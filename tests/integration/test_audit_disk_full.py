"""The audit folder's disk fills up: requests get 503, nothing reaches the model, and
the service comes back by itself when space returns.

The disk is a real one: a small tmpfs mounted for the test (the tests run as
root, as CI does), filled with a file until the kernel says ENOSPC.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import (
    AuditLog,
    AuditWriteError,
    build_record,
    generate_signing_key,
    load_signing_key,
)
from sovstack.audit.segments import list_segments
from sovstack.audit.verify import verify_log
from sovstack.components.launches import VLLM_MODEL_NAME
from sovstack.core import services
from sovstack.core.paths import Paths
from tests.integration.conftest import KeycloakServed, Served, dev_upstreams
from tests.integration.gateway_harness import Gateway, run_gateway, upstream_calls

CHAT = {
    "model": VLLM_MODEL_NAME,
    "messages": [{"role": "user", "content": "Summarise the shift log"}],
    "max_tokens": 4,
}


@contextlib.contextmanager
def _tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs", str(mountpoint)],
        check=True,
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def _fill(path: Path) -> None:
    """Write ``path`` until the disk under it is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, block)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as full:
        path.with_name(path.name + ".probe").write_bytes(b"\0" * 4096)
    assert full.value.errno == errno.ENOSPC


def _record(i: int) -> dict[str, object]:
    return build_record(
        request_id=f"req-{i:06d}", event="completed", route="/v1/chat/completions",
        subject="alice", client="line-monitor", roles=("operator",), site="plant-a",
        model=VLLM_MODEL_NAME, status=200, latency_us=1000 + i,
    )  # fmt: skip


def test_the_log_on_a_full_disk_refuses_cleanly_and_takes_records_when_space_returns(
    tmp_path: Path,
) -> None:
    key_path = tmp_path / "audit.key"
    generate_signing_key(key_path)
    key: Ed25519PrivateKey = load_signing_key(key_path)
    with _tmpfs(tmp_path / "disk", "1m") as disk:
        spare = disk / "spare"
        spare.write_bytes(b"\0" * (128 << 10))  # what is freed later, as space "returns"
        directory = disk / "log"
        log = AuditLog.open(directory, key, "plant-a.example/gw", 3600, min_free_bytes=0)
        acked = 0
        with pytest.raises(AuditWriteError, match="No space left on device"):
            while True:  # the log itself fills the disk, kernel-cut writes included
                assert log.append_sync(_record(acked)) == acked
                acked += 1
        assert acked > 100
        segment = list_segments(directory)[-1][1]
        assert segment.read_bytes().endswith(b"\n"), "a refused entry was left half written"
        with pytest.raises(AuditWriteError):
            log.append_sync(_record(acked))  # still full: refused again, still clean
        spare.unlink()
        for i in range(acked, acked + 20):
            assert log.append_sync(_record(i)) == i
        assert log.writable()
        log.close()
        assert verify_log(directory, key.public_key(), check_records=True).entries == acked + 20
        with AuditLog.open(directory, key, "plant-a.example/gw") as reopened:
            assert reopened.recovery.trimmed == ()


def test_a_full_audit_disk_refuses_with_503_reaches_no_model_and_recovers_without_restart(
    project_paths: Paths,
    tmp_path: Path,
    keycloak_server: KeycloakServed,
    policy_opa: Served,
    vllm_server: Served,
) -> None:
    state = tmp_path / "gw"
    # Room for the gateway to start (its log keeps 16 MiB free for requests under way).
    with _tmpfs(state / "auditfs", "24m") as disk:
        audit_dir = disk / "audit"
        with run_gateway(
            project_paths, state, keycloak_server.issuer, policy_opa.url,
            dev_upstreams(vllm_server), audit_dir=str(audit_dir),
        ) as started:  # fmt: skip
            gw = dataclasses.replace(
                started, files=dataclasses.replace(started.files, audit_dir=audit_dir)
            )
            _exercise(gw, keycloak_server.token("line-monitor"), vllm_server, disk / "filler")


def _chat(gw: Gateway, token: str) -> tuple[int, str, dict[str, object]]:
    with gw.client(token, **{"X-Data-Classification": "internal"}) as client:
        response = client.post("/v1/chat/completions", json=CHAT)
    return response.status_code, response.headers["x-request-id"], response.json()


def _ready(gw: Gateway) -> tuple[int, dict[str, bool]]:
    with gw.client() as client:
        response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def _exercise(gw: Gateway, token: str, vllm: Served, filler: Path) -> None:
    status, before_id, _ = _chat(gw, token)
    assert status == 200
    gw.records_of(before_id, 2)

    _fill(filler)
    calls = upstream_calls(vllm.url)
    refused = []
    for _ in range(3):
        status, request_id, body = _chat(gw, token)
        assert (status, body["error"]["code"]) == (503, "audit_unavailable"), body  # type: ignore[index]
        refused.append(request_id)
    assert upstream_calls(vllm.url) == calls, "a request the log refused reached the model"
    status, checks = _ready(gw)
    assert status == 503 and checks["audit"] is False

    filler.unlink()  # space returns; the gateway is not restarted
    deadline = time.monotonic() + 15
    while _ready(gw)[0] != 200:
        assert time.monotonic() < deadline, f"not ready again: {_ready(gw)}"
        time.sleep(0.2)
    status, after_id, _ = _chat(gw, token)
    assert status == 200
    assert services.alive(gw.pid)

    assert [r["event"] for r in gw.records_of(after_id, 2)] == ["accepted", "completed"]
    records = gw.records()
    assert not [r for r in records if r["request_id"] in refused], "a refused request was logged"
    verified = gw.verify_log()
    assert verified.returncode == 0, verified.stdout + verified.stderr
