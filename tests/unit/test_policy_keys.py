"""`sovstack policy keygen`: an ES256 key pair, the private half for its owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sovstack.cli import cli


def test_keygen_makes_an_es256_key_pair_only_its_owner_reads(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path / "k")])
    assert result.exit_code == 0, result.output
    private_path, public_path = (
        tmp_path / "k" / "policy-signing.key",
        tmp_path / "k" / "policy-signing.pub",
    )
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    private = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    public = serialization.load_pem_public_key(public_path.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP256R1)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert str(private_path) in result.output


def test_keygen_refuses_to_replace_a_key_pair(tmp_path: Path) -> None:
    first = CliRunner().invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path)])
    assert first.exit_code == 0
    before = (tmp_path / "policy-signing.key").read_bytes()
    again = CliRunner().invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output and "--force" in again.output
    assert again.exception is None or isinstance(again.exception, SystemExit)
    assert (tmp_path / "policy-signing.key").read_bytes() == before


def test_keygen_force_replaces_the_key_pair(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path)])
    before = (tmp_path / "policy-signing.key").read_bytes()
    forced = CliRunner().invoke(cli, ["policy", "keygen", "--out-dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0
    assert (tmp_path / "policy-signing.key").read_bytes() != before
    assert stat.S_IMODE((tmp_path / "policy-signing.key").stat().st_mode) == 0o600
