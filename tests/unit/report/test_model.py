"""The report's semantics: what a control comes to, the figure, the exit code, derived indexes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sovstack.report.logs import proof_indexes
from sovstack.report.logscan import retention_floor
from sovstack.report.model import (
    CheckResult,
    Finding,
    compliance_figure,
    control_state,
    exit_code,
)


def _r(result: str, message: str = "why") -> CheckResult:
    return CheckResult("audit verify", "log x", result, message)


@pytest.mark.parametrize(
    ("results", "state"),
    [
        (("pass", "pass"), "satisfied"),
        (("pass", "fail"), "not-satisfied"),
        (("pass", "error"), "error"),
        (("pass", "not-run"), "error"),
        (("fail", "error"), "not-satisfied"),
        (("pass", "pending"), "cannot-yet-be-shown"),
        (("pending", "error"), "error"),
    ],
)
def test_a_control_is_satisfied_only_when_every_check_passed(
    results: tuple[str, ...], state: str
) -> None:
    got, reason = control_state("automated", tuple(_r(r) for r in results))
    assert got == state
    assert (reason == "") == (state == "satisfied")


def test_zero_executed_checks_are_an_error_never_satisfied() -> None:
    assert control_state("partial", ())[0] == "error"


@pytest.mark.parametrize("status", ["planned", "manual", "not-applicable"])
def test_planned_and_manual_controls_are_not_assessed_whatever_their_checks(status: str) -> None:
    assert control_state(status, (_r("pass"),))[0] == "not-assessed"


def _finding(state: str) -> Finding:
    return Finding("fw/X", "fw", "X", "t", "automated", (), (), state, "")


def test_the_figure_counts_not_assessed_controls_apart() -> None:
    findings = tuple(
        _finding(s)
        for s in (
            "satisfied",
            "satisfied",
            "not-satisfied",
            "error",
            "cannot-yet-be-shown",
            "not-assessed",
            "not-assessed",
        )
    )
    figure = compliance_figure(findings)
    assert (figure.satisfied, figure.assessed, figure.not_assessed) == (2, 5, 2)
    assert figure.percent == pytest.approx(40.0)
    assert "2 ÷ 5 = 40.0 %" in figure.formula()
    assert exit_code(findings) == 1


def test_cannot_yet_be_shown_alone_does_not_fail_the_run() -> None:
    findings = (_finding("satisfied"), _finding("cannot-yet-be-shown"), _finding("not-assessed"))
    assert exit_code(findings) == 0
    assert compliance_figure(findings).satisfied == 1


def test_an_unknown_check_result_is_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        _r("skipped")


def test_proof_indexes_follow_the_root_and_stay_in_the_tree() -> None:
    one = proof_indexes(b"\x01" * 32, 1000, 8)
    assert one == proof_indexes(b"\x01" * 32, 1000, 8)
    assert one != proof_indexes(b"\x02" * 32, 1000, 8)
    assert all(0 <= i < 1000 for i in one) and one == sorted(set(one))
    assert proof_indexes(b"\x01" * 32, 0, 8) == []


@pytest.mark.parametrize(
    ("as_of", "floor"),
    [
        (datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (datetime(2026, 8, 31, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2026, 3, 15, tzinfo=UTC), datetime(2025, 9, 15, tzinfo=UTC)),
    ],
)
def test_the_retention_floor_is_six_calendar_months_back(as_of: datetime, floor: datetime) -> None:
    assert retention_floor(as_of) == floor
