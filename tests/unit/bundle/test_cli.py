"""``sovstack bundle``: help, keygen, verify's exit codes and messages, build's early refusals."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sovstack.bundle import state
from sovstack.cli import cli
from tests.unit.bundle.conftest import flip_byte, make_bundle
from tests.unit.bundle.test_models import write_safetensors


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize(
    "args", [["bundle"], ["bundle", "keygen"], ["bundle", "build"], ["bundle", "verify"]]
)
def test_every_bundle_command_has_help(args: list[str]) -> None:
    result = _run(*args, "--help")
    assert result.exit_code == 0
    assert result.output.startswith("Usage: cli bundle")
    assert len(result.output.splitlines()) > 5


def test_keygen_writes_the_pair_and_never_overwrites(tmp_path: Path) -> None:
    result = _run("bundle", "keygen", "--out", tmp_path / "b.key")
    assert result.exit_code == 0, result.output
    assert f"private key  {tmp_path / 'b.key'}  (mode 0600" in result.output
    assert "key id " in result.output
    assert (tmp_path / "b.key").stat().st_mode & 0o777 == 0o600
    again = _run("bundle", "keygen", "--out", tmp_path / "b.key")
    assert again.exit_code == 2
    assert "refusing to overwrite a key" in again.output
    assert "Traceback" not in again.output


def _verify(bundle: Path, key: Path, state: Path, *extra: str) -> Result:
    return _run("bundle", "verify", bundle, "--pubkey", f"{key}.pub", "--state", state, *extra)


def test_verify_prints_a_summary_and_exits_0(bundle_dir: Path, key: Path, tmp_path: Path) -> None:
    result = _verify(bundle_dir, key, tmp_path / "state.json")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("signature  ok (key id ")
    assert any(line.split() == ["opa", "1", "2.1", "KB", "ok"] for line in lines)
    assert "version    1.0.0 (last installed: none recorded)" in lines
    assert (
        "note: an INCOMPLETE bundle; it leaves out: collections, jdk, keycloak, policy, "
        "wheels:control, wheels:vllm"
    ) in lines
    assert lines[-1] == f"VERIFIED   {bundle_dir}"


def test_verify_of_a_tampered_bundle_exits_1_naming_the_file(
    bundle_dir: Path, key: Path, tmp_path: Path
) -> None:
    flip_byte(bundle_dir / "debs/demo_1.0-1_amd64.deb")
    result = _verify(bundle_dir, key, tmp_path / "state.json")
    assert result.exit_code == 1
    assert f"FAILED     {bundle_dir}: 1 problem(s)" in result.output
    assert "  debs/demo_1.0-1_amd64.deb: SHA-256 " in result.output
    assert any(
        line.split() == ["debs", "2", "909", "B", "1", "problem(s)"]
        for line in result.output.splitlines()
    )


def test_record_then_an_older_bundle_is_refused_unless_forced(tmp_path: Path, key: Path) -> None:
    state = tmp_path / "state.json"
    new, old = tmp_path / "new", tmp_path / "old"
    make_bundle(new, key, version="2.0.0")
    make_bundle(old, key, version="1.9.0")
    recorded = _verify(new, key, state, "--record")
    assert recorded.exit_code == 0
    assert f"recorded   2.0.0 as installed in {state}" in recorded.output
    assert json.loads(state.read_text())["version"] == "2.0.0"
    refused = _verify(old, key, state)
    assert refused.exit_code == 1
    assert "version 1.9.0 is older than the bundle installed last (2.0.0" in refused.output
    assert _verify(old, key, state, "--force").exit_code == 0
    assert json.loads(state.read_text())["version"] == "2.0.0"  # --record was not given


def test_verify_of_nothing_is_a_usage_error(tmp_path: Path, key: Path) -> None:
    result = _verify(tmp_path / "absent", key, tmp_path / "state.json")
    assert result.exit_code == 2
    assert "does not exist: give a bundle directory or a bundle .tar" in result.output


def test_verify_with_a_missing_public_key_is_a_usage_error(
    bundle_dir: Path, tmp_path: Path
) -> None:
    result = _run("bundle", "verify", bundle_dir, "--pubkey", tmp_path / "none.pub")
    assert result.exit_code == 2
    assert "none.pub does not exist" in result.output


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", {"w": 32})
    (folder / "config.json").write_text("{}")
    return folder


def _build(tmp_path: Path, key: Path, *extra: str | Path) -> Result:
    return _run(
        "bundle",
        "build",
        "--root",
        Path(__file__).resolve().parents[3],
        "--out",
        tmp_path / "out",
        "--signing-key",
        key,
        *extra,
    )


def test_build_without_a_policy_key_stops_before_downloading(
    tmp_path: Path, key: Path, model: Path
) -> None:
    result = _build(tmp_path, key, "--model", model)
    assert result.exit_code == 2
    assert "--policy-key is required" in result.output
    assert "==>" not in result.output
    assert not (tmp_path / "out").exists()


def test_build_refuses_a_pickled_model_before_downloading(
    tmp_path: Path, key: Path, model: Path
) -> None:
    (model / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    result = _build(tmp_path, key, "--model", model, "--skip", "policy")
    assert result.exit_code == 2
    assert f"{model / 'pytorch_model.bin'}: a pickle file" in result.output
    assert "==>" not in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--skip", "models", "--skip", "policy", "--version", "newest"], "not a valid version"),
        (["--skip", "policy"], "give the model weights with --model"),
        (
            ["--skip", "models", "--skip", "policy", "--signing-key", "/nonexistent/k"],
            "does not exist",
        ),
    ],
)
def test_build_refuses_bad_input_with_a_message(
    tmp_path: Path, key: Path, extra: list[str], message: str
) -> None:
    result = _build(tmp_path, key, *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_build_will_not_replace_a_folder_that_is_not_a_bundle(
    tmp_path: Path, key: Path, model: Path
) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    result = _build(tmp_path, key, "--model", model, "--skip", "policy", "--skip", "debs")
    assert result.exit_code == 2
    assert "exists and is not a bundle: refusing to replace it" in result.output
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder outside any checkout, with a home and a site folder of the test's own.

    Returns where the install record is expected: the site's folder as root, else the user's.
    """
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(state, "SITE_DIR", tmp_path / "site")
    if os.geteuid() == 0:
        return tmp_path / "site" / "bundle-installed.json"
    return tmp_path / "home" / ".local" / "state" / "sovstack" / "bundle-installed.json"


