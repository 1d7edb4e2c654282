"""A build of the parts that need no registry (a model), end to end: table, seal, tar, verify.

The full build, with every collector downloading for real, is in
tests/integration/bundle/.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from tests.unit.bundle.test_cli import _elsewhere
from tests.unit.bundle.test_models import write_safetensors

ROOT = Path(__file__).resolve().parents[3]
NETWORKED = [
    "--skip",
    "wheels",
    "--skip",
    "debs",
    "--skip",
    "opa",
    "--skip",
    "keycloak",
    "--skip",
    "collections",
    "--skip",
    "policy",
]


def _the_printed_hint_verifies_from_elsewhere(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build's last line names a command; it verifies, run as printed outside the checkout."""
    hint = output.splitlines()[-1].split("check it with: ", 1)[1]
    argv = shlex.split(hint)
    assert argv[:3] == ["sovstack", "bundle", "verify"]
    with monkeypatch.context() as m:
        _elsewhere(tmp_path, m)
        verified = CliRunner().invoke(cli, argv[1:])
    assert verified.exit_code == 0, verified.output
    assert verified.output.splitlines()[-1].startswith("VERIFIED   ")


def test_a_models_only_bundle_builds_verifies_and_rebuilds_the_same(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    write_safetensors(model / "model.safetensors", {"w": 1024})
    (model / "config.json").write_text('{"hidden_size": 8}')
    out, tar = tmp_path / "bundle", tmp_path / "bundle.tar"
    args = [
        "bundle",
        "build",
        "--root",
        str(ROOT),
        "--out",
        str(out),
        "--signing-key",
        str(key),
        "--model",
        f"tiny={model}",
        "--version",
        "2.1.0",
        "--tar",
        str(tar),
        *NETWORKED,
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "==> [1/1] models" in first.output
    table = [line.split() for line in first.output.splitlines()]
    assert any(row[:2] == ["models", "2"] for row in table)
    assert any(row[:2] == ["sbom", "1"] for row in table)
    assert any(row[:2] == ["total", "3"] for row in table)
    assert (
        "note: INCOMPLETE bundle, it leaves out: collections, debs, jdk, keycloak, opa, "
        "policy, wheels:control, wheels:gateway, wheels:vllm" in first.output
    )
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "manifest.json",
        "manifest.sig",
        "models/tiny/config.json",
        "models/tiny/model.safetensors",
        "sbom.cdx.json",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["version"] == "2.1.0" and manifest["complete"] is False
    assert manifest["contents"] == ["models"]
    for target in (out, tar):
        verified = CliRunner().invoke(
            cli,
            [
                "bundle",
                "verify",
                str(target),
                "--pubkey",
                f"{key}.pub",
                "--state",
                str(tmp_path / "state.json"),
            ],
        )
        assert verified.exit_code == 0, verified.output
    _the_printed_hint_verifies_from_elsewhere(first.output, tmp_path, monkeypatch)
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    again = json.loads((out / "manifest.json").read_text())
    assert {k: v for k, v in again.items() if k != "built_at"} == {
        k: v for k, v in manifest.items() if k != "built_at"
    }
    assert not list(tmp_path.glob(".bundle*")), "no staging folder is left behind"
