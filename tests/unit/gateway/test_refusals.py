"""Refusals: queued for group commit, and an unauthenticated flood bounded per source.

Every test writes to a real audit log in a temporary folder and reads it back
as an auditor would (the log's own scanner, ``verify_log``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sovstack.audit import AuditLog
from sovstack.audit.errors import RecordError
from sovstack.audit.records import validate_record
from sovstack.audit.verify import verify_log
from sovstack.gateway.auditing import Auditor, RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.refusals import MANY_SOURCES, Refusals, bounded_reason
from tests.unit.gateway import test_auditing

KEY = test_auditing.KEY
log = test_auditing.log  # the fixture: a real audit log in a temporary folder


def _records(log: AuditLog) -> list[dict[str, Any]]:
    return test_auditing._records(log.directory)


def _auditing(log: AuditLog, per_interval: int, interval_s: float, **kw: int) -> Any:
    """Refusals on ``log``, and an auditor that hands it its denials as the gateway's does."""
    refusals = Refusals(log, per_interval, interval_s, **kw)
    return refusals, Auditor(log, None, refusals)


def _anonymous(request_id: str, source: str = "10.0.0.7") -> RequestContext:
    return RequestContext(request_id, "/v1/chat/completions", source=source)


def _known(request_id: str, allow: bool = True) -> RequestContext:
    ctx = RequestContext(request_id, "/v1/chat/completions", source="10.0.0.8")
    ctx.subject = Subject("alice", "line-monitor", ("operator",), "plant-a", "internal")
    ctx.decision = Decision(allow, ("operator may use tiny-llama",))
    return ctx


async def test_refusals_share_fsyncs_and_are_all_recorded(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 1000, 60)
    before = log.commits
    for i in range(200):  # a client refused 200 times in a row
        assert await auditor.decided(_known(f"r{i}", allow=False)) is None
    await refusals.drain()
    assert [r["request_id"] for r in _records(log)][-200:] == [f"r{i}" for i in range(200)]
    assert log.commits - before <= 20  # not one fsync each
    # An accepted record is still awaited until durable: one commit of its own.
    before = log.commits
    assert isinstance(await auditor.decided(_known("allowed")), int)
    assert log.commits == before + 1 and _records(log)[-1]["request_id"] == "allowed"


async def test_a_flood_from_one_source_leaves_its_budget_and_one_summary(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 5, 0.5)
    for i in range(50):
        await auditor.decided(_anonymous(f"flood-{i}"), reasons=["the bearer token is invalid"])
    await auditor.decided(_anonymous("other-source", "10.0.0.9"), reasons=["no bearer token"])
    await asyncio.sleep(0.8)  # the episode ends one interval after its first refusal
    await refusals.drain()
    records = _records(log)
    single = [r["request_id"] for r in records if "refusals" not in r]
    assert single[:5] == [f"flood-{i}" for i in range(5)] and "other-source" in single
    summaries = [r for r in records if "refusals" in r]
    assert len(summaries) == 1 and len(records) == 7
    summary = summaries[0]
    assert summary["event"] == "denied" and summary["subject"] is None
    assert summary["route"] == "/v1/chat/completions"
    assert summary["refusals"]["count"] == 45 and summary["refusals"]["source"] == "10.0.0.7"
    assert summary["refusals"]["first"] <= summary["refusals"]["last"] <= summary["time"]
    assert summary["decision"]["allow"] is False
    assert summary["decision"]["reasons"] == ["the bearer token is invalid (45)"]
    assert verify_log(log.directory, KEY.public_key()).entries == len(records)


async def test_a_long_flood_grows_the_log_by_a_bounded_amount_per_interval(
    log: AuditLog,
) -> None:
    refusals, auditor = _auditing(log, 3, 0.3)
    sent = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < 1.2:  # four intervals of a steady flood
        await auditor.decided(_anonymous(f"f{sent}"), reasons=["no bearer token"])
        sent += 1
        await asyncio.sleep(0.002)
    await refusals.aclose()
    records = _records(log)
    counted = sum(r["refusals"]["count"] for r in records if "refusals" in r)
    single = [r for r in records if "refusals" not in r]
    assert len(single) + counted == sent  # every refusal is in the log, alone or counted
    # At most the budget (its refill included) and one summary per interval.
    assert len(records) <= (3 + 1) * 5 < sent


async def test_what_a_summary_keeps_of_the_reasons_is_bounded(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 1, 60)
    await auditor.decided(_anonymous("first"), reasons=["counted alone"])
    huge = "alg " + "A" * (6 << 20)  # a 6 MB token header, as in the issue
    await auditor.decided(_anonymous("big"), reasons=[huge])
    for i in range(20):
        await auditor.decided(_anonymous(f"r{i}"), reasons=[f"reason {i}\u2028with a separator"])
    await refusals.aclose()  # the gateway stops: the open episode is written
    summary = _records(log)[-1]
    reasons = summary["decision"]["reasons"]
    assert summary["refusals"]["count"] == 21 and len(reasons) == 9
    assert reasons[0] == "alg " + "A" * 196 + " (1)"
    assert reasons[1] == "reason 0?with a separator (1)"
    assert reasons[-1] == "other reasons (13)"
    assert log.size < 100 and all(len(r) < 300 for r in reasons)


async def test_an_authenticated_callers_refusals_are_each_recorded(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 1, 60)
    for i in range(10):
        await auditor.decided(_known(f"k{i}"), reasons=["client 'line-monitor' is over its rate"])
    await refusals.drain()
    records = _records(log)
    assert [r["request_id"] for r in records] == [f"k{i}" for i in range(10)]
    assert all(r["client"] == "line-monitor" and r["event"] == "denied" for r in records)


async def test_sources_past_the_limit_share_one(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 1, 60, max_sources=2)
    for source in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"):
        for i in range(2):
            await auditor.decided(_anonymous(f"{source}-{i}", source), reasons=["no token"])
    await refusals.aclose()
    records = _records(log)
    summaries = {
        r["refusals"]["source"]: r["refusals"]["count"] for r in records if "refusals" in r
    }
    assert summaries == {"10.0.0.1": 1, "10.0.0.2": 1, MANY_SOURCES: 3}
    assert len(records) == 2 + 1 + 3  # two sources' budgets, the shared one's, three summaries


async def test_a_refusal_the_log_cannot_take_is_still_answered(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 5, 60)
    log.close()
    assert await auditor.decided(_anonymous("lost"), reasons=["no token"]) is None
    await refusals.drain()  # the failure is logged, not raised into the refused request


def test_bounded_reason_keeps_short_printable_text_as_it_is() -> None:
    assert bounded_reason("no bearer token") == "no bearer token"
    assert bounded_reason("a\nb\x85c") == "a?b?c"
    assert len(bounded_reason("x" * 1000)) == 200


async def test_the_summary_key_is_allowed_in_a_denied_record_only(log: AuditLog) -> None:
    refusals, auditor = _auditing(log, 1, 60)
    for i in range(2):
        await auditor.decided(_anonymous(f"r{i}"), reasons=["no bearer token"])
    await refusals.aclose()
    record = _records(log)[-1]
    validate_record(record)
    for event in ("accepted", "completed"):
        with pytest.raises(RecordError, match="unknown"):
            validate_record(record | {"event": event})
    for bad in ({"count": 0}, {"source": ""}, {"first": "yesterday"}, {"extra": 1}):
        with pytest.raises(RecordError, match="refusals"):
            validate_record(record | {"refusals": record["refusals"] | bad})
