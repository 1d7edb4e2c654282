"""Missing prerequisites are named all at once, with the one command that fixes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.cluster import prereqs
from sovstack.cluster.commands import ClusterError


def test_every_missing_tool_is_named_with_its_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    with pytest.raises(ClusterError) as caught:
        prereqs.check(prereqs.RUN)
    message = str(caught.value)
    assert "systemd-nspawn is not installed (Debian package systemd-container)" in message
    assert "ip is not installed (Debian package iproute2)" in message
    assert message.rstrip().endswith(
        "install them with: apt-get install iproute2 mount openssh-client systemd-container "
        "util-linux"
    )
    assert message.count("\n") == len(prereqs.RUN) + 1  # one line each, then the fix


def test_not_being_root_is_named_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    problems = prereqs.missing(())
    assert problems == [
        "it must run as root (it creates network namespaces, a bridge and mounts): run it with sudo"
    ]


def test_a_tool_present_on_path_is_not_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool = tmp_path / "debootstrap"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    problems = prereqs.missing((prereqs.Need("debootstrap", "debootstrap"),))
    assert problems == []


def test_cluster_up_without_the_tools_fails_with_one_message_and_no_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 0)
    result = CliRunner().invoke(cli, ["cluster", "up", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 1
    assert "the local cluster cannot run on this host:" in result.output
    assert "apt-get install" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()  # nothing was made
