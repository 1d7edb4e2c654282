"""The cluster commands explain themselves and say clearly when there is no cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sovstack.cli import cli
from sovstack.cluster import lifecycle


@pytest.mark.parametrize("command", [[], ["up"], ["down"], ["status"], ["ssh"], ["exec"]])
def test_every_cluster_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, ["cluster", *command, "--help"])
    assert result.exit_code == 0
    assert "Usage: " in result.output
    assert len(result.output.splitlines()) > 4


def test_status_without_a_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["cluster", "status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 0
    assert "the local cluster is not up ('sovstack cluster up' starts it)" in result.output


def test_down_without_a_cluster_is_harmless(tmp_path: Path) -> None:
    for _ in range(2):
        result = CliRunner().invoke(cli, ["cluster", "down", "--state-dir", str(tmp_path)])
        assert result.exit_code == 0
        assert "no cluster to remove" in result.output


@pytest.mark.parametrize("command", [["ssh", "gateway"], ["exec", "gateway", "--", "true"]])
def test_reaching_a_node_without_a_cluster_is_a_clear_error(
    tmp_path: Path, command: list[str]
) -> None:
    # --state-dir before the node: after it, 'exec' would pass it on as the command's own.
    verb, *rest = command
    result = CliRunner().invoke(cli, ["cluster", verb, "--state-dir", str(tmp_path), *rest])
    assert result.exit_code == 1
    assert "the local cluster is not up: 'sovstack cluster up' starts it" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _record(state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    info = {
        "user": "sovstack",
        "key": str(state / "ssh/id_ed25519"),
        "known_hosts": str(state / "ssh/known_hosts"),
        "nodes": [{"name": "gateway", "address": "10.77.0.10"}],
    }
    (state / "state.json").write_text(json.dumps({"info": info, "resources": []}))


def test_ssh_logs_in_as_the_cluster_user_with_its_key_and_strict_host_keys(tmp_path: Path) -> None:
    _record(tmp_path)
    where = lifecycle.Where(state=tmp_path, cache=tmp_path / "cache")
    argv = lifecycle.ssh_argv(where, "gateway", ["hostname"])
    assert argv[0] == "ssh"
    assert argv[-2:] == ["sovstack@10.77.0.10", "hostname"]
    assert ["-i", str(tmp_path / "ssh/id_ed25519")] == argv[1:3]
    assert f"UserKnownHostsFile={tmp_path / 'ssh/known_hosts'}" in argv
    assert "StrictHostKeyChecking=yes" in argv


def test_an_unknown_node_lists_the_real_ones(tmp_path: Path) -> None:
    _record(tmp_path)
    result = CliRunner().invoke(cli, ["cluster", "ssh", "gpu-9", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no node named 'gpu-9': the nodes are gateway" in result.output


def test_exec_on_a_node_that_is_not_running_says_so(tmp_path: Path) -> None:
    _record(tmp_path)
    result = CliRunner().invoke(
        cli, ["cluster", "exec", "gateway", "--state-dir", str(tmp_path), "--", "true"]
    )
    assert result.exit_code == 1
    assert "node gateway is not running" in result.output
