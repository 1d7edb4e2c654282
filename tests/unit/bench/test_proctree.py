"""CPU of a process tree, summed from a /proc folder's stat files."""

from __future__ import annotations

import importlib
from pathlib import Path

proctree = importlib.import_module("bench.proctree")


def _stat(proc: Path, pid: int, ppid: int, comm: str, utime: int, stime: int,
          cutime: int = 0, cstime: int = 0) -> None:  # fmt: skip
    # proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime priority nice ...
    fields = ["S", ppid, pid, pid, 0, -1, 0, 10, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 1]
    (proc / str(pid)).mkdir()
    (proc / str(pid) / "stat").write_text(f"{pid} ({comm}) " + " ".join(map(str, fields)) + "\n")


def _tree(proc: Path) -> None:
    _stat(proc, 1, 0, "init", 5, 5)
    _stat(proc, 100, 1, "python3", 300, 100, cutime=40, cstime=10)  # the target
    _stat(proc, 101, 100, "gateway worker", 200, 50)  # a space in the name
    _stat(proc, 102, 101, "odd) name (x", 7, 3)  # ')' in the name: split after the last one
    _stat(proc, 200, 1, "opa", 1000, 1000)  # not in the tree
    (proc / "self").mkdir()  # not a process
    (proc / "net").mkdir()


def test_a_tree_is_its_root_and_every_descendant(tmp_path: Path) -> None:
    _tree(tmp_path)
    stats = proctree.read_stats(tmp_path)
    assert proctree.tree(stats, [100]) == {100, 101, 102}
    assert proctree.tree(stats, [100, 200]) == {100, 101, 102, 200}


def test_cpu_is_utime_stime_and_reaped_children_of_the_whole_tree(tmp_path: Path) -> None:
    _tree(tmp_path)
    ticks = (300 + 100 + 40 + 10) + (200 + 50) + (7 + 3)
    assert proctree.cpu_seconds([100], proc=tmp_path) == ticks / proctree.CLOCK_TICKS


def test_a_root_that_is_gone_counts_nothing(tmp_path: Path) -> None:
    _tree(tmp_path)
    assert proctree.cpu_seconds([999], proc=tmp_path) == 0.0


def test_a_child_that_exits_keeps_its_cpu_in_the_parent(tmp_path: Path) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    _stat(before, 100, 1, "target", 10, 0)
    _stat(before, 101, 100, "child", 30, 0)
    # The child ran 20 more ticks, exited and was reaped: its 50 are the parent's cutime.
    _stat(after, 100, 1, "target", 15, 0, cutime=50)
    spent = proctree.cpu_seconds([100], proc=after) - proctree.cpu_seconds([100], proc=before)
    assert spent == 25 / proctree.CLOCK_TICKS
