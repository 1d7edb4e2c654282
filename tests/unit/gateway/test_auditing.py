"""The gateway's audit path: no durable record, no request; a restart closes what was in flight.

Every test uses a real audit log in a temporary folder; nothing is faked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog
from sovstack.audit.entries import decode_entry
from sovstack.audit.segments import Scanner
from sovstack.audit.verify import verify_log
from sovstack.gateway.auditing import GATEWAY_RESTART, Auditor, RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.errors import Unavailable

ORIGIN = "plant-a.example/gateway-test"
KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog.open(tmp_path / "audit", KEY, ORIGIN)
    yield opened
    opened.close()


def _ctx(request_id: str, allow: bool = True) -> RequestContext:
    ctx = RequestContext(request_id, "/v1/chat/completions")
    ctx.subject = Subject("alice", "line-monitor", ("operator",), "plant-a", "internal")
    ctx.model, ctx.classification, ctx.prompt_sha256 = "tiny-llama", "internal", "ab" * 32
    ctx.decision = Decision(allow, ("operator may use tiny-llama",), {"max_tokens": 64})
    return ctx


def _records(directory: Path) -> list[dict[str, object]]:
    return [decode_entry(data)[2] for _, data, _ in Scanner(directory)]


async def test_a_record_the_log_cannot_take_refuses_the_request(log: AuditLog) -> None:
    auditor = Auditor(log, None)
    log.close()  # the log can no longer make anything durable
    for record in (auditor.decided(_ctx("r1")), auditor.ended(_ctx("r1"), "completed", status=200)):
        with pytest.raises(Unavailable) as raised:
            await record
        assert raised.value.code == "audit_unavailable" and raised.value.status == 503


async def test_accepted_and_denied_are_told_apart(log: AuditLog) -> None:
    auditor = Auditor(log, None)
    await auditor.decided(_ctx("allowed"))
    await auditor.decided(_ctx("denied", allow=False))
    await auditor.decided(_ctx("unavailable"), reasons=["the policy service was unavailable"])
    events = [(r["request_id"], r["event"]) for r in _records(log.directory)]
    assert events == [("allowed", "accepted"), ("denied", "denied"), ("unavailable", "denied")]


async def test_a_restart_closes_each_request_left_in_flight_and_only_those(
    log: AuditLog, tmp_path: Path
) -> None:
    auditor = Auditor(log, None)
    for request_id in ("open-1", "done", "open-2", "failed"):
        await auditor.decided(_ctx(request_id))
    await auditor.decided(_ctx("refused", allow=False))
    await auditor.ended(_ctx("done"), "completed", status=200)
    await auditor.ended(_ctx("failed"), "error", status=502, error="upstream stream failed")
    log.close()

    reopened = AuditLog.open(tmp_path / "audit", KEY, ORIGIN)
    try:
        assert await Auditor(reopened, None).close_abandoned() == ["open-1", "open-2"]
        assert await Auditor(reopened, None).close_abandoned() == []  # nothing twice
    finally:
        reopened.close()
    records = _records(tmp_path / "audit")
    closing = records[-2:]
    assert [r["request_id"] for r in closing] == ["open-1", "open-2"]
    accepted = {r["request_id"]: r for r in records if r["event"] == "accepted"}
    for record in closing:
        assert record["event"] == "aborted" and record["error"] == GATEWAY_RESTART
        assert record["status"] is None and record["tokens"] is None
        opened = accepted[str(record["request_id"])]
        for key in ("subject", "client", "roles", "site", "model", "route", "decision",
                    "data_classification", "prompt_sha256"):  # fmt: skip
            assert record[key] == opened[key], key
    assert verify_log(tmp_path / "audit", KEY.public_key()).entries == len(records)


async def test_values_from_outside_are_bounded_or_hashed_in_records(log: AuditLog) -> None:
    auditor = Auditor(log, None)
    ctx = _ctx("long")
    ctx.model = "m" * 1100
    ctx.classification = "internal\u2028"
    ctx.subject = Subject("a" * 2000, "line-monitor", ("operator", "r" * 5000), "plant-a", None)
    ctx.decision = None  # refused before the policy was asked: the reasons are the gateway's
    await auditor.decided(ctx, reasons=["why " * 10_000, "lone \ud800 surrogate"] * 20)
    await auditor.ended(ctx, "error", status=None, error="e" * 5000)
    denied, ended = _records(log.directory)
    digest = "sha256:" + hashlib.sha256(b"m" * 1100).hexdigest()
    assert denied["model"] == ended["model"] == digest
    assert str(denied["data_classification"]).startswith("sha256:")
    assert str(denied["subject"]).startswith("sha256:")
    assert denied["roles"][0] == "operator" and str(denied["roles"][1]).startswith("sha256:")
    reasons = denied["decision"]["reasons"]  # type: ignore[index]
    assert len(reasons) == 16 and all(len(r) < 700 for r in reasons)
    assert str(reasons[1]).startswith("lone ? surrogate... (sha256:")
    assert len(str(ended["error"])) < 700 and ended["status"] is None
    assert ctx.ended
    assert verify_log(log.directory, KEY.public_key()).entries == 2
