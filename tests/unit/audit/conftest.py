"""Keys, records and small logs for the audit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, Decision, build_record, generate_signing_key, load_signing_key

ORIGIN = "plant-a.example/gateway-1"
T0 = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


def make_record(i: int, **overrides: Any) -> dict[str, Any]:
    """A realistic record; ``i`` varies request id, time, subject and model."""
    fields: dict[str, Any] = {
        "request_id": f"req-{i:06d}",
        "event": "completed",
        "subject": ("alice", "bob", "carol")[i % 3],
        "client": ("line-monitor", "quality-lab")[i % 2],
        "roles": ["operator"],
        "site": "plant-a",
        "time": T0 + timedelta(minutes=i),
        "model": ("tiny-llama", "big-llama")[i % 2],
        "model_digest": "sha256:" + "ab" * 32,
        "replica": "http://127.0.0.1:8100",
        "decision": Decision(
            True,
            ["operator may use tiny-llama"],
            {"store_content": False, "max_tokens": 256},
            "r42",
        ),
        "status": 200,
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "latency_us": 1500 + i,
        "prompt_sha256": "0" * 64,
        "completion_sha256": "1" * 64,
    }
    if "content" in overrides:  # content is kept only when the policy asks for it
        fields["decision"] = Decision(True, ["kept"], {"store_content": True}, "r42")
    fields.update(overrides)
    return build_record(**fields)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "audit.key"
    path.parent.mkdir()
    generate_signing_key(path)
    return path


@pytest.fixture
def signing_key(key_path: Path) -> Ed25519PrivateKey:
    return load_signing_key(key_path)


@pytest.fixture
def pub_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".pub")


LogMaker = Callable[..., Path]


@pytest.fixture
def make_log(tmp_path: Path, signing_key: Ed25519PrivateKey) -> LogMaker:
    """Write ``n`` records to a fresh log, publishing a checkpoint every ``every``."""

    def make(n: int, every: int = 0, name: str = "log", **open_args: Any) -> Path:
        directory = tmp_path / name
        with AuditLog.open(directory, signing_key, ORIGIN, 3600, **open_args) as log:
            for i in range(n):
                log.append_sync(make_record(i))
                if every and (i + 1) % every == 0:
                    log.publish()
        return directory

    return make
