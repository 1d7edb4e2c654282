"""``sovstack audit``: what an operator and an auditor see, and its exit codes."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import AuditLog, encrypt_content, load_site_key
from sovstack.audit.checkpoint import split_notes
from sovstack.audit.segments import list_segments
from sovstack.cli import cli
from tests.unit.audit.conftest import ORIGIN, LogMaker, make_record

ROOT = Path(__file__).resolve().parents[3]


def run(*args: str | Path, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["audit", *map(str, args)], input=stdin)


@pytest.mark.parametrize(
    "command", ["keygen", "verify", "prove", "verify-proof", "export", "tail", "witness"]
)
def test_every_audit_command_explains_itself(command: str) -> None:
    for args in (["--help"], [command, "--help"]):
        result = run(*args)
        assert result.exit_code == 0
        assert "Usage: " in result.output and len(result.output.splitlines()) > 3


def test_keygen_makes_private_keys_and_never_overwrites(tmp_path: Path) -> None:
    result = run("keygen", "--out", tmp_path / "audit.key")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "audit.key.pub").read_text()
    again = run("keygen", "--out", tmp_path / "audit.key")
    assert again.exit_code == 2
    assert "already exists" in again.output and "Traceback" not in again.output
    site = run("keygen", "--site-key", "--key-id", "plant-a-1", "--out", tmp_path / "site.key")
    assert site.exit_code == 0 and "plant-a-1" in site.output
    assert (tmp_path / "site.key").stat().st_mode & 0o777 == 0o600


def test_verify_passes_a_clean_log_and_fails_a_tampered_one_with_evidence(
    make_log: LogMaker, pub_path: Path
) -> None:
    directory = make_log(12, every=4)
    ok = run("verify", directory, "--pubkey", pub_path, "--check-records")
    assert ok.exit_code == 0, ok.output
    assert f"verified: 12 entries, 4 checkpoints; latest checkpoint {ORIGIN} size 12" in ok.output
    segment = list_segments(directory)[0][1]
    segment.write_bytes(segment.read_bytes().replace(b"req-000005", b"req-000555"))
    bad = run("verify", directory, "--pubkey", pub_path)
    assert bad.exit_code == 1
    assert "VERIFICATION FAILED" in bad.output
    assert "first bad index: 5" in bad.output
    assert f"checkpoint:\n    {ORIGIN}\n    8\n" in bad.output


def test_verify_with_a_kept_checkpoint_catches_a_rollback(
    make_log: LogMaker, pub_path: Path, tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = make_log(6)
    kept = tmp_path / "kept.checkpoint"
    kept.write_text(split_notes((directory / "checkpoints").read_bytes())[0][-1])
    old = make_log(3, name="older")
    result = run("verify", old, "--pubkey", pub_path, "--checkpoint", kept)
    assert result.exit_code == 1
    assert "truncated or rolled back" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "{log}", "--pubkey", "{missing}"], "does not exist"),
        (["verify", "{log}"], "Missing option '--pubkey'"),
        (["verify", "{missing}", "--pubkey", "{pub}"], "does not exist"),
        (["verify", "{log}", "--pubkey", "{log}/checkpoints"], "is not a PEM public key"),
        (["export", "{log}", "--since", "yesterday"], "is not an ISO 8601 date"),
        (["export", "{log}", "--site-key", "{missing}"], "does not exist"),
        (["keygen", "--out", "{log}/k", "--key-id", "x"], "--key-id only applies"),
    ],
)
def test_usage_and_io_errors_exit_2_with_a_message(
    args: list[str], message: str, make_log: LogMaker, pub_path: Path, tmp_path: Path
) -> None:
    directory = make_log(2)
    values = {"log": directory, "pub": pub_path, "missing": tmp_path / "missing"}
    result = run(*(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_prove_and_verify_proof_offline(make_log: LogMaker, pub_path: Path, tmp_path: Path) -> None:
    directory = make_log(9)
    proved = run("prove", directory, "--pubkey", pub_path, "--request-id", "req-000004")
    assert proved.exit_code == 0, proved.output
    bundle = json.loads(proved.output)
    assert bundle["index"] == 4 and len(bundle["proof"]) == 4  # a tree of 9 leaves
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(proved.output)
    ok = run("verify-proof", proof_file, "--pubkey", pub_path, "--request-id", "req-000004")
    assert ok.exit_code == 0, ok.output
    assert "verified: entry 4 (completed of request 'req-000004')" in ok.output
    assert run("verify-proof", "--pubkey", pub_path, stdin=proved.output).exit_code == 0

    flipped = dict(bundle, proof=[bundle["proof"][0].replace(bundle["proof"][0][0], "A", 1)
                                  if bundle["proof"][0][0] != "A" else "B" + bundle["proof"][0][1:],
                                  *bundle["proof"][1:]])  # fmt: skip
    for bad in (
        flipped,
        dict(bundle, index=5),
        dict(bundle, entry=bundle["entry"].replace("bob", "eve")),
    ):
        failed = run("verify-proof", "--pubkey", pub_path, stdin=json.dumps(bad))
        assert failed.exit_code == 1, failed.output
        assert "VERIFICATION FAILED" in failed.output
    other = tmp_path / "other.key"
    assert run("keygen", "--out", other).exit_code == 0
    wrong_key = run("verify-proof", proof_file, "--pubkey", f"{other}.pub")
    assert wrong_key.exit_code == 1 and "not signed by the given key" in wrong_key.output
    wrong_request = run("verify-proof", proof_file, "--pubkey", pub_path, "--request-id", "req-x")
    assert wrong_request.exit_code == 1
    assert run("verify-proof", "--pubkey", pub_path, stdin="{not json").exit_code == 2
    missing = run("prove", directory, "--pubkey", pub_path, "--request-id", "req-999")
    assert missing.exit_code == 1 and "no record of request 'req-999'" in missing.output


# Characters that str.splitlines() (and many tools) take for line breaks; a client
# puts them in a record by asking for a model of that name.
LINE_BREAKERS = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\v", "\f", "\r", "\r\n"]


@pytest.mark.parametrize("breaker", LINE_BREAKERS, ids=[hex(ord(c[0])) for c in LINE_BREAKERS])
def test_a_proof_of_a_record_holding_a_line_break_character_verifies(
    tmp_path: Path, signing_key: Ed25519PrivateKey, pub_path: Path, breaker: str
) -> None:
    directory = tmp_path / "log"
    model = f"no{breaker}such{breaker}model"
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        for i in range(3):
            log.append_sync(make_record(i, model=model))
        log.publish()
    proved = run("prove", directory, "--pubkey", pub_path, "--request-id", "req-000001")
    assert proved.exit_code == 0, proved.output
    assert len(proved.stdout.splitlines()) == 1  # one line, even for str.splitlines
    ok = run(
        "verify-proof", "--pubkey", pub_path, "--request-id", "req-000001", stdin=proved.stdout
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(json.loads(proved.stdout)["entry"])["record"]["model"] == model
    # A proof written by another tool with the characters unescaped verifies too.
    unescaped = json.dumps(json.loads(proved.stdout), ensure_ascii=False)
    assert run("verify-proof", "--pubkey", pub_path, stdin=unescaped).exit_code == 0
    exported = run("export", directory)
    assert exported.exit_code == 0, exported.output
    records = [json.loads(line)["record"] for line in exported.stdout.splitlines()]
    assert [r["model"] for r in records] == [model] * 3


def test_export_filters_and_decrypts_only_with_the_site_key(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    assert run("keygen", "--site-key", "--out", tmp_path / "site.key").exit_code == 0
    key_id, key = load_site_key(tmp_path / "site.key")
    directory = tmp_path / "log"
    with AuditLog.open(directory, signing_key, ORIGIN) as log:
        for i in range(12):
            sealed = {"prompt": encrypt_content(key, key_id, f"prompt number {i}")}
            log.append_sync(make_record(i, content=sealed if i % 4 == 0 else None))

    def export(*args: str | Path) -> list[dict[str, object]]:
        result = run("export", directory, *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert [r["index"] for r in export()] == list(range(12))
    assert [r["index"] for r in export("--subject", "bob")] == [1, 4, 7, 10]
    assert [r["index"] for r in export("--client", "quality-lab", "--model", "big-llama")] == [
        1, 3, 5, 7, 9, 11
    ]  # fmt: skip
    window = export("--since", "2026-01-15T08:03", "--until", "2026-01-15T08:06:00Z")
    assert [r["index"] for r in window] == [3, 4, 5]
    sealed = export("--subject", "alice")[0]["record"]
    assert isinstance(sealed, dict) and "ciphertext" in sealed["content"]["prompt"]
    assert "prompt number 0" not in json.dumps(sealed)
    opened = export("--subject", "alice", "--site-key", tmp_path / "site.key")[0]["record"]
    assert isinstance(opened, dict)
    assert opened["content"]["prompt"] == {"key_id": key_id, "text": "prompt number 0"}
    out = tmp_path / "out.jsonl"
    assert run("export", directory, "--subject", "carol", "-o", out).exit_code == 0
    assert len(out.read_text().splitlines()) == 4


def test_tail_shows_the_last_records(make_log: LogMaker) -> None:
    result = run("tail", make_log(7), "-n", "3", "--no-follow")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["index"] for line in result.output.splitlines()] == [4, 5, 6]


def test_tail_follows_new_records_as_they_become_durable(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = tmp_path / "log"
    log = AuditLog.open(directory, signing_key, ORIGIN, segment_bytes=3000)
    log.append_sync(make_record(0))
    follower = subprocess.Popen(
        [sys.executable, "-m", "sovstack.cli", "audit", "tail", str(directory), "-n", "1"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert follower.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(x) for x in follower.stdout or []])
    reader.start()
    seen: list[int] = []
    try:
        seen.append(json.loads(lines.get(timeout=20))["index"])  # the backlog: entry 0
        for i in range(1, 12):  # crosses segment boundaries
            log.append_sync(make_record(i))
        while len(seen) < 12:
            seen.append(json.loads(lines.get(timeout=20))["index"])
    finally:
        follower.terminate()
        follower.wait(10)
        reader.join(10)
        log.close()
    assert seen == list(range(12))


def test_the_witness_command_accepts_extensions_and_refuses_rewrites(
    make_log: LogMaker, pub_path: Path, tmp_path: Path
) -> None:
    directory = make_log(5)
    state = tmp_path / "witness-state"
    first = run("witness", directory, "--pubkey", pub_path, "--state", state)
    assert first.exit_code == 0, first.output
    assert f"accepted: {ORIGIN} size 5" in first.output and "first copy" in first.output
    segment = list_segments(directory)[0][1]
    segment.write_bytes(segment.read_bytes().replace(b"req-000002", b"req-000222"))
    refused = run("witness", directory, "--pubkey", pub_path, "--state", state)
    assert refused.exit_code == 1
    assert "copy refused" in refused.output and "first bad index: 2" in refused.output


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "{dir}", "--pubkey", "{pub}"],
        ["export", "{dir}"],
        ["prove", "{dir}", "--pubkey", "{pub}", "--request-id", "req-000001"],
        ["tail", "{dir}", "--no-follow"],
        ["witness", "{dir}", "--pubkey", "{pub}", "--state", "{witness}"],
    ],
)
def test_a_folder_that_is_not_a_log_is_a_usage_error(
    args: list[str], pub_path: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "not-a-log"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    values = {"dir": folder, "pub": pub_path, "witness": tmp_path / "witness"}
    result = run(*(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert f"{folder} is not an audit log" in result.output
    assert "exported" not in result.output and "Traceback" not in result.output


def test_a_log_whose_checkpoints_file_was_removed_fails_verification(
    make_log: LogMaker, pub_path: Path
) -> None:
    directory = make_log(4)
    (directory / "checkpoints").unlink()
    result = run("verify", directory, "--pubkey", pub_path)
    assert result.exit_code == 1, result.output
    assert "has entries but no checkpoints file" in result.output


@pytest.mark.parametrize("command", [["export"], ["tail", "-n", "50", "--no-follow"]])
def test_a_reader_that_goes_away_ends_the_output_quietly(
    command: list[str], make_log: LogMaker
) -> None:
    directory = make_log(30)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line, as `| head -0` does
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sovstack.cli", "audit", command[0], str(directory),
             *command[1:]],
            cwd=ROOT, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr
