"""'down' removes what the record lists, tolerates what is gone, and touches nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sovstack.cluster import mounts, teardown
from sovstack.cluster.commands import ClusterError
from sovstack.cluster.record import Record


def test_objects_already_gone_are_fine_and_the_record_is_deleted(tmp_path: Path) -> None:
    record = Record.start(tmp_path / "state.json", {"name": "sovunit"})
    record.add("bridge", name="sovunit-br")
    record.add("netns", name="sovunit-gone")
    record.add("veth", name="sovunit-v0")
    record.add("tree", path=str(tmp_path / "nodes" / "a"))
    record.add("mount", path=str(tmp_path / "nodes" / "a" / "root"))
    record.add("cgroup", path=str(tmp_path / "no-such-cgroup"))
    record.add("process", node="a", pid=2**22 + 7, start_time="1")
    messages: list[str] = []
    assert teardown.teardown(record, messages.append) == 7
    assert not (tmp_path / "state.json").exists()
    assert messages == []  # no node was running, so none was powered off


def test_trees_are_removed_but_a_folder_someone_else_uses_stays(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    (ours / "deep").mkdir(parents=True)
    (ours / "deep" / "file").write_text("x")
    shared = tmp_path / "shared"
    (shared / "someone-elses").mkdir(parents=True)
    record = Record.start(tmp_path / "state.json", {})
    record.add("empty-dir", path=str(shared))
    record.add("tree", path=str(ours))
    teardown.teardown(record, print)
    assert not ours.exists()
    assert (shared / "someone-elses").is_dir()


def test_what_cannot_be_removed_stays_in_the_record_for_the_next_down(tmp_path: Path) -> None:
    record = Record.start(tmp_path / "state.json", {})
    record.add("tree", path=str(tmp_path / "gone"))
    record.add("mystery", name="x")
    with pytest.raises(ClusterError, match=r"(?s)could not be removed.*mystery x"):
        teardown.teardown(record, print)
    left = json.loads((tmp_path / "state.json").read_text())["resources"]
    assert left == [{"kind": "mystery", "name": "x"}]


def test_a_second_record_is_refused_while_one_exists(tmp_path: Path) -> None:
    Record.start(tmp_path / "state.json", {})
    with pytest.raises(ClusterError, match="run 'sovstack cluster down' first"):
        Record.start(tmp_path / "state.json", {})


def test_an_unreadable_record_is_reported_not_guessed(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ClusterError, match="is unreadable"):
        Record.load(tmp_path / "state.json")


def test_mount_points_below_a_folder_are_found_deepest_first() -> None:
    found = mounts.mounts_under(Path("/proc"))
    assert found[-1] == Path("/proc")
    assert mounts.mounts_under(Path("/nonexistent/sovstack")) == []
