"""What a check found, what that makes of a control, and the compliance figure.

The rules an auditor relies on, in one place (after Lula and Heimdall):

- a check that failed, errored or did not run is never satisfied;
- a control with zero executed checks is never satisfied;
- a control is satisfied only when every one of its checks passed;
- a check that *cannot yet be shown* (the log is younger than the floor it
  must reach) is not satisfied either, and says so; it does not count as a
  failure of the site;
- planned, manual and not-applicable controls are not assessed: counted
  apart, never in the numerator nor the denominator.

Every state but ``satisfied`` carries the reason, in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "ASSESSED",
    "CHECK_RESULTS",
    "CheckResult",
    "Figure",
    "Finding",
    "compliance_figure",
    "control_state",
    "exit_code",
]

# What one check can come to.
PASS: Final = "pass"  # noqa: S105 (a check result, not a password)
FAIL: Final = "fail"
ERROR: Final = "error"
NOT_RUN: Final = "not-run"
PENDING: Final = "pending"  # cannot yet be shown (e.g. a log younger than six months)
CHECK_RESULTS: Final = (PASS, FAIL, ERROR, NOT_RUN, PENDING)

# What a control comes to.
SATISFIED: Final = "satisfied"
NOT_SATISFIED: Final = "not-satisfied"
CONTROL_ERROR: Final = "error"
CANNOT_YET: Final = "cannot-yet-be-shown"
NOT_ASSESSED: Final = "not-assessed"
ASSESSED: Final = ("automated", "partial")  # catalogue statuses a check can prove


@dataclass(frozen=True)
class CheckResult:
    """One check as it ran: ``where`` (a host, a log, the policy files), and what it found."""

    check: str  # "kind ref", as in the catalogue
    where: str
    result: str  # one of CHECK_RESULTS
    message: str
    duration_s: float = 0.0
    evidence: str = ""  # path of the evidence file, relative to the report folder

    def __post_init__(self) -> None:
        if self.result not in CHECK_RESULTS:
            raise ValueError(f"check result {self.result!r} is not one of {CHECK_RESULTS}")


@dataclass(frozen=True)
class Finding:
    """One control of the catalogue and what its checks came to."""

    key: str  # framework/id
    framework: str
    control_id: str
    title: str
    catalogue_status: str
    shared_with: tuple[str, ...]  # other controls (framework/id) naming one of the same checks
    checks: tuple[CheckResult, ...]
    state: str
    reason: str  # why it is not satisfied (empty when satisfied)


def control_state(catalogue_status: str, results: tuple[CheckResult, ...]) -> tuple[str, str]:
    """``(state, reason)`` of a control from its catalogue status and its checks' results."""
    if catalogue_status not in ASSESSED:
        return NOT_ASSESSED, f"{catalogue_status}: not assessed by a check"
    if not results:
        return CONTROL_ERROR, "zero checks were executed: nothing shows this control"
    failed = [r for r in results if r.result == FAIL]
    broken = [r for r in results if r.result in (ERROR, NOT_RUN)]
    pending = [r for r in results if r.result == PENDING]
    if failed:
        return NOT_SATISFIED, "; ".join(f"{r.check} on {r.where}: {r.message}" for r in failed)
    if broken:
        return CONTROL_ERROR, "; ".join(
            f"{r.check} on {r.where} {'did not run' if r.result == NOT_RUN else 'errored'}:"
            f" {r.message}"
            for r in broken
        )
    if pending:
        return CANNOT_YET, "; ".join(f"{r.check} on {r.where}: {r.message}" for r in pending)
    return SATISFIED, ""


@dataclass(frozen=True)
class Figure:
    """The compliance figure: satisfied ÷ assessed controls, and everything counted apart."""

    satisfied: int
    assessed: int
    not_satisfied: int
    errors: int
    cannot_yet: int
    not_assessed: int

    @property
    def percent(self) -> float:
        return 0.0 if self.assessed == 0 else 100.0 * self.satisfied / self.assessed

    def formula(self) -> str:
        return (
            f"compliance = satisfied ÷ assessed (automated and partial) controls"
            f" = {self.satisfied} ÷ {self.assessed} = {self.percent:.1f} %;"
            f" {self.not_assessed} planned, manual or not-applicable controls are counted"
            " apart and are in neither number"
        )


def compliance_figure(findings: tuple[Finding, ...]) -> Figure:
    states = [f.state for f in findings]
    return Figure(
        satisfied=states.count(SATISFIED),
        assessed=len(states) - states.count(NOT_ASSESSED),
        not_satisfied=states.count(NOT_SATISFIED),
        errors=states.count(CONTROL_ERROR),
        cannot_yet=states.count(CANNOT_YET),
        not_assessed=states.count(NOT_ASSESSED),
    )


def exit_code(findings: tuple[Finding, ...]) -> int:
    """0 when no assessed control failed or errored; 1 otherwise.

    A control that cannot yet be shown does not fail the run: it is reported
    as such and is not in the numerator.
    """
    return 1 if any(f.state in (NOT_SATISFIED, CONTROL_ERROR) for f in findings) else 0
