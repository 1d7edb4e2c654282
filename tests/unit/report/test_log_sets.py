"""The report over a gateway's set of worker logs: every ``audit`` check on every member.

Real logs: two worker logs written by ``AuditLog``, each with its own origin
and key (named as :mod:`sovstack.audit.logset` says), witnessed part-way by
the real witness. One member is then tampered with on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sovstack.audit import AuditLog, generate_signing_key, load_public_key, load_signing_key
from sovstack.audit.logset import member_key, member_origin, member_pubkey, worker_name
from sovstack.audit.segments import list_segments
from sovstack.audit.witness import witness
from sovstack.report import Clock, Inputs, LogInput, ReportError, build_report
from sovstack.report.assess import assess
from sovstack.report.context import Context
from sovstack.report.logs import LOG_CHECKS, check_logs
from tests.unit.audit.conftest import ORIGIN, T0, make_record

# The log starts 2026-01-15 (make_record); past the six-month floor on this date.
CLOCK = Clock(datetime(2026, 9, 1, tzinfo=UTC))
WORKERS = 2


@dataclass(frozen=True)
class LogSet:
    folder: Path  # audit_dir: worker-0/, worker-1/
    pubkey: Path  # <key>.pub; each member's is <key>.worker-<i>.pub beside it
    witness_state: Path


def _requests(log: AuditLog, first: int, count: int) -> None:
    """``count`` requests, each accepted then completed, as the gateway logs them."""
    for i in range(first, first + count):
        log.append_sync(make_record(i, event="accepted"))
        log.append_sync(make_record(i, time=T0 + timedelta(minutes=i, seconds=1)))
    log.publish()


@pytest.fixture
def log_set(tmp_path: Path) -> LogSet:
    """Two worker logs of 20 requests each, the witness having accepted each at 10."""
    key = tmp_path / "keys" / "audit-signing.key"
    key.parent.mkdir()
    generate_signing_key(key)
    folder, state = tmp_path / "audit", tmp_path / "witness"
    for i in range(WORKERS):
        name = worker_name(i)
        generate_signing_key(member_key(key, name))
        signer = load_signing_key(member_key(key, name))
        with AuditLog.open(folder / name, signer, member_origin(ORIGIN, name), 3600) as log:
            _requests(log, 100 * i, 5)
            public = load_public_key(member_pubkey(key.with_name(key.name + ".pub"), name))
            witness(folder / name, public, state)
            _requests(log, 100 * i + 5, 5)
    return LogSet(folder, key.with_name(key.name + ".pub"), state)


def _results(log_set: LogSet, tmp_path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    inputs = Inputs(
        policies=tmp_path / "unused",
        project_root=tmp_path,
        opa=tmp_path / "unused",
        logs=(LogInput(log_set.folder, log_set.pubkey),),
        witness_state=log_set.witness_state,
    )
    found = check_logs(Context(inputs, tmp_path / "pack", CLOCK))
    return {(r.check, r.where): (r.result, r.message) for rs in found.values() for r in rs}


def _flip_a_byte(log: Path) -> None:
    segment = list_segments(log)[0][1]
    data = bytearray(segment.read_bytes())
    data[data.index(b'"subject":"') + len(b'"subject":"')] ^= 0x01
    segment.write_bytes(bytes(data))


def test_every_check_runs_on_each_member_of_a_set_with_its_own_key(
    log_set: LogSet, tmp_path: Path
) -> None:
    results = _results(log_set, tmp_path)
    members = [f"log {log_set.folder}/worker-{i}" for i in range(WORKERS)]
    assert set(results) == {(f"audit {c}", m) for c in LOG_CHECKS for m in members}
    assert {result for result, _ in results.values()} == {"pass"}
    for i, member in enumerate(members):
        verify = results[("audit verify", member)][1]
        assert f"latest {ORIGIN}/worker-{i} size 20 " in verify
        assert "size 10 -> 20" in results[("audit witness", member)][1]
    evidence = sorted(p.name for p in (tmp_path / "pack" / "evidence" / "logs").iterdir())
    assert evidence == ["1-audit-worker-0", "2-audit-worker-1"]


def test_a_tampered_member_fails_its_own_checks_and_no_other_members(
    log_set: LogSet, tmp_path: Path
) -> None:
    _flip_a_byte(log_set.folder / "worker-1")
    results = _results(log_set, tmp_path)
    good, bad = (f"log {log_set.folder}/worker-{i}" for i in range(WORKERS))
    assert {results[(f"audit {c}", good)][0] for c in LOG_CHECKS} == {"pass"}
    assert {results[(f"audit {c}", bad)][0] for c in LOG_CHECKS} == {"fail"}
    assert "does not verify" in results[("audit verify", bad)][1]


def test_a_control_on_a_set_names_the_member_that_fails(log_set: LogSet, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    (policies / "controls" / "fw").mkdir(parents=True)
    (policies / "controls" / "fw.yml").write_text("id: fw\ntitle: A framework\ncontrols_dir: fw\n")
    (policies / "controls" / "fw" / "family.yml").write_text(
        "controls:\n  - id: LOG-1\n    title: Tamper-evident log\n    status: automated\n"
        "    checks:\n      - audit: verify\n"
    )
    _flip_a_byte(log_set.folder / "worker-0")
    inputs = Inputs(
        policies=policies,
        project_root=tmp_path,
        opa=tmp_path / "unused",
        logs=(LogInput(log_set.folder, log_set.pubkey),),
    )
    (finding,) = assess(Context(inputs, tmp_path / "pack", CLOCK)).findings
    assert finding.state == "not-satisfied"
    assert [(c.where, c.result) for c in finding.checks] == [
        (f"log {log_set.folder}/worker-0", "fail"),
        (f"log {log_set.folder}/worker-1", "pass"),
    ]


def test_a_set_whose_member_key_is_missing_is_refused_before_anything_is_signed(
    log_set: LogSet, tmp_path: Path
) -> None:
    missing = member_pubkey(log_set.pubkey, worker_name(1))
    missing.unlink()
    report_key = tmp_path / "keys" / "report.key"
    generate_signing_key(report_key)
    inputs = Inputs(
        policies=tmp_path / "policies",
        project_root=tmp_path,
        opa=tmp_path / "opa",
        logs=(LogInput(log_set.folder, log_set.pubkey),),
    )
    with pytest.raises(ReportError, match=str(missing)):
        build_report(inputs, tmp_path / "pack", report_key, CLOCK)
    assert not (tmp_path / "pack").exists() and not (tmp_path / "pack.incomplete").exists()


def test_a_folder_with_a_log_and_worker_logs_is_refused(log_set: LogSet, tmp_path: Path) -> None:
    (log_set.folder / "checkpoints").write_text("")
    report_key = tmp_path / "keys" / "report.key"
    generate_signing_key(report_key)
    inputs = Inputs(
        policies=tmp_path / "policies",
        project_root=tmp_path,
        opa=tmp_path / "opa",
        logs=(LogInput(log_set.folder, log_set.pubkey),),
    )
    with pytest.raises(ReportError, match="holds a log and worker logs"):
        build_report(inputs, tmp_path / "pack", report_key, CLOCK)
