"""Quota usage: counted from durable records, rebuilt from the log alone, reset by a new period.

A real audit log in a temporary folder; the clock is the only thing set by hand.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog
from sovstack.audit.records import format_time
from sovstack.gateway.auditing import Auditor, RequestContext
from sovstack.gateway.auth import Subject
from sovstack.gateway.authz import Decision
from sovstack.gateway.quota import Ledger

ORIGIN = "plant-a.example/quota-test"
KEY = Ed25519PrivateKey.generate()


class Clock:
    def __init__(self, now: str) -> None:
        self.now = now

    def __call__(self) -> str:
        return self.now


@pytest.fixture
def log(tmp_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog.open(tmp_path / "audit", KEY, ORIGIN)
    yield opened
    opened.close()


def _ctx(request_id: str, client: str = "line-monitor", allow: bool = True) -> RequestContext:
    ctx = RequestContext(request_id, "/v1/chat/completions")
    ctx.subject = Subject("alice", client, ("operator",), "plant-a", "internal")
    ctx.model = "tiny-llama"
    ctx.decision = Decision(allow, ("operator may use tiny-llama",))
    return ctx


async def _serve(auditor: Auditor, request_id: str, prompt: int, completion: int,
                 client: str = "line-monitor") -> None:  # fmt: skip
    ctx = _ctx(request_id, client)
    await auditor.decided(ctx)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    await auditor.ended(ctx, "completed", status=200, usage=usage)


def _today() -> str:
    return format_time(datetime.now(UTC))


async def test_each_durable_record_counts_at_once_and_only_for_its_client(log: AuditLog) -> None:
    ledger = Ledger()
    auditor = Auditor(log, None, observers=(ledger.count,))
    await _serve(auditor, "r1", 7, 5)
    in_flight = _ctx("r2")
    await auditor.decided(in_flight)  # accepted, not ended: a request, no tokens yet
    await auditor.decided(_ctx("r3", allow=False))  # refused: no usage at all
    await _serve(auditor, "r4", 100, 1, client="quality-lab")

    day = ledger.usage("line-monitor")["day"]
    assert (day["requests"], day["tokens"], day["joules"]) == (2, 12, 0)
    assert ledger.usage("quality-lab")["month"]["tokens"] == 101
    assert ledger.usage("audit-office")["day"]["requests"] == 0
    assert day["period"] == _today()[:10]
    assert ledger.usage("line-monitor")["month"]["period"] == _today()[:7]


async def test_a_ledger_rebuilt_from_the_log_equals_the_one_counted_live(
    log: AuditLog, tmp_path: Path
) -> None:
    live = Ledger()
    auditor = Auditor(log, None, observers=(live.count,))
    for i in range(3):
        await _serve(auditor, f"r{i}", 10, i)
    await auditor.decided(_ctx("left-open"))
    log.close()

    reopened = AuditLog.open(tmp_path / "audit", KEY, ORIGIN)
    try:
        await Auditor(reopened, None).close_abandoned()  # as the gateway does at start
        rebuilt = Ledger()
        assert rebuilt.rebuild(reopened.directory) == 8  # 3 served x 2, the open one, its abort
    finally:
        reopened.close()
    assert rebuilt.usage("line-monitor") == live.usage("line-monitor")
    assert rebuilt.usage("line-monitor")["day"]["requests"] == 4
    assert rebuilt.usage("line-monitor")["day"]["tokens"] == 33


def test_a_new_day_starts_from_nothing_and_a_new_month_too() -> None:
    clock = Clock("2026-12-31T23:59:59.000000Z")
    ledger = Ledger(clock)
    accepted = {"event": "accepted", "client": "c", "request_id": "r", "time": clock.now}
    ledger.count(accepted)
    clock.now = "2027-01-01T00:00:01.000000Z"
    # It ends after midnight: its tokens belong to the day it was accepted, now past.
    ledger.count({"event": "completed", "client": "c", "request_id": "r", "time": clock.now,
                  "tokens": {"prompt": 4, "completion": 4}, "energy_mj": 2500})  # fmt: skip
    usage = ledger.usage("c")
    assert usage["day"] == {"period": "2027-01-01", "requests": 0, "tokens": 0, "joules": 0}
    assert usage["month"] == {"period": "2027-01", "requests": 0, "tokens": 0, "joules": 0}


def test_energy_counts_in_joules_where_it_was_measured() -> None:
    clock = Clock("2026-12-07T10:00:00.000000Z")
    ledger = Ledger(clock)
    for rid, energy in (("a", 2500), ("b", None)):
        ledger.count({"event": "accepted", "client": "c", "request_id": rid, "time": clock.now})
        ledger.count({"event": "completed", "client": "c", "request_id": rid,
                      "time": clock.now, "tokens": None, "energy_mj": energy})  # fmt: skip
    assert ledger.usage("c")["day"] == {
        "period": "2026-12-07", "requests": 2, "tokens": 0, "joules": 2.5
    }  # fmt: skip
