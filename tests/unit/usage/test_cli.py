"""``sovstack usage report`` on real logs: what it counts, what it refuses, its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit import (
    AuditLog,
    VerificationError,
    generate_signing_key,
    load_public_key,
    load_signing_key,
)
from sovstack.audit.segments import list_segments
from sovstack.cli import cli
from sovstack.usage import aggregate, read_covered
from tests.unit.usage.conftest import ORIGIN, request, write_log


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, ["usage", *map(str, args)])


def test_usage_report_explains_itself() -> None:
    assert "usage" in CliRunner().invoke(cli, ["--help"]).output
    result = run("report", "--help")
    assert result.exit_code == 0
    for words in ("AUDIT_DIR", "--pubkey", "--by", "client, model, site, day", "--out", "json"):
        assert words in " ".join(result.output.split())


def test_only_what_the_latest_checkpoint_covers_is_counted(
    tmp_path: Path, signing_key: Ed25519PrivateKey, key_path: Path
) -> None:
    directory = tmp_path / "log"
    with AuditLog.open(directory, signing_key, ORIGIN, 3600) as log:
        for record in [*request(1), *request(2, tokens=(1, 2))]:
            log.append_sync(record)
        covered = log.publish()
        published = (directory / "checkpoints").stat().st_size
        for record in request(3, tokens=(1000, 1000)):
            log.append_sync(record)
    # Keep only the first checkpoint: request 3 is durable but not yet published.
    with (directory / "checkpoints").open("r+b") as checkpoints:
        checkpoints.truncate(published)
    out = tmp_path / "usage.json"
    result = run("report", directory, "--pubkey", f"{key_path}.pub", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["checkpoints"] == [{"origin": ORIGIN, "size": 4, "root": covered.root.hex()}]
    assert doc["total"]["requests"] == 2 and doc["total"]["prompt_tokens"] == 11
    assert doc["entries_after_checkpoints"] == 2
    assert f"covered: {ORIGIN} size 4 root {covered.root.hex()}" in result.output


def test_a_log_that_does_not_verify_gives_no_report_and_exit_1(
    tmp_path: Path, signing_key: Ed25519PrivateKey, key_path: Path
) -> None:
    directory = write_log(tmp_path / "log", signing_key, [*request(1), *request(2)])
    segment = list_segments(directory)[0][1]
    segment.write_bytes(segment.read_bytes().replace(b'"completion":5', b'"completion":1'))
    out = tmp_path / "usage.html"
    result = run("report", directory, "--pubkey", f"{key_path}.pub", "--format", "html",
                 "--out", out)  # fmt: skip
    assert result.exit_code == 1
    assert "VERIFICATION FAILED" in result.output and "first bad index: 1" in result.output
    assert not out.exists()


def test_a_log_changed_between_verification_and_reading_is_not_counted(
    tmp_path: Path, signing_key: Ed25519PrivateKey, key_path: Path
) -> None:
    directory = write_log(tmp_path / "log", signing_key, [*request(1), *request(2)])
    log = read_covered(directory, load_public_key(Path(f"{key_path}.pub")))
    segment = list_segments(directory)[0][1]
    segment.write_bytes(segment.read_bytes().replace(b'"prompt":10', b'"prompt":99'))
    with pytest.raises(VerificationError, match="changed while the report read it"):
        aggregate([log], ("client",))


def test_a_log_signed_by_another_key_is_refused(
    tmp_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    directory = write_log(tmp_path / "log", signing_key, request(1))
    other = tmp_path / "other.key"
    generate_signing_key(other)
    result = run("report", directory, "--pubkey", f"{other}.pub")
    assert result.exit_code == 1 and "VERIFICATION FAILED" in result.output


def test_two_logs_with_one_key_each(tmp_path: Path, signing_key: Ed25519PrivateKey) -> None:
    one = write_log(tmp_path / "a", signing_key, request(1), origin="gw-a")
    other_key = tmp_path / "b.key"
    generate_signing_key(other_key)
    two = write_log(tmp_path / "b", load_signing_key(other_key), request(1), origin="gw-b")
    pub_a = tmp_path / "keys" / "audit.key.pub"
    result = run("report", one, two, "--pubkey", pub_a, "--pubkey", f"{other_key}.pub",
                 "--format", "csv", "--by", "site")  # fmt: skip
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()[:2]
    assert header.startswith("site,requests,") and row.startswith("plant-a,2,2,")
    assert ",gw-a;gw-b,2;2," in row


def test_usage_errors_exit_2(
    tmp_path: Path, signing_key: Ed25519PrivateKey, key_path: Path
) -> None:
    directory = write_log(tmp_path / "log", signing_key, request(1))
    pub = f"{key_path}.pub"
    for args, says in [
        (("--by", "user"), "--by takes"),
        (("--pubkey", pub), "once per AUDIT_DIR"),
        (("--format", "pdf"), "pdf"),
    ]:
        result = run("report", directory, "--pubkey", pub, *args)
        assert result.exit_code == 2, result.output
        assert says in result.output
    result = run("report", directory, directory, "--pubkey", pub)
    assert result.exit_code == 2 and "given twice" in result.output
    result = run("report", tmp_path, "--pubkey", pub)
    assert result.exit_code == 2 and "Traceback" not in result.output
