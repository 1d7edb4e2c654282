"""``sovstack audit`` on a folder of worker logs: each log checked with its own key and origin."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sovstack.audit import generate_signing_key, load_public_key
from sovstack.audit.checkpoint import split_notes
from sovstack.audit.logset import member_key, member_pubkey
from sovstack.audit.segments import list_segments
from sovstack.audit.witness import accepted_checkpoint, cosigned_path
from sovstack.cli import cli
from tests.unit.audit.conftest import ORIGIN, LogMaker, append_to_worker

WORKERS = 3


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["audit", *map(str, args)], input=stdin)


def _rewrite(folder: Path, old: bytes, new: bytes) -> None:
    segment = list_segments(folder)[0][1]
    segment.write_bytes(segment.read_bytes().replace(old, new))


def _latest_note(folder: Path) -> str:
    return split_notes((folder / "checkpoints").read_bytes())[0][-1]


def test_a_set_of_worker_logs_verifies_with_a_line_per_log(worker_site: tuple[Path, Path]) -> None:
    directory, pub = worker_site
    result = run("verify", directory, "--pubkey", pub, "--origin", ORIGIN, "--check-records")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == WORKERS
    for i, line in enumerate(lines):
        assert line.startswith(
            f"verified: {directory}/worker-{i}: 3 entries, 2 checkpoints;"
            f" latest checkpoint {ORIGIN}/worker-{i} size 3 root "
        )
    # One worker log is a log like any other: verified alone with its own key.
    alone = run("verify", directory / "worker-1", "--pubkey", member_pubkey(pub, "worker-1"))
    assert alone.exit_code == 0, alone.output
    assert alone.output.startswith("verified: 3 entries, 2 checkpoints;")


def test_the_origin_is_required_of_each_worker_log(worker_site: tuple[Path, Path]) -> None:
    directory, pub = worker_site
    result = run("verify", directory, "--pubkey", pub, "--origin", "plant-b.example/gateway-1")
    assert result.exit_code == 1
    assert result.output.count("VERIFICATION FAILED") == WORKERS + 1
    assert "not 'plant-b.example/gateway-1/worker-2'" in result.output
    assert f"3 of 3 logs in {directory} failed: worker-0, worker-1, worker-2" in result.output


def test_a_tampered_worker_log_fails_and_the_others_are_still_verified(
    worker_site: tuple[Path, Path],
) -> None:
    directory, pub = worker_site
    _rewrite(directory / "worker-1", b"req-000004", b"req-000444")
    result = run("verify", directory, "--pubkey", pub)
    assert result.exit_code == 1
    out = result.output
    assert f"verified: {directory}/worker-0: 3 entries" in out
    assert f"verified: {directory}/worker-2: 3 entries" in out
    assert f"VERIFICATION FAILED: {directory}/worker-1: entry 2 (entries-" in out
    assert "entry 1 was altered" in out
    assert "first bad index: 1" in out and f"    {ORIGIN}/worker-1\n    3\n" in out
    assert out.rstrip().endswith(
        f"VERIFICATION FAILED: 1 of 3 logs in {directory} failed: worker-1"
    )
    assert f"verified: {directory}/worker-1" not in out


def test_a_kept_checkpoint_holds_the_worker_log_it_is_of(
    worker_site: tuple[Path, Path], tmp_path: Path, make_log: LogMaker
) -> None:
    directory, pub = worker_site
    old = shutil.copytree(directory, tmp_path / "old-copy")
    append_to_worker(directory, pub, 1, 9)
    kept = tmp_path / "worker-1.checkpoint"
    kept.write_text(_latest_note(directory / "worker-1"))
    assert run("verify", directory, "--pubkey", pub, "--checkpoint", kept).exit_code == 0
    rolled_back = run("verify", old, "--pubkey", pub, "--checkpoint", kept)
    assert rolled_back.exit_code == 1
    assert f"VERIFICATION FAILED: {old}/worker-1: the log's latest checkpoint (size 3)" in (
        rolled_back.output
    )
    assert "truncated or rolled back" in rolled_back.output
    assert f"verified: {old}/worker-0" in rolled_back.output
    assert f"verified: {old}/worker-2" in rolled_back.output
    other = tmp_path / "other.checkpoint"
    other.write_text(_latest_note(make_log(2)))
    refused = run("verify", directory, "--pubkey", pub, "--checkpoint", other)
    assert refused.exit_code == 1
    assert f"the checkpoint is of log {ORIGIN!r}, and no log in {directory} is" in refused.output
    assert "verified:" not in refused.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{dir}", "--pubkey", "{pub}"],
        ["prove", "{dir}", "--pubkey", "{pub}", "--request-id", "req-000004"],
        ["witness", "{dir}", "--pubkey", "{pub}", "--state", "{state}"],
    ],
)
def test_a_missing_worker_key_is_a_usage_error_naming_the_file(
    args: list[str], worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    missing = member_pubkey(pub, "worker-2")
    missing.unlink()
    values = {"dir": directory, "pub": pub, "state": tmp_path / "state"}
    result = run(*(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert f"public key {missing} does not exist" in result.output
    assert "verified" not in result.output and "accepted" not in result.output
    assert not (tmp_path / "state").exists()


def test_an_empty_worker_folder_is_a_usage_error_before_any_log_is_checked(
    worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    (directory / "worker-3").mkdir()
    generate_signing_key(member_key(pub.with_name("audit.key"), "worker-3"))
    for args in (["verify"], ["witness", "--state", tmp_path / "state"]):
        result = run(args[0], directory, "--pubkey", pub, *args[1:])
        assert result.exit_code == 2, result.output
        assert f"{directory}/worker-3 is not an audit log" in result.output
        assert "verified" not in result.output and "accepted" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{dir}", "--pubkey", "{pub}"],
        ["prove", "{dir}", "--pubkey", "{pub}", "--request-id", "req-000004"],
        ["witness", "{dir}", "--pubkey", "{pub}", "--state", "{state}"],
    ],
)
def test_a_folder_holding_a_log_and_worker_logs_is_refused(
    args: list[str], worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    shutil.copy(directory / "worker-0" / "checkpoints", directory / "checkpoints")
    values = {"dir": directory, "pub": pub, "state": tmp_path / "state"}
    result = run(*(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert f"{directory} holds a log and worker logs (worker-0, worker-1, worker-2)" in (
        result.output
    )
    assert "Traceback" not in result.output and "req-" not in result.output


def test_prove_finds_the_worker_log_of_the_request_and_verify_proof_accepts_it(
    worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    proved = run("prove", directory, "--pubkey", pub, "--request-id", "req-000004")
    assert proved.exit_code == 0, proved.output
    bundle = json.loads(proved.stdout)
    assert bundle["index"] == 1
    assert bundle["checkpoint"].startswith(f"{ORIGIN}/worker-1\n3\n")
    worker_pub = member_pubkey(pub, "worker-1")
    assert f"check with --pubkey {worker_pub}" in proved.stderr
    ok = run("verify-proof", "--pubkey", worker_pub, "--origin", f"{ORIGIN}/worker-1",
             "--request-id", "req-000004", stdin=proved.stdout)  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert f"verified: entry 1 (completed of request 'req-000004') is in {ORIGIN}/worker-1" in (
        ok.output
    )
    wrong = run("verify-proof", "--pubkey", member_pubkey(pub, "worker-0"), stdin=proved.stdout)
    assert wrong.exit_code == 1 and "not signed by the given key" in wrong.output
    missing = run("prove", directory, "--pubkey", pub, "--request-id", "req-999")
    assert missing.exit_code == 1
    assert "no record of request 'req-999' is covered by the checkpoint of any log in" in (
        missing.output
    )
    # Only the log holding the request is read: another one's damage does not matter here.
    (directory / "worker-0" / "checkpoints").unlink()
    again = run("prove", directory, "--pubkey", pub, "--request-id", "req-000004")
    assert again.exit_code == 0 and again.stdout == proved.stdout
    kept = tmp_path / "worker-2.checkpoint"
    kept.write_text(_latest_note(directory / "worker-2"))
    there = run("prove", directory, "--pubkey", pub, "--request-id", "req-000005",
                "--checkpoint", kept)  # fmt: skip
    assert there.exit_code == 0, there.output
    assert json.loads(there.stdout)["index"] == 1
    elsewhere = run("prove", directory, "--pubkey", pub, "--request-id", "req-000004",
                    "--checkpoint", kept)  # fmt: skip
    assert elsewhere.exit_code == 1 and "no record of request 'req-000004'" in elsewhere.output


# What the witness's run script (roles/audit_witness) reads from each accepted line.
SIZE_OF_LINE = re.compile(r"^accepted: [^ ]* size ([0-9]*) ", re.MULTILINE)


def test_the_witness_accepts_each_worker_log_and_refuses_only_the_rewritten_one(
    worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    state, witness_key = tmp_path / "witness-state", tmp_path / "witness.key"
    generate_signing_key(witness_key)
    args = ("--pubkey", pub, "--state", state, "--cosign-key", witness_key, "--cosign-name", "w1")
    first = run("witness", directory, *args)
    assert first.exit_code == 0, first.output
    for i in range(WORKERS):
        assert f"accepted: {ORIGIN}/worker-{i} size 3 root " in first.output
    assert first.output.count("(previously nothing (first copy))") == WORKERS
    assert SIZE_OF_LINE.findall(first.output) == ["3"] * WORKERS
    assert first.output.count("cosigned as w1: ") == WORKERS
    cosigned = cosigned_path(state, f"{ORIGIN}/worker-2")
    checked = run("verify-cosigned", cosigned, "--pubkey", member_pubkey(pub, "worker-2"),
                  "--witness-pubkey", f"{witness_key}.pub", "--witness-name", "w1")  # fmt: skip
    assert checked.exit_code == 0, checked.output

    append_to_worker(directory, pub, 0, 9)
    append_to_worker(directory, pub, 2, 10)
    _rewrite(directory / "worker-1", b"req-000004", b"req-000444")
    again = run("witness", directory, *args)
    assert again.exit_code == 1
    out = again.output
    assert f"accepted: {ORIGIN}/worker-0 size 4 root " in out
    assert f"accepted: {ORIGIN}/worker-2 size 4 root " in out
    assert out.count("(previously size 3)") == 2 and out.count("cosigned as w1: ") == 2
    assert f"VERIFICATION FAILED: {directory}/worker-1: copy refused:" in out
    assert "first bad index: 1" in out
    assert out.rstrip().endswith(f"1 of 3 logs in {directory} failed: worker-1")
    worker_1 = load_public_key(member_pubkey(pub, "worker-1"))
    kept = accepted_checkpoint(state, worker_1, f"{ORIGIN}/worker-1")
    assert kept is not None and kept[1].size == 3


def test_the_witness_refuses_a_copy_without_a_worker_log_it_accepted_before(
    worker_site: tuple[Path, Path], tmp_path: Path
) -> None:
    directory, pub = worker_site
    state = tmp_path / "witness-state"
    assert run("witness", directory, "--pubkey", pub, "--state", state).exit_code == 0
    shutil.rmtree(directory / "worker-1")  # a whole worker log removed from the gateway
    again = run("witness", directory, "--pubkey", pub, "--state", state)
    assert again.exit_code == 1, again.output
    assert f"accepted: {ORIGIN}/worker-0 size 3 root " in again.output
    assert f"{ORIGIN}/worker-1: accepted before, missing from {directory}" in again.output
    assert again.output.rstrip().endswith(f": {ORIGIN}/worker-1")
