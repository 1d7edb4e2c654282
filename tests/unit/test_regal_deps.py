"""The Regal step of `sovstack deps`: pinned, cached, and explains a missing Go."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.core import versions
from sovstack.core.paths import Paths


def test_regal_is_cached_under_its_pinned_version(tmp_path: Path) -> None:
    assert (
        Paths(tmp_path).regal_bin
        == tmp_path / ".cache" / "regal" / versions.REGAL_VERSION / "regal"
    )


def test_deps_only_regal_without_go_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["deps", "--only", "regal", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "==> regal" in result.output
    assert "'go' was not found on PATH: install Go" in result.output
    assert not (tmp_path / ".cache" / "regal" / versions.REGAL_VERSION / "regal").exists()
