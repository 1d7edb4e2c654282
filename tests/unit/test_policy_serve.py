"""How OPA is started on the signed bundle: loopback, verified, quiet, configured."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovstack.core.paths import Paths
from sovstack.policy import PolicyError, keys, serve


def _fake_root(tmp_path: Path) -> Paths:
    # An OPA "binary" that is never run: only the argv is inspected.
    paths = Paths(tmp_path)
    paths.opa_bin.parent.mkdir(parents=True)
    paths.opa_bin.write_text("")
    return paths


def test_opa_starts_on_loopback_without_a_version_check(tmp_path: Path) -> None:
    paths = _fake_root(tmp_path)
    pair = keys.generate(tmp_path / "keys")
    launch = serve.opa_launch(paths, 18181, tmp_path / "bundle.tar.gz", pair.public)
    argv = list(launch.argv)
    assert argv[argv.index("--addr") + 1] == "127.0.0.1:18181"
    assert "--skip-version-check" in argv
    assert argv[argv.index("--config-file") + 1] == str(paths.policies / "opa-config.yaml")
    assert argv[argv.index("--verification-key") + 1] == str(pair.public)
    assert argv[argv.index("--signing-alg") + 1] == "ES256"
    assert "--skip-verify" not in argv
    assert "--bundle" in argv
    assert argv[-1] == str(tmp_path / "bundle.tar.gz")
    assert launch.ready_url.startswith("http://127.0.0.1:18181/")


def test_opa_is_not_started_without_its_public_key(tmp_path: Path) -> None:
    # OPA would take a --verification-key that is not a file as an HMAC secret.
    paths = _fake_root(tmp_path)
    with pytest.raises(PolicyError, match="no public key at"):
        serve.opa_launch(paths, 18181, tmp_path / "bundle.tar.gz", tmp_path / "missing.pub")


def test_opa_is_not_started_without_the_binary(tmp_path: Path) -> None:
    pair = keys.generate(tmp_path / "keys")
    with pytest.raises(PolicyError, match="make deps"):
        serve.opa_launch(Paths(tmp_path), 18181, tmp_path / "bundle.tar.gz", pair.public)


def test_opa_on_a_socket_serves_its_api_there_and_only_health_on_its_port(tmp_path: Path) -> None:
    paths = _fake_root(tmp_path)
    pair = keys.generate(tmp_path / "keys")
    socket = tmp_path / "opa.sock"
    launch = serve.opa_launch(paths, 18181, tmp_path / "bundle.tar.gz", pair.public, socket)
    argv = list(launch.argv)
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--addr"] == [f"unix://{socket}"]
    assert argv[argv.index("--unix-socket-perm") + 1] == "600"  # this user's only
    assert argv[argv.index("--diagnostic-addr") + 1] == "127.0.0.1:18181"
    assert launch.ready_url == "http://127.0.0.1:18181/health"
    assert "--verification-key" in argv and argv[-1] == str(tmp_path / "bundle.tar.gz")
