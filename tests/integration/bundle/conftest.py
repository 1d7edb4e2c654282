"""A real cpu bundle, built twice from the registries (pip, apt, mvn, go) by the real CLI.

It leaves out only the vLLM wheel set (several GB; ``make test-bundle-full``
builds it): every collector still runs for real. Downloads land in
``.cache/bundle/`` and later runs reuse them; the first run takes a couple of
minutes (debootstrap, about 400 MB of downloads), later ones well under one.
The model is the tiny one ``make deps`` generates: no model is ever
downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.bundle import signing
from sovstack.cli import cli
from sovstack.core.paths import Paths
from sovstack.policy import keys as policy_keys


@dataclass(frozen=True)
class Keys:
    bundle: Path
    other: Path
    policy: Path

    @property
    def public(self) -> Path:
        return Path(f"{self.bundle}.pub")


@dataclass(frozen=True)
class Builds:
    first: Path
    second: Path
    tar: Path
    first_output: str
    second_output: str
    keys: Keys


@pytest.fixture(scope="session")
def bundle_keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("bundle-keys")
    signing.generate_key(folder / "bundle.key")
    signing.generate_key(folder / "other.key")
    pair = policy_keys.generate(folder / "policy")
    return Keys(folder / "bundle.key", folder / "other.key", pair.private)


@pytest.fixture(scope="session")
def builds(
    project_paths: Paths, bundle_keys: Keys, tmp_path_factory: pytest.TempPathFactory
) -> Builds:
    model = project_paths.tiny_model
    if not (model / "model.safetensors").is_file():
        pytest.fail(f"{model} is missing: run 'make deps' first (it generates the tiny model)")
    work = tmp_path_factory.mktemp("bundles")

    def build(out: Path, *extra: str) -> str:
        args = [
            "bundle",
            "build",
            "--root",
            str(project_paths.root),
            "--profile",
            "cpu",
            "--out",
            str(out),
            "--signing-key",
            str(bundle_keys.bundle),
            "--policy-key",
            str(bundle_keys.policy),
            "--model",
            f"tiny-llama={model}",
            "--skip",
            "vllm",
            *extra,
        ]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return result.output

    first_output = build(work / "first", "--tar", str(work / "first.tar"))
    second_output = build(work / "second")
    return Builds(
        work / "first",
        work / "second",
        work / "first.tar",
        first_output,
        second_output,
        bundle_keys,
    )
