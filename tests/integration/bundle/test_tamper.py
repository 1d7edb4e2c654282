"""The issue's tamper matrix on a real cpu bundle: each case refused, naming the file and why."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sovstack.bundle import signing, state
from sovstack.cli import cli
from tests.integration.bundle.conftest import Builds


def _verify(builds: Builds, state_file: Path, *extra: str) -> Result:
    return CliRunner().invoke(
        cli,
        [
            "bundle",
            "verify",
            str(builds.first),
            "--pubkey",
            str(builds.keys.public),
            "--state",
            str(state_file),
            *extra,
        ],
    )


@contextmanager
def _restored(path: Path) -> Iterator[Path]:
    """Let a test change ``path`` (or remove it), and put the original back afterwards."""
    saved = path.with_name(f"{path.name}.saved-by-test")
    shutil.copy2(path, saved)
    try:
        yield path
    finally:
        saved.replace(path)


def _first(builds: Builds, pattern: str) -> Path:
    found = sorted(builds.first.glob(pattern))
    assert found, pattern
    return found[0]


@pytest.mark.parametrize(
    "pattern",
    ["wheels/*.whl", "debs/*.deb", "bin/opa", "models/tiny-llama/*.safetensors"],
    ids=["wheel", "deb", "opa-binary", "model-shard"],
)
def test_one_flipped_byte_is_refused(builds: Builds, tmp_path: Path, pattern: str) -> None:
    target = _first(builds, pattern)
    rel = target.relative_to(builds.first).as_posix()
    with _restored(target):
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        result = _verify(builds, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
    assert f"  {rel}: SHA-256 " in result.output
    assert "the file was changed" in result.output


def test_a_removed_file_is_refused(builds: Builds, tmp_path: Path) -> None:
    target = _first(builds, "debs/*.deb")
    rel = target.relative_to(builds.first).as_posix()
    with _restored(target):
        target.unlink()
        result = _verify(builds, tmp_path / "state.json")
    assert result.exit_code == 1
    assert f"  {rel}: missing: the manifest lists it" in result.output


def test_an_added_file_is_refused(builds: Builds, tmp_path: Path) -> None:
    added = builds.first / "wheels" / "evil-1.0-py3-none-any.whl"
    shutil.copyfile(_first(builds, "wheels/*.whl"), added)
    try:
        result = _verify(builds, tmp_path / "state.json")
    finally:
        added.unlink()
    assert result.exit_code == 1
    assert "  wheels/evil-1.0-py3-none-any.whl: not listed in the manifest" in result.output


def test_a_manifest_signed_by_another_key_is_refused(builds: Builds, tmp_path: Path) -> None:
    sig = builds.first / "manifest.sig"
    manifest = (builds.first / "manifest.json").read_bytes()
    with _restored(sig):
        sig.write_bytes(signing.sign(manifest, signing.load_private(builds.keys.other)))
        result = _verify(builds, tmp_path / "state.json")
    assert result.exit_code == 1
    other = signing.key_id(signing.load_public(Path(f"{builds.keys.other}.pub")))
    ours = signing.key_id(signing.load_public(builds.keys.public))
    assert (
        f"  manifest.sig: signed by another key (key id {other}), not by the given public key "
        f"(key id {ours})"
    ) in result.output


def test_a_truncated_signature_is_refused(builds: Builds, tmp_path: Path) -> None:
    sig = builds.first / "manifest.sig"
    with _restored(sig):
        sig.write_bytes(sig.read_bytes()[:60])
        result = _verify(builds, tmp_path / "state.json")
    assert result.exit_code == 1
    assert "  manifest.sig: " in result.output and "truncated" in result.output


def test_an_older_bundle_is_refused_unless_forced(builds: Builds, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    newer = state.Installed("9.9.9", "cpu", "00" * 32, "2030-01-01T00:00:00Z", state.now())
    state.record(state_file, newer)
    refused = _verify(builds, state_file)
    assert refused.exit_code == 1
    assert "version 0.1.0 is older than the bundle installed last (9.9.9" in refused.output
    forced = _verify(builds, state_file, "--force")
    assert forced.exit_code == 0, forced.output


def test_verify_record_then_the_same_bundle_again(builds: Builds, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    assert _verify(builds, state_file, "--record").exit_code == 0
    recorded = json.loads(state_file.read_text())
    assert recorded["version"] == "0.1.0" and recorded["profile"] == "cpu"
    assert _verify(builds, state_file).exit_code == 0
