"""``sovstack audit export`` and ``tail`` on a folder of worker logs: merged by time, each named."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sovstack.audit.export import follow
from sovstack.cli import cli
from tests.unit.audit.conftest import T0, append_to_worker, make_record, write_site


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["audit", *map(str, args)])


def _seen(line: str) -> tuple[str, int, str]:
    doc = json.loads(line)
    return doc["log"], doc["index"], doc["record"]["request_id"]


def test_export_merges_the_worker_logs_in_time_order_and_names_each_log(
    worker_site: tuple[Path, Path],
) -> None:
    directory, _ = worker_site
    result = run("export", directory)
    assert result.exit_code == 0, result.output
    seen = [_seen(line) for line in result.stdout.splitlines()]
    assert seen == [(f"worker-{j % 3}", j // 3, f"req-{j:06d}") for j in range(9)]
    assert "exported 9 records" in result.stderr
    filtered = run("export", directory, "--model", "big-llama", "--since", "2026-01-15T08:02")
    assert [_seen(line) for line in filtered.stdout.splitlines()] == [
        ("worker-0", 1, "req-000003"), ("worker-2", 1, "req-000005"), ("worker-1", 2, "req-000007")
    ]  # fmt: skip
    # One log (a worker's folder given alone) is exported as it always was: no "log".
    alone = run("export", directory / "worker-2")
    assert [set(json.loads(line)) for line in alone.stdout.splitlines()] == [
        {"index", "record"}
    ] * 3


def test_export_breaks_ties_in_time_by_worker_then_index(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "audit.key"
    key.parent.mkdir()
    later = T0.replace(minute=1)
    write_site(tmp_path / "audit", key, [
        [make_record(0, time=T0), make_record(1, time=later)],
        [make_record(2, time=T0), make_record(3, time=T0)],
    ])  # fmt: skip
    result = run("export", tmp_path / "audit")
    assert result.exit_code == 0, result.output
    assert [_seen(line)[:2] for line in result.stdout.splitlines()] == [
        ("worker-0", 0), ("worker-1", 0), ("worker-1", 1), ("worker-0", 1)
    ]  # fmt: skip


def test_tail_shows_the_last_records_of_all_worker_logs(worker_site: tuple[Path, Path]) -> None:
    directory, _ = worker_site
    result = run("tail", directory, "-n", "4", "--no-follow")
    assert result.exit_code == 0, result.output
    assert [_seen(line) for line in result.output.splitlines()] == [
        ("worker-2", 1, "req-000005"), ("worker-0", 2, "req-000006"),
        ("worker-1", 2, "req-000007"), ("worker-2", 2, "req-000008"),
    ]  # fmt: skip


def test_tail_follows_new_records_of_every_worker_log(worker_site: tuple[Path, Path]) -> None:
    directory, pub = worker_site
    # A lost record would otherwise be waited for forever: give up after a while.
    deadline = time.monotonic() + 30
    lines = follow(directory, last=1, keep_going=lambda: time.monotonic() < deadline, poll=0.01)
    assert _seen(next(lines)) == ("worker-2", 2, "req-000008")
    append_to_worker(directory, pub, 2, 9)
    append_to_worker(directory, pub, 0, 10, 11)
    assert sorted(_seen(line) for line in itertools.islice(lines, 3)) == [
        ("worker-0", 3, "req-000010"), ("worker-0", 4, "req-000011"), ("worker-2", 3, "req-000009")
    ]  # fmt: skip
    append_to_worker(directory, pub, 1, 12)
    assert _seen(next(lines)) == ("worker-1", 3, "req-000012")


@pytest.mark.parametrize("command", [["export"], ["tail", "--no-follow"]])
def test_a_folder_holding_a_log_and_worker_logs_is_not_read(
    command: list[str], worker_site: tuple[Path, Path]
) -> None:
    directory, _ = worker_site
    shutil.copy(directory / "worker-0" / "checkpoints", directory / "checkpoints")
    result = run(command[0], directory, *command[1:])
    assert result.exit_code == 2, result.output
    assert f"{directory} holds a log and worker logs (worker-0, worker-1, worker-2)" in (
        result.output
    )
    assert "req-" not in result.output
