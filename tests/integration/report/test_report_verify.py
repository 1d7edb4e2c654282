"""``sovstack audit report verify``: offline, key only; every tamper case is refused by name."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sovstack.audit.checkpoint import split_notes
from sovstack.cli import cli
from sovstack.report import build_report
from sovstack.report.dsse import sign_statement
from tests.integration.report.conftest import FIXED, Site, make_policies
from tests.integration.report.test_report import CATALOGUE


def _verify(folder: Path, pubkey: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["audit", "report", "verify", str(folder), "--pubkey", str(pubkey)]
    )
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def signed(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("signed")
    policies = make_policies(base, CATALOGUE)
    build_report(site.inputs(policies), base / "pack", site.report_key, FIXED)
    return base / "pack"


@pytest.fixture
def copy(signed: Path, tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(signed, target)
    return target


def test_an_untouched_pack_verifies(site: Site, copy: Path) -> None:
    code, output = _verify(copy, site.report_pubkey)
    assert code == 0, output
    assert "verified" in output and "verdict pass" in output


def _flip_html(folder: Path) -> None:
    path = folder / "report.html"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _change_finding_state(folder: Path) -> None:
    path = folder / "assessment-results.json"
    path.write_text(path.read_text().replace('"state": "satisfied"', '"state": "not-satisfied"', 1))


def _logs(folder: Path) -> Path:
    return next((folder / "evidence" / "logs").iterdir())


def _edit_evidence(folder: Path) -> None:
    path = _logs(folder) / "pairing.json"
    path.write_text(path.read_text().replace('"accepted_without_end": []', '"x": []'))


def _remove_proof(folder: Path) -> None:
    path = _logs(folder) / "inclusion-proofs.jsonl"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[1:]))


def _remove_consistency_proof(folder: Path) -> None:
    (_logs(folder) / "consistency-proof.json").unlink()


def _add_file(folder: Path) -> None:
    (folder / "evidence" / "extra.txt").write_text("added later\n")


def _older_checkpoint(folder: Path) -> None:
    logs = _logs(folder)
    notes, _ = split_notes((logs / "checkpoints").read_bytes())
    assert len(notes) > 2
    (logs / "latest-checkpoint.txt").write_text(notes[1])  # older, and validly signed


def _whitespace(folder: Path) -> None:
    path = folder / "assessment-results.json"
    path.write_text(path.read_text().replace("\n", "\n ", 1))


def _truncate_envelope(folder: Path) -> None:
    path = folder / "report.dsse.json"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _statement(folder: Path) -> dict[str, object]:
    envelope = json.loads((folder / "report.dsse.json").read_text())
    statement: dict[str, object] = json.loads(base64.b64decode(envelope["payload"]))
    return statement


def _resign_with_another_key(folder: Path) -> None:
    statement = _statement(folder)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}  # type: ignore[attr-defined]
    envelope = sign_statement(subjects, statement["predicate"], Ed25519PrivateKey.generate())  # type: ignore[arg-type]
    (folder / "report.dsse.json").write_bytes(envelope)


def _payload_changed_old_signature(folder: Path) -> None:
    path = folder / "report.dsse.json"
    envelope = json.loads(path.read_text())
    statement = _statement(folder)
    statement["predicate"]["verdict"] = "fail"  # type: ignore[index]
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    path.write_text(json.dumps(envelope))


CASES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "one byte flipped in the HTML": (_flip_html, "report.html", "SHA-256"),
    "a finding's state changed": (_change_finding_state, "assessment-results.json", "SHA-256"),
    "an evidence file edited": (_edit_evidence, "pairing.json", "SHA-256"),
    "a proof removed from the proofs": (_remove_proof, "inclusion-proofs.jsonl", "SHA-256"),
    "a proof file removed": (_remove_consistency_proof, "consistency-proof.json", "missing"),
    "a file added": (_add_file, "evidence/extra.txt", "added"),
    "an older valid checkpoint swapped in": (_older_checkpoint, "latest-checkpoint.txt", "SHA"),
    "re-signed with another key": (_resign_with_another_key, "report.dsse.json", "another key"),
    "payload changed, old signature kept": (
        _payload_changed_old_signature,
        "report.dsse.json",
        "does not verify",
    ),
    "a truncated envelope": (_truncate_envelope, "report.dsse.json", "truncated"),
    "a whitespace-only change to the JSON": (_whitespace, "assessment-results.json", "SHA-256"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_pack_is_refused_naming_the_file_and_why(
    site: Site, copy: Path, case: str
) -> None:
    tamper, bad_file, why = CASES[case]
    tamper(copy)
    code, output = _verify(copy, site.report_pubkey)
    assert code == 1, output
    first = output.strip().splitlines()[-1]
    assert first.startswith("REFUSED: ")
    assert bad_file in first and why in first, first


def test_verify_without_a_readable_key_is_a_usage_error(copy: Path, tmp_path: Path) -> None:
    code, output = _verify(copy, tmp_path / "no-such.pub")
    assert code == 2, output
