"""Keys, records and small logs for the audit tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, Decision, build_record, generate_signing_key, load_signing_key
from sovstack.audit.logset import member_key, member_origin, worker_name

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


def write_site(
    directory: Path, key: Path, records: list[list[dict[str, Any]]], origin: str = ORIGIN
) -> list[Path]:
    """A gateway's folder of worker logs: ``worker-<i>`` holds ``records[i]``.

    Each worker log has its own new signing key, made as ``audit keygen --out
    <key>.worker-<i>`` makes it (with its ``.pub`` beside), and its own origin
    ``<origin>/worker-<i>``; a checkpoint is published on close.
    """
    folders = []
    for i, batch in enumerate(records):
        name = worker_name(i)
        generate_signing_key(member_key(key, name))
        folder = directory / name
        signing = load_signing_key(member_key(key, name))
        with AuditLog.open(folder, signing, member_origin(origin, name), 3600) as log:
            for record in batch:
                log.append_sync(record)
        folders.append(folder)
    return folders


@pytest.fixture
def worker_site(tmp_path: Path) -> tuple[Path, Path]:
    """A site's audit folder of three worker logs; records 0..8 dealt round the workers.

    Record ``j`` (at T0 + j minutes) is entry ``j // 3`` of ``worker-<j % 3>``.
    Returns the folder and the ``--pubkey`` to give: ``audit.key.pub``, which
    does not exist (each worker log has its own ``audit.key.worker-<i>.pub``).
    """
    key = tmp_path / "site-keys" / "audit.key"
    key.parent.mkdir()
    records = [[make_record(j) for j in range(9) if j % 3 == i] for i in range(3)]
    write_site(tmp_path / "audit", key, records)
    return tmp_path / "audit", key.with_name("audit.key.pub")


def append_to_worker(directory: Path, pub: Path, worker: int, *numbers: int) -> None:
    """Append records ``numbers`` to the worker log ``worker`` of a site whose key is ``pub``."""
    name = worker_name(worker)
    key = member_key(pub.with_name(pub.name.removesuffix(".pub")), name)
    origin = member_origin(ORIGIN, name)
    with AuditLog.open(directory / name, load_signing_key(key), origin, 3600) as log:
        for j in numbers:
            log.append_sync(make_record(j))