def test_verify_outside_a_checkout_needs_only_the_bundle_and_the_key(
    key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    make_bundle(new, key, version="2.0.0")
    make_bundle(old, key, version="1.9.0")
    record = _elsewhere(tmp_path, monkeypatch)
    recorded = _run("bundle", "verify", new, "--pubkey", f"{key}.pub", "--record")
    assert recorded.exit_code == 0, recorded.output
    assert f"recorded   2.0.0 as installed in {record}" in recorded.output
    refused = _run("bundle", "verify", old, "--pubkey", f"{key}.pub")
    assert refused.exit_code == 1, refused.output
    assert "older than the bundle installed last (2.0.0" in refused.output


def test_the_default_record_place_is_the_checkout_then_the_site_then_the_user() -> None:
    home = Path("/home/op")
    checkout = Path("/src/sovstack/.sovstack")
    assert state.default_path(checkout, is_root=True, home=home) == (
        checkout / "bundle-installed.json"
    )
    assert state.default_path(None, is_root=True, home=home) == Path(
        "/var/lib/sovstack/bundle-installed.json"
    )
    assert state.default_path(None, is_root=False, home=home) == Path(
        "/home/op/.local/state/sovstack/bundle-installed.json"
    )


def test_recording_the_same_bundle_again_leaves_the_record_as_it_is(
    tmp_path: Path, key: Path
) -> None:
    state = tmp_path / "state.json"
    bundle = tmp_path / "b"
    make_bundle(bundle, key, version="2.0.0")
    assert _verify(bundle, key, state, "--record").exit_code == 0
    before = state.read_bytes()
    again = _verify(bundle, key, state, "--record")
    assert again.exit_code == 0
    assert "unchanged  2.0.0 is already recorded as installed" in again.output
    assert state.read_bytes() == before


def _tar_of(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return out


def test_verify_of_a_folder_or_tar_that_is_not_a_bundle_exits_2(tmp_path: Path, key: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    for given in (folder, _tar_of(folder, tmp_path / "photos.tar")):
        result = _verify(given, key, tmp_path / "state.json")
        assert result.exit_code == 2, result.output
        assert f"{given} is not a bundle: it has no manifest.json and no manifest.sig" in (
            result.output
        )
        assert "Traceback" not in result.output


def test_verify_of_a_file_that_is_not_a_tar_exits_2(tmp_path: Path, key: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a tar at all\n" * 40)
    result = _verify(notes, key, tmp_path / "state.json")
    assert result.exit_code == 2, result.output
    assert "is not a readable tar file" in result.output


def test_verify_of_a_bundle_without_its_manifest_exits_1(
    bundle_dir: Path, key: Path, tmp_path: Path
) -> None:
    (bundle_dir / "manifest.json").unlink()  # still a bundle (signed), but not intact
    result = _verify(bundle_dir, key, tmp_path / "state.json")
    assert result.exit_code == 1, result.output
    assert "manifest.json: missing" in result.output
