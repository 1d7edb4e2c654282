"""Requests as the gateway records them (accepted, then one end record), and real logs of them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, Decision, build_record
from sovstack.audit.checkpoint import Checkpoint
from sovstack.usage import Covered
from tests.unit.audit.conftest import key_path, signing_key  # noqa: F401 (the audit tests' key fixtures)

ORIGIN = "plant-a.example/gateway-1"
T0 = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)


def request(
    n: int,
    *,
    client: str = "line-monitor",
    model: str = "tiny",
    site: str = "plant-a",
    end: str | None = "completed",
    tokens: tuple[int, int] | None = (10, 5),
    minutes: int = 0,
) -> list[dict[str, Any]]:
    """The records of one request: ``accepted`` and, unless ``end`` is None, its end record."""
    common: dict[str, Any] = {
        "request_id": f"req-{n}", "subject": "svc", "client": client, "roles": ["operator"],
        "site": site, "model": model, "route": "/v1/chat/completions",
        "time": T0 + timedelta(minutes=minutes),
        "decision": Decision(True, ["ok"], {"store_content": False}, "r1"),
    }  # fmt: skip
    records = [build_record(event="accepted", **common)]
    if end is not None:
        prompt, completion = tokens if tokens else (None, None)
        records.append(build_record(
            event=end, status=200, prompt_tokens=prompt, completion_tokens=completion, **common
        ))  # fmt: skip
    return records


def covered(records: Iterable[dict[str, Any]], origin: str = ORIGIN) -> Covered:
    """Records as a verified log would hand them over (for the pure aggregation tests)."""
    listed = list(records)
    return Covered(Path(origin), Checkpoint(origin, len(listed), b"\x07" * 32), listed, 0, [])


def write_log(
    directory: Path, key: Ed25519PrivateKey, records: Iterable[dict[str, Any]], origin: str = ORIGIN
) -> Path:
    """A real log of ``records``, with its checkpoint published on close."""
    with AuditLog.open(directory, key, origin, 3600) as log:
        for record in records:
            log.append_sync(record)
    return directory
