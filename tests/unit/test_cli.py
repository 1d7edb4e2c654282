"""The CLI explains itself and turns environment problems into one clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.components import fetch
from sovstack.core.errors import ComponentError


@pytest.mark.parametrize(
    "args", [[], ["deps"], ["dev"], ["dev", "up"], ["dev", "down"], ["dev", "status"]]
)
def test_every_command_has_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 3


def test_dev_down_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dev", "down", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "stopped 0" in result.output


def test_dev_status_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dev", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "not running" in result.output


def test_a_missing_toolchain_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ComponentError, match=r"'go' was not found on PATH: install Go"):
        fetch.require("go")


def test_deps_without_the_toolchain_fails_with_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(cli, ["deps", "--only", "opa", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "'go' was not found on PATH" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_dev_up_without_fetched_components_says_to_run_make_deps(tmp_path: Path) -> None:
    (tmp_path / "services").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    result = CliRunner().invoke(
        cli, ["dev", "up", "--root", str(tmp_path), "--state-dir", str(tmp_path / "s")]
    )
    assert result.exit_code == 1
    assert "make deps" in result.output
