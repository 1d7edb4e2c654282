"""Usage from a site's folder of worker logs: each worker log verified with its key, all counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.audit import KeyFileError, VerificationError
from sovstack.audit.logset import member_pubkey
from sovstack.audit.segments import list_segments
from sovstack.cli import cli
from sovstack.usage import aggregate, read_site
from tests.unit.audit.conftest import write_site
from tests.unit.usage.conftest import ORIGIN, request


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    """Three worker logs: requests 1 and 4 in worker-0, 2 in worker-1, 3 in worker-2."""
    key = tmp_path / "keys" / "audit.key"
    key.parent.mkdir()
    write_site(tmp_path / "audit", key, [
        [*request(1, model="tiny"), *request(4, model="big", tokens=(100, 50))],
        [*request(2, model="tiny", tokens=(1, 2))],
        [*request(3, model="big", end=None)],
    ], origin=ORIGIN)  # fmt: skip
    return tmp_path / "audit", key.with_name("audit.key.pub")


def test_the_usage_of_every_worker_log_is_counted_once(site: tuple[Path, Path]) -> None:
    directory, pub = site
    report = aggregate(read_site(directory, pub, ORIGIN), ("model",))
    assert [cp.origin for cp in report.checkpoints] == [f"{ORIGIN}/worker-{i}" for i in range(3)]
    assert [cp.size for cp in report.checkpoints] == [4, 2, 1]
    rows = {g.key: (g.requests, g.completed, g.unfinished, g.sums["prompt_tokens"])
            for g in report.groups}  # fmt: skip
    assert rows == {("big",): (2, 1, 1, 100), ("tiny",): (2, 2, 0, 11)}
    assert (report.total.requests, report.total.sums["completion_tokens"]) == (4, 57)


def test_one_worker_log_that_does_not_verify_stops_the_report_naming_it(
    site: tuple[Path, Path],
) -> None:
    directory, pub = site
    segment = list_segments(directory / "worker-1")[0][1]
    segment.write_bytes(segment.read_bytes().replace(b'"prompt":1}', b'"prompt":9}'))
    with pytest.raises(VerificationError, match=f"^{directory}/worker-1: ") as caught:
        read_site(directory, pub)
    assert caught.value.evidence["checkpoint"].startswith(f"{ORIGIN}/worker-1\n2\n")


def test_a_missing_worker_key_is_refused_before_any_log_is_read(site: tuple[Path, Path]) -> None:
    directory, pub = site
    member_pubkey(pub, "worker-2").unlink()
    with pytest.raises(KeyFileError, match=r"audit\.key\.worker-2\.pub does not exist"):
        read_site(directory, pub)


def test_usage_report_takes_the_folder_of_worker_logs(
    site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = site
    out = tmp_path / "usage.json"
    result = CliRunner().invoke(
        cli, ["usage", "report", str(directory), "--pubkey", str(pub), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert [c["origin"] for c in doc["checkpoints"]] == [f"{ORIGIN}/worker-{i}" for i in range(3)]
    assert doc["total"]["requests"] == 4
