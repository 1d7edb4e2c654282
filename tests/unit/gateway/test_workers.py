"""Worker processes: each one's settings, the budgets' division, and following siblings' logs.

The supervisor itself (forking, restarts, SIGHUP) runs against the real
components in tests/integration/test_gateway_workers.py; here, what each
worker is given, and the reader that feeds its quota ledger from its
siblings' real audit logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from sovstack.audit import AuditLog, build_record
from sovstack.audit.keys import load_public_key
from sovstack.gateway.siblings import SiblingLogs
from sovstack.gateway.workers import check_layout, ensure_worker_keys, worker_settings
from tests.unit.gateway.test_config import _settings


def test_each_worker_gets_its_own_log_key_origin_and_a_share_of_the_in_flight_limit() -> None:
    site = _settings(
        audit_origin="plant-a/gw-1", rate_limit_per_client=10.0, rate_limit_burst=7,
        max_in_flight_per_client=5, max_concurrent_requests=9, workers=2,
    )  # fmt: skip
    one = worker_settings(site, 1, 2)
    assert one.audit_dir == Path("/srv/audit/worker-1")
    assert one.audit_signing_key == Path("/srv/audit.key.worker-1")
    assert one.audit_origin == "plant-a/gw-1/worker-1"
    # Rounded down: the shares of all workers never add up to more than the limit.
    assert one.max_concurrent_requests == 4
    # A client's budgets are the whole gateway's, shared (gateway/budgets.py), not divided.
    assert (one.rate_limit_per_client, one.rate_limit_burst) == (10.0, 7)
    assert one.max_in_flight_per_client == 5
    assert one.workers == 1
    assert one.port == site.port  # every worker serves the supervisor's listeners


def test_an_in_flight_limit_smaller_than_the_workers_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"max_concurrent_requests \(3\) is divided"):
        _settings(workers=4, max_concurrent_requests=3, max_in_flight_per_client=3)


def test_unset_workers_means_the_cores_within_the_in_flight_limit() -> None:
    cores = len(os.sched_getaffinity(0))
    assert _settings().worker_count() == min(cores, 64)
    assert _settings(max_concurrent_requests=1, max_in_flight_per_client=1).worker_count() == 1
    assert _settings(workers=3).worker_count() == 3


def test_missing_worker_keys_are_made_with_their_public_keys(tmp_path: Path) -> None:
    site = _settings(audit_signing_key=str(tmp_path / "audit.key"), workers=2)
    made = ensure_worker_keys(site, 2)
    assert made == [tmp_path / "audit.key.worker-0", tmp_path / "audit.key.worker-1"]
    load_public_key(tmp_path / "audit.key.worker-1.pub")
    assert ensure_worker_keys(site, 2) == []  # kept, never overwritten


def _accepted(request_id: str, client: str = "line-monitor") -> dict[str, Any]:
    return build_record(
        request_id=request_id, event="accepted", route="/v1/chat/completions",
        subject="svc", client=client, roles=["operator"], site="plant-a",
    )  # fmt: skip


def test_a_siblings_records_are_counted_once_each_as_they_become_durable(tmp_path: Path) -> None:
    seen: list[str] = []

    def count(record: Mapping[str, Any]) -> None:
        seen.append(record["request_id"])

    sibling = tmp_path / "worker-1"
    follower = SiblingLogs([sibling], count)
    assert anyio.run(follower.catch_up) == 0  # no log yet: read once it exists
    # Small segments: the reader follows the log across its segments.
    with AuditLog.open(
        sibling, Ed25519PrivateKey.generate(), "o/worker-1", segment_bytes=600
    ) as log:
        for n in range(3):
            log.append_sync(_accepted(f"r{n}"))
        assert anyio.run(follower.catch_up) == 3
        for n in range(3, 8):
            log.append_sync(_accepted(f"r{n}"))
        with (sorted(sibling.glob("entries-*"))[-1]).open("ab") as segment:
            segment.write(b'{"half')  # an append in progress: not a record yet
        assert anyio.run(follower.catch_up) == 5
    assert len(list(sibling.glob("entries-*"))) > 1
    assert seen == [f"r{n}" for n in range(8)]


@pytest.mark.parametrize(("written", "count"), [("entries-00000000000000000000.jsonl", 2),
                                                 ("worker-0/", 1)])  # fmt: skip
def test_an_audit_folder_of_another_number_of_processes_is_refused(
    tmp_path: Path, written: str, count: int
) -> None:
    """A folder holding a log and worker logs would not be one site's log set."""
    target = tmp_path / written
    target.mkdir() if written.endswith("/") else target.write_text("")
    site = _settings(audit_dir=str(tmp_path))
    with pytest.raises(ValueError, match="give audit_dir a new folder"):
        check_layout(site, count)
    check_layout(site, 2 if count == 1 else 1)  # the layout it was written with is fine
