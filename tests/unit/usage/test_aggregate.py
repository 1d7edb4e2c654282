"""Grouping and summing: unknown values are counted, never taken as zero."""

from __future__ import annotations

import pytest

from sovstack.usage import ReportError, aggregate, parse_by
from tests.unit.usage.conftest import ORIGIN, covered, request


def test_by_takes_known_dimensions_in_the_order_given() -> None:
    assert parse_by("model, client") == ("model", "client")
    assert parse_by("day") == ("day",)


@pytest.mark.parametrize("text", ["", "client,", "user", "client,client", "client;model"])
def test_by_refuses_what_it_cannot_group_by(text: str) -> None:
    with pytest.raises(ReportError, match="--by"):
        parse_by(text)


def test_requests_are_summed_per_client_and_model_with_how_they_ended() -> None:
    records = [
        *request(1, tokens=(10, 5)),
        *request(2, tokens=(7, 3), end="aborted"),
        *request(3, client="quality-lab", tokens=(4, 4), end="error"),
        *request(4, model="big", tokens=(1, 2)),
    ]
    report = aggregate([covered(records)], ("client", "model"))
    rows = {g.key: g for g in report.groups}
    assert list(rows) == [
        ("line-monitor", "big"),
        ("line-monitor", "tiny"),
        ("quality-lab", "tiny"),
    ]
    tiny = rows["line-monitor", "tiny"]
    assert (tiny.requests, tiny.completed, tiny.aborted, tiny.error) == (2, 1, 1, 0)
    assert (tiny.sums["prompt_tokens"], tiny.sums["completion_tokens"]) == (17, 8)
    assert rows["quality-lab", "tiny"].error == 1
    assert report.total.requests == 4 and report.total.sums["prompt_tokens"] == 22


def test_unknown_tokens_and_unfinished_requests_are_counted_not_zeroed() -> None:
    records = [*request(1, tokens=(10, 5)), *request(2, tokens=None), *request(3, end=None)]
    (group,) = aggregate([covered(records)], ("client",)).groups
    assert (group.requests, group.completed, group.unfinished) == (3, 2, 1)
    assert group.sums["prompt_tokens"] == 10
    assert group.unknown["prompt_tokens"] == 2  # no usage in the stream, and not finished yet
    assert group.unknown["energy_j"] == 3  # no record says anything about energy


def test_energy_and_gpu_seconds_sum_what_is_known_and_count_the_rest() -> None:
    ends = [
        {"gpu_us": 500_000, "energy_mj": 120_250},
        {"gpu_us": 1_000_000, "energy_mj": None},  # a node without an energy counter
        {},  # a record written before the gateway measured energy
        {"gpu_us": -1, "energy_mj": True},  # nonsense: unknown, and said so
        {"gpu_us": 0.5, "energy_mj": "30"},  # records hold integers only
    ]
    records = []
    for n, extra in enumerate(ends):
        accepted, end = request(n)
        records += [accepted, end | extra]
    report = aggregate([covered(records)], ("model",))
    (group,) = report.groups
    assert group.sums["gpu_seconds"] == 1.5 and group.unknown["gpu_seconds"] == 3
    assert group.sums["energy_j"] == 120.25 and group.unknown["energy_j"] == 4
    assert len(report.warnings) == 4
    assert any("energy_mj True" in w for w in report.warnings)


def test_day_is_the_utc_day_the_request_was_accepted() -> None:
    records = [*request(1, minutes=0), *request(2, minutes=2)]  # 23:59 and 00:01 UTC
    report = aggregate([covered(records)], ("day", "site"))
    assert [g.key for g in report.groups] == [("2026-03-01", "plant-a"), ("2026-03-02", "plant-a")]


def test_two_logs_add_up_and_the_same_log_twice_is_refused() -> None:
    one, two = covered(request(1)), covered(request(1, tokens=(1, 1)), "plant-b/gateway")
    report = aggregate([one, two], ("client",))
    assert report.total.requests == 2 and report.total.sums["prompt_tokens"] == 11
    assert [c.origin for c in report.checkpoints] == [ORIGIN, "plant-b/gateway"]
    with pytest.raises(ReportError, match="twice"):
        aggregate([one, covered(request(2))], ("client",))


def test_an_end_without_acceptance_or_a_second_end_is_reported_and_not_counted() -> None:
    accepted, end = request(1)
    _, orphan = request(2)
    report = aggregate([covered([accepted, end, end, orphan])], ("client",))
    assert report.total.requests == 1 and report.total.completed == 1
    assert report.total.sums["prompt_tokens"] == 10
    assert [w.split("'")[1] for w in report.warnings] == ["req-1", "req-2"]
    assert all("no open accepted record" in w for w in report.warnings)
